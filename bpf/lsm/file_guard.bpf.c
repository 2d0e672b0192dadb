// SPDX-License-Identifier: GPL-2.0
/* lsm/file_open: deny or audit opens of files named by (device, inode). */
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int BPF_PROG(bw_file_open, struct file *file, int ret)
{
	struct bw_inode_key key;
	struct bw_rule *rule;
	struct bw_event *event;
	int verdict;

	if (ret)
		return ret;

	key = bw_inode_key_of(BPF_CORE_READ(file, f_inode));
	rule = bpf_map_lookup_elem(&file_rules, &key);
	if (!rule)
		return 0;

	verdict = bw_rule_verdict(rule);
	event = bw_event_reserve(BW_EVENT_FILE_OPEN, rule->action);
	if (event) {
		event->dev = key.dev;
		event->ino = key.ino;
		event->rule_id = rule->rule_id;
		/* The dentry name only: user space knows the full path from its rule. */
		bpf_probe_read_kernel_str(event->path, sizeof(event->path),
		                          BPF_CORE_READ(file, f_path.dentry, d_name.name));
		bw_event_submit(event);
	}
	return verdict;
}
