// A foreign BPF program for the inventory tests (host and VM): two
// tracepoint programs, a map of its own and one they share.
#include <linux/bpf.h>
// bpf_helpers.h needs the types above
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} invtest_own SEC(".maps"), invtest_shared SEC(".maps");

static void count(void* map) {
    __u32 key = 0;
    __u64* value = bpf_map_lookup_elem(map, &key);

    if (value)
        __sync_fetch_and_add(value, 1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int invtest_foreign(void* ctx) {
    count(&invtest_own);
    count(&invtest_shared);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int invtest_other(void* ctx) {
    count(&invtest_shared);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
