/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user boundary of the TCP health programs (tcp_health.bpf.h):
 * one fixed-size record per TCP event, written to the `tcp_events` ring.
 * Same rules as socket_trace.h: plain C, fixed-width fields, explicit
 * padding; userspace static_asserts the size.
 */
#ifndef REDMAP_BPF_TCP_HEALTH_H
#define REDMAP_BPF_TCP_HEALTH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Record type (first __u32), numbered after socket_trace.h's. */
#define REDMAP_EVENT_TCP 3

/* What happened (redmap_tcp_event.kind). */
#define REDMAP_TCP_ESTABLISHED 1     /* value: connect latency ns (client), 0 (server) */
#define REDMAP_TCP_CONNECT_FAILED 2  /* aux: sk_err (ECONNREFUSED, ETIMEDOUT, ...) */
#define REDMAP_TCP_CLOSED 3          /* value: bytes sent, value2: bytes received */
#define REDMAP_TCP_RETRANSMIT 4      /* value: segments, aux: REDMAP_TCP_RETRANS_* */
#define REDMAP_TCP_RESET_SENT 5
#define REDMAP_TCP_RESET_RECEIVED 6
#define REDMAP_TCP_ZERO_WINDOW_LOCAL 7 /* segment received while we advertised 0 */
#define REDMAP_TCP_ZERO_WINDOW_PEER 8  /* segment received while the peer advertised 0 */
#define REDMAP_TCP_LISTEN 9            /* a process started listening */

#define REDMAP_TCP_RETRANS_DATA 0
#define REDMAP_TCP_RETRANS_SYN 1
#define REDMAP_TCP_RETRANS_SYNACK 2

/* aux flag on REDMAP_TCP_CLOSED: value/value2/srtt_us are valid. */
#define REDMAP_TCP_CLOSED_HAS_STATS 1

/* Per-CPU `stats` indexes for the TCP ring (see socket_trace.h). */
#define REDMAP_STAT_TCP_RINGBUF_DROPS 4
#define REDMAP_STAT_TCP_EVENTS 7

struct redmap_tcp_event {
	__u32 type; /* REDMAP_EVENT_TCP */
	__u32 kind; /* REDMAP_TCP_* */
	__u64 sk;   /* struct sock *: names the connection while it lives */
	__u64 ts_ns; /* CLOCK_MONOTONIC */
	__u64 value;
	__u64 value2;
	__u32 tgid; /* owning process when known, else 0 */
	__u32 aux;
	__u32 srtt_us; /* REDMAP_TCP_CLOSED: smoothed RTT at close, us */
	__u16 family;  /* REDMAP_AF_* */
	__u16 role;    /* REDMAP_ROLE_* of this side */
	__u16 local_port; /* host byte order */
	__u16 remote_port;
	__u32 pad;
	__u8 local_addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	__u8 remote_addr[16];
	char comm[16]; /* when tgid != 0 */
	__u64 cgroup_id; /* owner's cgroup v2 id (when tgid != 0): its pod */
};

#endif /* REDMAP_BPF_TCP_HEALTH_H */
