/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * TCP network health from kernel tracepoints: connect latency, failed
 * connects, retransmits, resets, zero windows, and per-connection bytes and
 * smoothed RTT at close. Compiled into socket_trace.bpf.c's object (this
 * header is included at its end) because accept(), which that file already
 * hooks at sys_exit, is the only moment a passively opened connection meets
 * the process that owns it; one object lets both share `tcp_conns`.
 *
 * Hooks (all tp_btf, fired per state change or per received segment, never
 * per byte):
 *   inet_sock_set_state   connect start/end/failure, FIN sent, close, listen
 *   tcp_retransmit_skb    data and SYN retransmits (segments)
 *   tcp_retransmit_synack SYN-ACK retransmits
 *   tcp_send_reset        resets sent (also those answering a closed port)
 *   tcp_receive_reset     resets received
 *   tcp_destroy_sock      forget the connection
 *   tcp_probe             zero windows (runs for every segment received on
 *                         an established socket: two loads, and an event
 *                         only when a window is zero; a direct-load copy and
 *                         a helper copy, see zero_window)
 *
 * RTT and bytes are read once, when the connection closes: no per-ACK cost,
 * exact totals. The price: a connection contributes them only when it ends.
 *
 * Connections that were open before redmap started have no entry in
 * tcp_conns, so they never produce connect latencies, byte counts or
 * established/closed events; their retransmits, resets and zero windows are
 * still counted, with the owner unknown.
 */
#ifndef REDMAP_BPF_TCP_HEALTH_BPF_H
#define REDMAP_BPF_TCP_HEALTH_BPF_H

#include "tcp_health.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tcp_events SEC(".maps");

#define TCP_CONN_REPORTED 1 /* ESTABLISHED was sent: CLOSED will be too */
#define TCP_CONN_FIN_SENT 2 /* our FIN is queued: write_seq counts it */
#define TCP_CONN_CLOSED 4   /* CLOSED was sent; the entry waits for destroy */

struct tcp_conn {
	__u64 syn_ns; /* SYN sent (client); 0 for passive opens */
	__u64 acked_base;    /* bytes_acked when established (the SYN) */
	__u64 received_base; /* bytes_received when established */
	__u32 tgid;
	__u16 role;
	__u16 flags; /* TCP_CONN_* */
	__u32 retrans_seen; /* tp->total_retrans at the last retransmit event */
	__u32 pad;
	char comm[16];
	__u64 cgroup_id; /* owner's, taken in its process context */
};

/* struct sock * -> connection, from SYN_SENT (client) or ESTABLISHED
 * (server) to CLOSE. LRU: bounded (network.max_connections). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tcp_conn);
} tcp_conns SEC(".maps");

/* Tuple of a request or timewait sock (or any sock_common whose skc_num is
 * still set). */
static __always_inline void tcp_fill_tuple(struct redmap_tcp_event *ev, const struct sock_common *c)
{
	ev->family = BPF_CORE_READ(c, skc_family);
	ev->local_port = BPF_CORE_READ(c, skc_num);
	ev->remote_port = bpf_ntohs(BPF_CORE_READ(c, skc_dport));
	if (ev->family == REDMAP_AF_INET) {
		bpf_core_read(ev->local_addr, 4, &c->skc_rcv_saddr);
		bpf_core_read(ev->remote_addr, 4, &c->skc_daddr);
	} else {
		bpf_core_read(ev->local_addr, 16, &c->skc_v6_rcv_saddr);
		bpf_core_read(ev->remote_addr, 16, &c->skc_v6_daddr);
	}
}

/* Tuple of a full socket. The local port comes from inet_sport: closing
 * releases the port binding (skc_num = 0) before the CLOSE state is set. */
static __always_inline void tcp_fill_sk_tuple(struct redmap_tcp_event *ev, const struct sock *sk)
{
	tcp_fill_tuple(ev, &sk->__sk_common);
	ev->local_port = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
}

