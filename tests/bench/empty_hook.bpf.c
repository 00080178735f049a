// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The cheapest thing redmap's capture could be: a program that does nothing,
 * on the hook redmap's capture uses (tp_btf/sys_exit). Attaching it makes every
 * syscall on the node take the traced exit path and run one program. Used by
 * tests/bench/overhead_floor.cc to measure the floor under the overhead
 * targets; never loaded by redmap_exporter. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(empty_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}
