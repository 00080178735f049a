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

/* The socket layer's own tracepoints (6.4+), for comparison: they fire only
 * on socket sends and receives, so other syscalls keep the fast exit path.
 * overhead_floor sock-hook; see docs/overhead.md for why redmap does not
 * capture there. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(empty_sock_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(empty_sock_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}
