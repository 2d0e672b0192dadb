// SPDX-License-Identifier: GPL-2.0
/*
 * File rules: a `deny` rule means no access and no change, an `audit` rule
 * reports each and allows. Every route to a file is hooked: opening it (read
 * or write), truncating, unlinking, renaming it away or another file onto
 * it, linking it, changing its attributes (mode, owner, times) or extended
 * attributes, and creating a file at a denied name. The same hooks keep
 * bpfwarden's own files and pins unchanged by anyone else (rules flagged
 * BW_RULE_SELF_EXEMPT, directories flagged BW_DIR_PROTECT).
 *
 * Chained: a non-zero `ret` (an earlier program refused) is returned as is.
 */
#include "bpfwarden/rules.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define FMODE_WRITE 0x2
#define O_TRUNC 01000

/* The rule covering `dentry`'s file, applied to `op`. */
static __always_inline int guard_file(struct dentry *dentry, __u32 op)
{
	struct bw_match match = {};

	if (!bw_find_file_rule(dentry, &match))
		return 0;
	return bw_verdict(&match,
	                  op == BW_OP_OPEN || op == BW_OP_OPEN_WRITE ? BW_EVENT_FILE_OPEN
	                                                             : BW_EVENT_FILE_CHANGE,
	                  op, dentry);
}

/* A change of the entries of `dir` (creating, removing or renaming `dentry`
 * in it) where the directory itself is protected (our pins, keys, images). */
static __always_inline int guard_directory(struct inode *dir, struct dentry *dentry, __u32 op)
{
	struct bw_inode_key key = bw_inode_key_of(dir);
	const struct bw_dir_rules *rules;
	struct bw_match match = {};

	if (!bw_dir_may_have_rules(&key))
		return 0;
	rules = bpf_map_lookup_elem(&bpfw_dir_rules, &key);
	if (!rules || !(rules->flags & BW_DIR_PROTECT))
		return 0;
	match.rule = rules->file;
	match.dev = key.dev;
	match.ino = key.ino;
	return bw_verdict(&match, BW_EVENT_FILE_CHANGE, op, dentry);
}

/* Both: the entry's own rules, then its directory's protection. */
static __always_inline int guard_entry(struct inode *dir, struct dentry *dentry, __u32 op)
{
	int verdict = guard_file(dentry, op);

	return verdict ? verdict : guard_directory(dir, dentry, op);
}

SEC("lsm/file_open")
int BPF_PROG(bw_file_open, struct file *file, int ret)
{
	unsigned int flags = BPF_CORE_READ(file, f_flags);
	bool write = (BPF_CORE_READ(file, f_mode) & FMODE_WRITE) || (flags & O_TRUNC);

	if (ret)
		return ret;
	return guard_file(BPF_CORE_READ(file, f_path.dentry),
	                  write ? BW_OP_OPEN_WRITE : BW_OP_OPEN);
}

SEC("lsm/path_truncate")
int BPF_PROG(bw_path_trunc, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return guard_file(BPF_CORE_READ(path, dentry), BW_OP_TRUNCATE);
}

SEC("lsm/inode_unlink")
int BPF_PROG(bw_inode_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_UNLINK);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(bw_inode_rmdir, struct inode *dir, struct dentry *dentry, int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_RMDIR);
}

/* Renaming a covered file away, another file onto a covered name, or a
 * protected directory itself; RENAME_EXCHANGE calls this for both sides. */
SEC("lsm/inode_rename")
int BPF_PROG(bw_inode_rename, struct inode *old_dir, struct dentry *old_dentry,
             struct inode *new_dir, struct dentry *new_dentry, int ret)
{
	struct inode *moved = BPF_CORE_READ(old_dentry, d_inode);
	int verdict;

	if (ret)
		return ret;
	verdict = guard_entry(old_dir, old_dentry, BW_OP_RENAME_FROM);
	if (!verdict)
		verdict = guard_entry(new_dir, new_dentry, BW_OP_RENAME_ONTO);
	if (!verdict && moved)
		verdict = guard_directory(moved, old_dentry, BW_OP_RENAME_FROM);
	return verdict;
}

SEC("lsm/inode_link")
int BPF_PROG(bw_inode_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry,
             int ret)
{
	int verdict;

	if (ret)
		return ret;
	verdict = guard_file(old_dentry, BW_OP_LINK);
	return verdict ? verdict : guard_entry(dir, new_dentry, BW_OP_LINK);
}

SEC("lsm/inode_create")
int BPF_PROG(bw_inode_create, struct inode *dir, struct dentry *dentry, umode_t mode, int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_CREATE);
}

SEC("lsm/inode_mkdir")
int BPF_PROG(bw_inode_mkdir, struct inode *dir, struct dentry *dentry, umode_t mode, int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_CREATE);
}

SEC("lsm/inode_mknod")
int BPF_PROG(bw_inode_mknod, struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev,
             int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_CREATE);
}

SEC("lsm/inode_symlink")
int BPF_PROG(bw_symlink, struct inode *dir, struct dentry *dentry, const char *old_name, int ret)
{
	if (ret)
		return ret;
	return guard_entry(dir, dentry, BW_OP_CREATE);
}

/*
 * security_inode_setattr() gained a leading `struct mnt_idmap *` in 6.3: the
 * loader attaches the variant whose argument count matches the running
 * kernel (lib/loading/bpf_objects.cpp), since `ret` sits after the last
 * argument and must be read to chain.
 */
SEC("lsm/inode_setattr")
int BPF_PROG(bw_setattr_2arg, struct dentry *dentry, struct iattr *attr, int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_SETATTR);
}

SEC("lsm/inode_setattr")
int BPF_PROG(bw_setattr_3arg, void *idmap, struct dentry *dentry, struct iattr *attr, int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_SETATTR);
}

/* The first argument is a user namespace on 6.1 and an idmap from 6.3: unused. */
SEC("lsm/inode_setxattr")
int BPF_PROG(bw_setxattr, void *ns, struct dentry *dentry, const char *name, const void *value,
             size_t size, int flags, int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_SETXATTR);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(bw_removexattr, void *ns, struct dentry *dentry, const char *name, int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_REMOVEXATTR);
}

/* POSIX ACLs change through their own hooks from 6.2 (optional programs). */
SEC("lsm/inode_set_acl")
int BPF_PROG(bw_set_acl, void *idmap, struct dentry *dentry, const char *acl_name, void *kacl,
             int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_SETXATTR);
}

SEC("lsm/inode_remove_acl")
int BPF_PROG(bw_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name, int ret)
{
	if (ret)
		return ret;
	return guard_file(dentry, BW_OP_REMOVEXATTR);
}

/* ftruncate(2) of an already open file: its own hook from 6.2 (optional). */
SEC("lsm/file_truncate")
int BPF_PROG(bw_ftruncate, struct file *file, int ret)
{
	if (ret)
		return ret;
	return guard_file(BPF_CORE_READ(file, f_path.dentry), BW_OP_TRUNCATE);
}