static __always_inline int tcp_is_self(const struct redmap_tcp_event *ev)
{
	return (self_port && (ev->local_port == self_port || ev->remote_port == self_port)) ||
	       (self_debug_port &&
		(ev->local_port == self_debug_port || ev->remote_port == self_debug_port));
}

/* Fills owner fields from the connection's entry, if it has one. */
static __always_inline void tcp_fill_owner(struct redmap_tcp_event *ev, const struct tcp_conn *tc)
{
	if (!tc)
		return;
	ev->tgid = tc->tgid;
	ev->cgroup_id = tc->cgroup_id;
	ev->role = tc->role;
	__builtin_memcpy(ev->comm, tc->comm, sizeof(ev->comm));
}

static __always_inline void tcp_submit(struct redmap_tcp_event *ev)
{
	ev->type = REDMAP_EVENT_TCP;
	ev->ts_ns = bpf_ktime_get_ns();
	/* Adaptive wakeup (flags 0): the reader is woken only when it has
	 * caught up, so a burst costs one wakeup. Prompt delivery matters here:
	 * userspace names a short-lived process from /proc while it lives. */
	if (bpf_ringbuf_output(&tcp_events, ev, sizeof(*ev), 0))
		stat_inc(REDMAP_STAT_TCP_RINGBUF_DROPS);
	else
		stat_inc(REDMAP_STAT_TCP_EVENTS);
}

static __always_inline void tcp_set_current_owner(struct tcp_conn *tc)
{
	tc->tgid = bpf_get_current_pid_tgid() >> 32;
	tc->cgroup_id = bpf_get_current_cgroup_id();
	bpf_probe_read_kernel_str(tc->comm, sizeof(tc->comm), bpf_get_current_task_btf()->group_leader->comm);
}

/* Called from the sys_exit accept path (socket_trace.bpf.c): the accepting
 * process owns the connection; report it established now that we know who. */
static __always_inline void tcp_conn_accepted(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct tcp_conn *tc = bpf_map_lookup_elem(&tcp_conns, &key);
	struct redmap_tcp_event ev = {};

	if (!tc || (tc->flags & (TCP_CONN_REPORTED | TCP_CONN_CLOSED)))
		return;
	tcp_fill_sk_tuple(&ev, sk);
	if (tcp_is_self(&ev)) {
		bpf_map_delete_elem(&tcp_conns, &key);
		return;
	}
	tcp_set_current_owner(tc);
	tc->flags |= TCP_CONN_REPORTED;
	ev.kind = REDMAP_TCP_ESTABLISHED;
	ev.sk = key;
	tcp_fill_owner(&ev, tc);
	tcp_submit(&ev);
}

