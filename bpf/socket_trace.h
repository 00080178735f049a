/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user boundary of socket_trace.bpf.c: every record the BPF side
 * writes to the ring buffer is one of the structs below. Plain C, fixed-width
 * fields, explicit padding, no bool and no enums in structs, so that the
 * layout is identical for clang -target bpf and for the C++ userspace.
 * Userspace static_asserts the sizes and validates data_sz of every record
 * (aggregators/sources/event_decoder.cc).
 */
#ifndef REDMAP_BPF_SOCKET_TRACE_H
#define REDMAP_BPF_SOCKET_TRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Ceiling on captured payload bytes per event; the runtime knob
 * (capture.payload_bytes) must be <= this. Power of two: the BPF side masks
 * lengths with it to satisfy the verifier. */
#define REDMAP_MAX_PAYLOAD 16384

/* Kernel-side batching (socket_trace.bpf.c): a ring record holds one or
 * more events back to back, each padded to a multiple of 8 bytes. */
#define REDMAP_BATCH_EVENTS 16
#define REDMAP_BATCH_BYTES 8192

/* The head of each CPU's batch in scratch_map (mmapped by userspace, which
 * reads count and first_ns to decide whether the batch needs a flush). */
struct redmap_batch_state {
	__u32 used;  /* bytes of events in the batch, < REDMAP_BATCH_BYTES between events */
	__u32 count; /* events in the batch */
	/* An event is being added (set and cleared by the one program on this
	 * CPU that writes the batch; flush_batch, which may interrupt it, then
	 * only asks for a flush). */
	__u32 busy;
	__u32 flush_wanted;
	__u64 first_ns; /* timestamp of the batch's first event */
};

/* Event types (first __u32 of every event). */
#define REDMAP_EVENT_DATA 1
#define REDMAP_EVENT_CLOSE 2
#define REDMAP_EVENT_PEER 4 /* 3 is REDMAP_EVENT_TCP (tcp_health.h) */

/* Event flags. PEER_PARSES: no payload was copied because the other end of
 * this connection is a traced socket on this node, whose copy of the same
 * bytes is parsed instead (client ends only; see "parse once" in
 * socket_trace.bpf.c). The kernel side now sends such ends' syscalls as
 * redmap_peer_event records, never as data events with this flag; it names
 * the connection's state there, and the decoder still accepts it on a data
 * event. PEER_LOCAL: the client end of this (server) connection is such a
 * socket, and waits for this end's requests. */
#define REDMAP_EVENT_F_PEER_PARSES 1
#define REDMAP_EVENT_F_PEER_LOCAL 2

/* Direction of a data event, from the traced process' point of view. */
#define REDMAP_DIR_EGRESS 1  /* write/send: bytes leave the process */
#define REDMAP_DIR_INGRESS 2 /* read/recv: bytes enter the process */

/* L7 protocol, as inferred in the kernel from the first bytes. */
#define REDMAP_PROTO_UNKNOWN 0
#define REDMAP_PROTO_HTTP1 1
/* Looked at, not recognised: the connection is no longer traced. */
#define REDMAP_PROTO_NONE 255

/* Role of the traced process on the connection. */
#define REDMAP_ROLE_UNKNOWN 0
#define REDMAP_ROLE_CLIENT 1
#define REDMAP_ROLE_SERVER 2

/* Syscall that produced a data event (for debugging and self-metrics). */
#define REDMAP_SYS_READ 1
#define REDMAP_SYS_WRITE 2
#define REDMAP_SYS_READV 3
#define REDMAP_SYS_WRITEV 4
#define REDMAP_SYS_SENDTO 5
#define REDMAP_SYS_RECVFROM 6
#define REDMAP_SYS_SENDMSG 7
#define REDMAP_SYS_RECVMSG 8
#define REDMAP_SYS_SENDMMSG 9
#define REDMAP_SYS_RECVMMSG 10
#define REDMAP_SYS_SENDFILE 11

