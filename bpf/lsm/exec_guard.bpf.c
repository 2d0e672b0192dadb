// SPDX-License-Identifier: GPL-2.0
/* lsm/bprm_check_security: deny or audit execution of binaries named by (device, inode). */
#include "bpfwarden/emit.bpf.h"
#include "bpfwarden/policy_maps.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/bprm_check_security")
int BPF_PROG(bw_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct bw_inode_key key;
	struct bw_rule *rule;
	struct bw_event *event;
	int verdict;

	if (ret)
		return ret;

	key = bw_inode_key_of(BPF_CORE_READ(bprm, file, f_inode));
	rule = bpf_map_lookup_elem(&exec_rules, &key);
	if (!rule)
		return 0;

	verdict = bw_rule_verdict(rule);
	event = bw_event_reserve(BW_EVENT_EXEC_CHECK, rule->action);
	if (event) {
		event->dev = key.dev;
		event->ino = key.ino;
		event->rule_id = rule->rule_id;
		bpf_probe_read_kernel_str(event->path, sizeof(event->path),
		                          BPF_CORE_READ(bprm, filename));
		bw_event_submit(event);
	}
	return verdict;
}