static __always_inline void tcp_on_close(const struct sock *sk, __u64 key, int oldstate)
{
	struct tcp_conn *tc = bpf_map_lookup_elem(&tcp_conns, &key);
	struct redmap_tcp_event ev = {};

	if (oldstate == TCP_SYN_SENT) {
		/* The handshake never completed: why is in sk_err (refused,
		 * timed out, unreachable, reset), 0 if the owner gave up. */
		tcp_fill_sk_tuple(&ev, sk);
		if (!tcp_is_self(&ev)) {
			ev.kind = REDMAP_TCP_CONNECT_FAILED;
			ev.sk = key;
			ev.aux = BPF_CORE_READ(sk, sk_err);
			ev.role = REDMAP_ROLE_CLIENT;
			tcp_fill_owner(&ev, tc);
			tcp_submit(&ev);
		}
	} else if (tc && (tc->flags & TCP_CONN_REPORTED)) {
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;
		__u64 acked = BPF_CORE_READ(tp, bytes_acked);
		__u64 received = BPF_CORE_READ(tp, bytes_received);
		__u32 snd_una = BPF_CORE_READ(tp, snd_una);
		__u32 write_seq = BPF_CORE_READ(tp, write_seq);
		unsigned long sk_flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

		/* The byte counters also count the SYN (in the base) and a FIN
		 * in each direction: take out our FIN once the peer acked it,
		 * and the peer's FIN once it arrived (SOCK_DONE). */
		if ((tc->flags & TCP_CONN_FIN_SENT) && snd_una == write_seq && acked > 0)
			acked--;
		if ((sk_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) && received > 0)
			received--;
		tcp_fill_sk_tuple(&ev, sk);
		ev.kind = REDMAP_TCP_CLOSED;
		ev.sk = key;
		ev.value = acked > tc->acked_base ? acked - tc->acked_base : 0;
		ev.value2 = received > tc->received_base ? received - tc->received_base : 0;
		ev.srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
		ev.aux = REDMAP_TCP_CLOSED_HAS_STATS;
		tcp_fill_owner(&ev, tc);
		tcp_submit(&ev);
	}
	/* Kept until tcp_destroy_sock: a reset sent by close() comes after the
	 * CLOSE state and still needs the owner. Cleared so nothing repeats. */
	if (tc) {
		tc->flags = TCP_CONN_CLOSED;
		tc->syn_ns = 0;
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 key = (__u64)sk;
	struct tcp_conn *tc;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	switch (newstate) {
	case TCP_SYN_SENT: {
		/* connect(): process context, the caller owns the socket. */
		struct tcp_conn fresh = {};

		if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
			return 0;
		fresh.syn_ns = bpf_ktime_get_ns();
		fresh.role = REDMAP_ROLE_CLIENT;
		tcp_set_current_owner(&fresh);
		bpf_map_update_elem(&tcp_conns, &key, &fresh, BPF_ANY);
		return 0;
	}
	case TCP_ESTABLISHED: {
		const struct tcp_sock *tp = (const struct tcp_sock *)sk;

		if (oldstate == TCP_SYN_RECV) {
			/* Passive open, in softirq: the owner is whoever
			 * accepts it (tcp_conn_accepted). */
			struct tcp_conn fresh = {};

			fresh.role = REDMAP_ROLE_SERVER;
			/* SYN-ACK retransmits were counted on the listener. */
			fresh.retrans_seen = BPF_CORE_READ(tp, total_retrans);
			fresh.acked_base = BPF_CORE_READ(tp, bytes_acked);
			fresh.received_base = BPF_CORE_READ(tp, bytes_received);
			bpf_map_update_elem(&tcp_conns, &key, &fresh, BPF_ANY);
			return 0;
		}
		if (oldstate != TCP_SYN_SENT)
			return 0;
		tc = bpf_map_lookup_elem(&tcp_conns, &key);
		if (!tc || !tc->syn_ns)
			return 0; /* connect() predates redmap: no latency to give */
		struct redmap_tcp_event ev = {};

		tcp_fill_sk_tuple(&ev, sk);
		if (tcp_is_self(&ev)) {
			bpf_map_delete_elem(&tcp_conns, &key);
			return 0;
		}
		tc->acked_base = BPF_CORE_READ(tp, bytes_acked);
		tc->received_base = BPF_CORE_READ(tp, bytes_received);
		tc->flags |= TCP_CONN_REPORTED;
		ev.kind = REDMAP_TCP_ESTABLISHED;
		ev.sk = key;
		ev.value = bpf_ktime_get_ns() - tc->syn_ns;
		tcp_fill_owner(&ev, tc);
		tcp_submit(&ev);
		return 0;
	}
	case TCP_FIN_WAIT1:
	case TCP_LAST_ACK:
		/* tcp_close_state() queued our FIN: write_seq now counts it. */
		tc = bpf_map_lookup_elem(&tcp_conns, &key);
		if (tc)
			tc->flags |= TCP_CONN_FIN_SENT;
		return 0;
	case TCP_CLOSE:
		if (oldstate != TCP_LISTEN)
			tcp_on_close(sk, key, oldstate);
		return 0;
	case TCP_LISTEN: {
		/* listen(): process context. Names servers for their clients. */
		struct redmap_tcp_event ev = {};

		if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
			return 0;
		tcp_fill_sk_tuple(&ev, sk);
		ev.kind = REDMAP_TCP_LISTEN;
		ev.sk = key;
		ev.role = REDMAP_ROLE_SERVER;
		ev.tgid = bpf_get_current_pid_tgid() >> 32;
		ev.cgroup_id = bpf_get_current_cgroup_id();
		bpf_probe_read_kernel_str(ev.comm, sizeof(ev.comm),
					  bpf_get_current_task_btf()->group_leader->comm);
		tcp_submit(&ev);
		return 0;
	}
	default:
		return 0;
	}
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk;

	bpf_map_delete_elem(&tcp_conns, &key);
	return 0;
}

/* Retransmitted segments, counted the way the kernel's TCP_MIB_RETRANSSEGS
 * (nstat TcpRetransSegs) counts them: by the growth of tp->total_retrans,
 * which the kernel bumps by tcp_skb_pcount() exactly where it bumps the MIB.
 * The tracepoint alone is not enough: since 6.12 it also fires for attempts
 * that never reached the counter (err != 0 on an early return). Sockets
 * without an entry (opened before redmap) count successful attempts. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	__u64 key = (__u64)sk;
	struct redmap_tcp_event ev = {};
	struct tcp_conn *tc = bpf_map_lookup_elem(&tcp_conns, &key);
	int state = BPF_CORE_READ(sk, __sk_common.skc_state);
	__u64 segs;

	if (tc) {
		__u32 total = BPF_CORE_READ((const struct tcp_sock *)sk, total_retrans);

		segs = total - tc->retrans_seen;
		tc->retrans_seen = total;
	} else {
		const struct tcp_skb_cb *cb = (const struct tcp_skb_cb *)&skb->cb[0];

		/* The event has an err field exactly when the tracepoint takes err. */
		if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err) &&
		    (int)ctx[2] != 0)
			return 0;
		segs = BPF_CORE_READ(cb, tcp_gso_segs);
		if (!segs)
			segs = 1;
	}
	if (!segs)
		return 0;
	tcp_fill_sk_tuple(&ev, sk);
	if (tcp_is_self(&ev))
		return 0;
	ev.kind = REDMAP_TCP_RETRANSMIT;
	ev.sk = key;
	ev.value = segs;
	ev.aux = state == TCP_SYN_SENT   ? REDMAP_TCP_RETRANS_SYN
		 : state == TCP_SYN_RECV ? REDMAP_TCP_RETRANS_SYNACK
					 : REDMAP_TCP_RETRANS_DATA;
	tcp_fill_owner(&ev, tc);
	if (state == TCP_SYN_SENT)
		ev.role = REDMAP_ROLE_CLIENT;
	tcp_submit(&ev);
	return 0;
}

