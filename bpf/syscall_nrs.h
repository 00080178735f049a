/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Syscall numbers socket_trace.bpf.c dispatches on at sys_exit. x86_64
 * numbering (arch/x86/entry/syscalls/syscall_64.tbl); the object is built
 * with -D__TARGET_ARCH_x86. Another architecture needs its own table here.
 */
#ifndef REDMAP_BPF_SYSCALL_NRS_H
#define REDMAP_BPF_SYSCALL_NRS_H

#if defined(__TARGET_ARCH_x86)
#define REDMAP_NR_read 0
#define REDMAP_NR_write 1
#define REDMAP_NR_close 3
#define REDMAP_NR_readv 19
#define REDMAP_NR_writev 20
#define REDMAP_NR_sendfile 40
#define REDMAP_NR_connect 42
#define REDMAP_NR_accept 43
#define REDMAP_NR_sendto 44
#define REDMAP_NR_recvfrom 45
#define REDMAP_NR_sendmsg 46
#define REDMAP_NR_recvmsg 47
#define REDMAP_NR_accept4 288
#else
#error "syscall_nrs.h: add this architecture's syscall numbers"
#endif

#endif /* REDMAP_BPF_SYSCALL_NRS_H */