/* Address families as in <sys/socket.h>. */
#define REDMAP_AF_INET 2
#define REDMAP_AF_INET6 10

/* Indexes into redmap_stats.v of the per-CPU `stats` map. Userspace sums
 * across CPUs. */
#define REDMAP_STAT_RINGBUF_DROPS 0   /* bpf_ringbuf_output/reserve failed */
#define REDMAP_STAT_EVENTS 1          /* records written to the ring */
#define REDMAP_STAT_CONN_UNCLASSIFIED 2 /* connections dropped by inference */
#define REDMAP_STAT_CONN_CLASSIFIED 3 /* connections marked with a protocol */
#define REDMAP_STAT_READ_FAILED 5     /* bpf_probe_read of payload failed */
/* Not a counter: bytes queued in the ring at this CPU's last submit. */
#define REDMAP_STAT_RING_QUEUED 6
#define REDMAP_STAT_MAX 8

/* The value of the per-CPU `stats` map (a single entry, key 0). */
struct redmap_stats {
	__u64 v[REDMAP_STAT_MAX];
};

/*
 * A connection incarnation is (tgid, fd, start_ns): fds are reused after
 * close, start_ns (when the kernel side first saw this fd as a socket) tells
 * the incarnations apart.
 */
struct redmap_data_event {
	__u32 type;      /* REDMAP_EVENT_DATA */
	__u32 direction; /* REDMAP_DIR_* */
	__u32 tgid;
	__u32 tid;
	__s32 fd;
	__u32 protocol; /* REDMAP_PROTO_* */
	__u64 conn_start_ns;
	__u64 enter_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 exit_ns;
	__u64 cgroup_id;
	__u32 byte_count;   /* syscall return value: bytes really moved */
	__u32 captured_len; /* bytes in data[] (<= byte_count) */
	/* write_seq (egress) or copied_seq (ingress) at syscall entry: the TCP
	 * stream position of the first byte of this event. */
	__u32 tcp_seq;
	__u16 family; /* REDMAP_AF_* */
	__u16 role;   /* REDMAP_ROLE_* */
	__u16 local_port; /* host byte order */
	__u16 remote_port;
	__u16 syscall; /* REDMAP_SYS_* */
	__u16 flags;   /* REDMAP_EVENT_F_* */
	__u8 local_addr[16]; /* network byte order; IPv4 in the first 4 bytes */
	__u8 remote_addr[16];
	/* Process name (comm of the thread group leader) when the connection
	 * was first seen: names short-lived processes gone from /proc by the
	 * time userspace looks. NUL-padded, not always NUL-terminated. */
	char comm[16];
	__u8 data[]; /* captured_len bytes follow */
};

/*
 * A paired client end's syscalls, compacted (see "parse once" in
 * socket_trace.bpf.c): no payload, no addresses or process name (userspace
 * has them from the connection's first event, which is a full data event),
 * and a write held back in the kernel until the read that follows it, so
 * that a request and its response cost one record. A part whose length is
 * 0 is absent: a write alone when a second write came before any read.
 */
struct redmap_peer_event {
	__u32 type; /* REDMAP_EVENT_PEER */
	__u32 tgid;
	__s32 fd;
	__u16 protocol; /* REDMAP_PROTO_* */
	__u16 pad;
	__u64 conn_start_ns;
	__u64 ts_ns;   /* when the record was written (ordering); the read's return */
	__u64 send_ns; /* the write's return */
	__u32 send_seq; /* write_seq at the write's first byte */
	__u32 send_len;
	__u32 send_tid;
	__u32 recv_tid;
	__u32 recv_seq; /* copied_seq at the read's first byte */
	__u32 recv_len;
};

struct redmap_close_event {
	__u32 type; /* REDMAP_EVENT_CLOSE */
	__u32 tgid;
	__s32 fd;
	__u32 protocol;
	__u64 conn_start_ns;
	__u64 close_ns;
	__u64 cgroup_id;
};

#endif /* REDMAP_BPF_SOCKET_TRACE_H */