/* A listener retransmitting the SYN-ACK of a request not yet accepted: the
 * tuple lives in the request sock. */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tcp_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	struct redmap_tcp_event ev = {};

	tcp_fill_tuple(&ev, &req->__req_common);
	if (tcp_is_self(&ev))
		return 0;
	ev.kind = REDMAP_TCP_RETRANSMIT;
	ev.sk = (__u64)sk;
	ev.value = 1;
	ev.aux = REDMAP_TCP_RETRANS_SYNACK;
	ev.role = REDMAP_ROLE_SERVER;
	tcp_submit(&ev);
	return 0;
}

/* Addresses of the segment a socket-less RST answers: ours is its
 * destination. */
static __always_inline int tcp_tuple_from_skb(struct redmap_tcp_event *ev, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 version = 0;
	__u16 ports[2];

	if (bpf_probe_read_kernel(&version, 1, head + nh))
		return -1;
	version >>= 4;
	if (version == 4) {
		ev->family = REDMAP_AF_INET;
		if (bpf_probe_read_kernel(ev->remote_addr, 4, head + nh + 12) ||
		    bpf_probe_read_kernel(ev->local_addr, 4, head + nh + 16))
			return -1;
	} else if (version == 6) {
		ev->family = REDMAP_AF_INET6;
		if (bpf_probe_read_kernel(ev->remote_addr, 16, head + nh + 8) ||
		    bpf_probe_read_kernel(ev->local_addr, 16, head + nh + 24))
			return -1;
	} else {
		return -1;
	}
	if (bpf_probe_read_kernel(ports, sizeof(ports), head + th))
		return -1;
	ev->remote_port = bpf_ntohs(ports[0]);
	ev->local_port = bpf_ntohs(ports[1]);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	struct redmap_tcp_event ev = {};
	__u64 key = (__u64)sk;

	if (sk) {
		int state = BPF_CORE_READ(sk, __sk_common.skc_state);

		if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
			tcp_fill_tuple(&ev, &sk->__sk_common);
		else
			tcp_fill_sk_tuple(&ev, sk);
		tcp_fill_owner(&ev, bpf_map_lookup_elem(&tcp_conns, &key));
	} else {
		/* No socket: a segment to a port nobody listens on (refused)
		 * or to a connection long gone. We are its server side. */
		if (!skb || tcp_tuple_from_skb(&ev, skb))
			return 0;
		ev.role = REDMAP_ROLE_SERVER;
	}
	if (tcp_is_self(&ev))
		return 0;
	ev.kind = REDMAP_TCP_RESET_SENT;
	ev.sk = key;
	ev.value = 1;
	tcp_submit(&ev);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	struct redmap_tcp_event ev = {};
	__u64 key = (__u64)sk;

	tcp_fill_sk_tuple(&ev, sk);
	if (tcp_is_self(&ev))
		return 0;
	ev.kind = REDMAP_TCP_RESET_RECEIVED;
	ev.sk = key;
	ev.value = 1;
	tcp_fill_owner(&ev, bpf_map_lookup_elem(&tcp_conns, &key));
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_SYN_SENT)
		ev.role = REDMAP_ROLE_CLIENT;
	tcp_submit(&ev);
	return 0;
}

