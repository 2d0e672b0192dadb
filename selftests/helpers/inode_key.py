#!/usr/bin/env python3
"""The bytes of a file's struct bw_inode_key (bpf/include/bpfwarden/abi.h), the
key of bpfw_file_rules, bpfw_exec_rules, bpfw_dir_rules and bpfw_bpf_allow,
for tests and benchmarks that tamper with those maps through bpftool:
dev in the kernel's encoding (major << 20 | minor), ino, and the inode's
generation on the filesystems that reuse inode numbers (ext4, xfs, btrfs,
f2fs: read here with FS_IOC_GETVERSION, independently of how bpfwarden reads
it), 0 elsewhere; then 1 for a directory, 0 for anything else.

    inode_key.py FILE   prints the key as hex bytes for `bpftool ... key hex`
"""
import fcntl
import os
import struct
import subprocess
import sys

GENERATION_FILESYSTEMS = (0xEF53, 0x58465342, 0x9123683E, 0xF2F52010)  # ext4, xfs, btrfs, f2fs
FS_IOC_GETVERSION = 0x80087601  # _IOR('v', 1, long); the kernel writes an int


def generation(path):
    fs_type = int(subprocess.check_output(["stat", "-f", "-c", "%t", path], text=True), 16)
    if fs_type not in GENERATION_FILESYSTEMS:
        return 0
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return struct.unpack_from("<I", fcntl.ioctl(fd, FS_IOC_GETVERSION, bytes(8)))[0]
    finally:
        os.close(fd)


def inode_key(path):
    st = os.stat(path)
    dev = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
    return struct.pack("<QQII", dev, st.st_ino, generation(path), 1 if os.path.isdir(path) else 0)


def hex_words(data):
    return [f"{b:02x}" for b in data]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(" ".join(hex_words(inode_key(sys.argv[1]))))
