/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Who is bpfwarden. A task is bpfwarden when it carries BW_TASK_SELF in
 * bpfw_tasks: set at exec time (self_guard's bprm_committed_creds) for one of
 * our executables that PID 1 started directly in its own unit's cgroup, with
 * no LD_* preload and no tracer; or set by the first loader for itself, before
 * any protection program was attached. Running our binaries by hand gives
 * nothing.
 */
#ifndef BPFWARDEN_SELF_BPF_H
#define BPFWARDEN_SELF_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfwarden/abi.h"
#include "bpfwarden/policy_maps.bpf.h"

static __always_inline struct bw_task *bw_task_of(struct task_struct *task)
{
	return bpf_task_storage_get(&bpfw_tasks, task, 0, 0);
}

static __always_inline bool bw_is_self_task(struct task_struct *task)
{
	struct bw_task *state = bw_task_of(task);

	return state && (state->flags & BW_TASK_SELF);
}

static __always_inline __u32 bw_current_role(void)
{
	struct bw_task *state = bw_task_of(bpf_get_current_task_btf());

	return state ? state->role : BW_ROLE_NONE;
}

/* PID 1 of the initial namespace: the service manager. */
static __always_inline bool bw_current_is_init(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == 1;
}

/* The service manager: PID 1, or a process it forked that still runs its
 * code (BW_TASK_LAUNCHED is cleared when the process executes anything but a
 * launcher such as sd-executor). That is where systemd sets up a unit's
 * namespace, mounts and state directory before it executes the service. */
static __always_inline bool bw_current_is_service_manager(void)
{
	struct bw_task *state;

	if (bw_current_is_init())
		return true;
	state = bw_task_of(bpf_get_current_task_btf());
	return state && (state->flags & BW_TASK_LAUNCHED);
}

/* Self-protection is off (policy) or lifted for now (break-glass). */
static __always_inline bool bw_unprotected(void)
{
	__u32 zero = 0;
	const struct bw_settings *settings = bpf_map_lookup_elem(&bpfw_settings, &zero);
	const struct bw_lift *lift = bpf_map_lookup_elem(&bpfw_lift, &zero);

	return !settings || !settings->protect || (lift && bpf_ktime_get_ns() < lift->until_ns);
}

/* Whether the current task may change bpfwarden: itself, the service
 * manager (it starts and stops our units, and sets up their namespaces and
 * state directory), or anyone while protection is off or lifted. */
static __always_inline bool bw_self_or_unprotected(void)
{
	return bw_is_self_task(bpf_get_current_task_btf()) || bw_current_is_service_manager() ||
	       bw_unprotected();
}

#endif /* BPFWARDEN_SELF_BPF_H */