/* Every segment received on an established socket passes here, so the
 * common case is two loads and a return. The tracepoint fires before the
 * segment is processed, so both windows are the ones in force when it
 * arrived: rcv_wnd is what this side last advertised, snd_wnd what the peer
 * last advertised. A zero-window episode therefore counts the probes/ACKs
 * received during it (the reopening segment is the last one counted, the
 * closing one is not).
 *
 * Two copies, like sys_exit: tcp_zero_window reads the windows through
 * bpf_rdonly_cast (tcp_probe only fires on full TCP sockets; no helper call:
 * measured ~45 ns less per request on nginx + wrk, ~25 % of this program),
 * tcp_zero_window_compat through bpf_skc_to_tcp_sock where the kfunc is
 * missing. The loader picks the copy that goes with its sys_exit copy. */
static __always_inline int zero_window(struct sock *sk, const bool direct)
{
	/* `direct` is a constant: each copy keeps one of the two casts. */
	struct tcp_sock *tp = direct ? bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock))
				     : bpf_skc_to_tcp_sock(sk);
	__u32 kind;

	if (!tp)
		return 0;
	if (tp->rcv_wnd == 0)
		kind = REDMAP_TCP_ZERO_WINDOW_LOCAL; /* our application is not reading */
	else if (tp->snd_wnd == 0)
		kind = REDMAP_TCP_ZERO_WINDOW_PEER; /* the peer's application is not */
	else
		return 0;

	struct redmap_tcp_event ev = {};
	__u64 key = (__u64)sk;

	tcp_fill_sk_tuple(&ev, sk);
	if (tcp_is_self(&ev))
		return 0;
	ev.kind = kind;
	ev.sk = key;
	ev.value = 1;
	tcp_fill_owner(&ev, bpf_map_lookup_elem(&tcp_conns, &key));
	tcp_submit(&ev);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_zero_window, struct sock *sk, const struct sk_buff *skb)
{
	return zero_window(sk, true);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_zero_window_compat, struct sock *sk, const struct sk_buff *skb)
{
	return zero_window(sk, false);
}

#endif /* REDMAP_BPF_TCP_HEALTH_BPF_H */
