// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Socket data capture from the syscall exit tracepoint.
 *
 * One program runs at the exit of every syscall (tp_btf/sys_exit; a
 * raw_tracepoint/sys_exit twin is the fallback for kernels without BTF
 * tracepoints). It reads the syscall number and arguments from pt_regs, so
 * no entry hook and no per-thread argument stash are needed:
 *
 *   data (read, write, readv, writev, sendto, recvfrom, sendmsg, recvmsg,
 *   sendfile): resolve fd -> TCP socket, derive the stream position of the
 *   first byte (write_seq or copied_seq now, minus the bytes just moved),
 *   infer the L7 protocol on a connection's first bytes, and add an event
 *   with the first `payload_bytes` bytes to this CPU's batch, which goes to
 *   the CPU's ring buffer as one record (see struct scratch);
 *   connect/accept/accept4: note the role of a new connection;
 *   close: end the connection.
 *
 * Why exit-only: per-syscall tracepoints build a trace record before calling
 * BPF and need an enter/exit pair; measured on nginx+wrk, sixteen empty
 * per-syscall programs cost 9-19% of throughput, one empty tp_btf/sys_exit
 * 0-10%. The price: a send's timestamp is its return, not its entry (the
 * copy into the socket buffer, microseconds, is not part of latencies).
 *
 * Cost discipline (this runs on every syscall of the node): other syscall
 * numbers return at once, non-socket fds bail after the fd-table read,
 * connections inferred as "no known protocol" after one map lookup, events
 * go to the ring in batches, and wakeups are rare: userspace is woken only
 * while it sleeps and a ring holds wakeup_bytes, otherwise it drains on a
 * timer.
 *
 * TCP network health (tcp_health.bpf.h) is part of this object: accept()
 * is where a passively opened connection learns its owner.
 *
 * Kernel memory on the per-event path (the fd table slot, the file and
 * socket checks, write_seq or copied_seq) is read with plain loads through bpf_rdonly_cast (a kfunc,
 * kernel 6.2+) rather than bpf_probe_read_kernel calls. Two copies of the
 * program are built from this file: sys_exit_btf with those loads and
 * sys_exit_compat with helper reads, which the loader falls back to where the
 * kfunc is missing; sys_exit_raw is the last resort (see `direct` below).
 *
 * Not traced: sendmmsg/recvmmsg (UDP, not parsed yet), splice and io_uring
 * (bytes moved that way show up as position gaps).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "protocol_infer.h"
#include "socket_trace.h"
#include "syscall_nrs.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Read-only knobs, set by userspace between open and load. */
const volatile __u32 self_tgid = 0;
const volatile __u16 self_port = 0;
const volatile __u16 self_debug_port = 0; /* the debug (traces) listener */
const volatile __u32 payload_bytes = 1024;
/* Parse once when both ends are local (see conn_mark_peer). */
const volatile __u32 parse_once = 1;
const volatile __u64 wakeup_bytes = 64 * 1024;
/* A batch goes to the ring once it holds this many bytes (userspace: at
 * most REDMAP_BATCH_BYTES and 1/16 of a CPU's ring, so that records stay
 * small next to the ring). */
const volatile __u32 batch_bytes = REDMAP_BATCH_BYTES;
/* Events per ring record (1: each event its own record). Writable: the
 * exporter sets 1 after load if it cannot run flush_batch. */
__u32 batch_events = REDMAP_BATCH_EVENTS;
/* Set by userspace while it sleeps in epoll_wait on the rings (see submit).
 * In .bss, a page of its own: the reader writes it twice a round. */
__u32 reader_waiting = 0;

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define EINPROGRESS 115
#define EBADF 9
#define MSG_PEEK 2
#define MAX_IOV 4

/* Casts a kernel address to a typed pointer whose fields the verifier lets
 * us load directly (faults read as zero, like bpf_probe_read_kernel, but
 * without a helper call each). Weak: where the kernel lacks it, only the
 * programs that use it fail to load. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/* Sizes below are defaults; userspace sets the real ones from the config
 * with bpf_map__set_max_entries before load. */
/* One ring per CPU: a ring shared by all CPUs bounces its lock and
 * positions between them on every event (measured: ~30% of this program's
 * cost with two CPUs). Userspace creates the rings, puts them in this array
 * indexed by CPU, and merges their records back into time order
 * (aggregators/sources/record_merger.h). */
struct cpu_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 256);
	__type(key, __u32);
	__array(values, struct cpu_ring);
} events SEC(".maps");

struct conn_info {
	__u64 start_ns;
	__u64 file; /* struct file * the fd named when the entry was made */
	__u64 sk;   /* its struct sock * */
	__u32 protocol; /* REDMAP_PROTO_* */
	__u16 role;     /* REDMAP_ROLE_* */
	__u16 family;
	__u16 local_port;
	__u16 remote_port;
	__u8 peer; /* REDMAP_EVENT_F_PEER_* or 0 */
	__u8 pad[3];
	__u8 local_addr[16];
	__u8 remote_addr[16];
	char comm[16];
	/* cgroup of the process when the entry was made: a process keeps its
	 * cgroup (its pod) for life, so one helper call per connection. */
	__u64 cgroup_id;
	/* A paired client end's latest write, held until the read after it
	 * (pend_len 0: none): see peer_exit. */
	__u64 pend_ns;
	__u32 pend_seq;
	__u32 pend_len;
	__u32 pend_tid;
	__u32 pad2;
};

/* (tgid << 32 | fd) -> connection. LRU: bounded, and entries of processes
 * that exited without close() age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_info);
} conn_info_map SEC(".maps");

/* Parse once when both ends are local. A request between two traced
 * processes on this node is otherwise copied and parsed twice: at the
 * client's write and read and again at the server's read and write. The
 * server's copy is enough: the client end moves the same bytes, so
 * userspace builds the client's span from the server's parse and the
 * client's own timestamps and stream positions, matched by TCP sequence
 * number (aggregators/conntrack/peer_join.h). The pair is recognised when
 * the server accepts: clients publish their 4-tuple at connect, and the
 * accept looks the reversed tuple up. From then on the client's events
 * carry no payload (except while its protocol is still unknown: inference
 * needs the bytes), and go out as compact records, a write with the read
 * after it (peer_exit). Connections redmap did not see open are not paired.
 * Measured on nginx + wrk: ~300 ns less of this program per request seen
 * at both ends, and no client-side parsing. Addresses are keyed in their
 * IPv6 form (IPv4 as ::ffff:a.b.c.d), so that an IPv4 client pairs with
 * its server's socket on a dual-stack listener, which names it that way. */
struct peer_tuple {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u32 pad;
};

/* Client 4-tuple (its own view) -> conn_info_map key of the client end. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct peer_tuple);
	__type(value, __u64);
} local_clients SEC(".maps");

/* A CPU's batch: events are written here, back to back (each padded to 8
 * bytes), and go to the ring together as one record when batch_events of
 * them are in, when batch_bytes are, or when userspace asks (flush_batch,
 * run on a CPU whose batch holds an event older than what userspace is
 * about to deliver). One bpf_ringbuf_output per event cost ~145 ns each
 * (lock, copy, commit, and a return thunk per kernel function call on a
 * kernel with return-stack mitigations); measured on nginx + wrk, batches
 * cut this program's run time per request by ~15 % (2.35 -> 2.0 us). buf
 * leaves room past the mark for one event with twice the payload ceiling,
 * so that "offset <= MAX and length <= MAX" is enough for the verifier when
 * copying several iovecs back to back. */
struct scratch {
	struct redmap_batch_state st;
	__u8 buf[REDMAP_BATCH_BYTES + sizeof(struct redmap_data_event) + 2 * REDMAP_MAX_PAYLOAD];
};

/* One slot per CPU. A plain array indexed by CPU id rather than a per-CPU
 * array: per-CPU values are capped at 32 KiB. Userspace sizes it to the
 * number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE); /* userspace reads each batch's state */
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* All counters of a CPU in one value: one lookup per event, and plain
 * increments (per-CPU memory; a nested program on the same CPU touches other
 * indexes). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redmap_stats);
} stats SEC(".maps");

static __always_inline struct redmap_stats *cpu_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

static __always_inline void stat_inc(__u32 idx)
{
	struct redmap_stats *st = cpu_stats();

	if (st && idx < REDMAP_STAT_MAX)
		st->v[idx]++;
}

/* TCP network health programs share this object (see the file's top). */
#include "tcp_health.bpf.h"

static __always_inline __u64 conn_key(__u32 tgid, __s32 fd)
{
	return ((__u64)tgid << 32) | (__u32)fd;
}

/* fd of a task -> its struct file, or NULL. The walk down to the fd array
 * uses direct BTF loads; the slot itself, at a variable index, is loaded
 * through bpf_rdonly_cast when `direct` (any struct whose first member is a
 * pointer serves as the slot's type), else with a helper read. */
static __always_inline struct file *fd_to_file(struct task_struct *task, __s32 fd, const bool direct)
{
	struct files_struct *files = task->files;
	struct file *file = NULL;
	struct fdtable *fdt;

	if (fd < 0 || !files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || (__u32)fd >= fdt->max_fds)
		return NULL;
	if (direct) {
		struct list_head *slot = bpf_rdonly_cast((void *)((__u64)fdt->fd + (__u64)fd * sizeof(file)),
							 bpf_core_type_id_kernel(struct list_head));

		return (struct file *)slot->next;
	}
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]))
		return NULL;
	return file;
}

/* Whether a file (not NULL) is a socket, by direct loads. */
static __always_inline bool file_is_socket(struct file *file)
{
	struct file *f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));

	return (f->f_inode->i_mode & S_IFMT) == S_IFSOCK;
}

/* file -> its TCP sock, or NULL for anything else. */
static __always_inline struct sock *file_to_tcp_sock(struct file *file, const bool direct)
{
	struct socket *sock;
	struct sock *sk;

	if (!file)
		return NULL;
	if (direct) {
		struct file *f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));

		if (!file_is_socket(file))
			return NULL;
		sock = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
		if (!sock)
			return NULL;
		sk = sock->sk;
		if (!sk)
			return NULL;
		if (sk->__sk_common.skc_family != REDMAP_AF_INET &&
		    sk->__sk_common.skc_family != REDMAP_AF_INET6)
			return NULL;
		if (sk->sk_type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP)
			return NULL;
		return sk;
	}
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != REDMAP_AF_INET && family != REDMAP_AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return NULL;
	return sk;
}

static __always_inline void fill_tuple(struct conn_info *ci, struct sock *sk)
{
	ci->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ci->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ci->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (ci->family == REDMAP_AF_INET) {
		bpf_core_read(ci->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(ci->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(ci->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ci->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

/* Creates (or, for a reused fd, replaces) the entry for a socket. */
static __always_inline struct conn_info *conn_create(__u64 key, struct file *file, struct sock *sk,
						      __u16 role)
{
	struct conn_info ci = {};

	ci.start_ns = bpf_ktime_get_ns();
	ci.file = (__u64)file;
	ci.sk = (__u64)sk;
	bpf_probe_read_kernel_str(ci.comm, sizeof(ci.comm), bpf_get_current_task_btf()->group_leader->comm);
	ci.role = role;
	ci.cgroup_id = bpf_get_current_cgroup_id();
	fill_tuple(&ci, sk);
	/* redmap's own endpoints (scrapes of /metrics, trace queries) are never traced. */
	if ((self_port && (ci.local_port == self_port || ci.remote_port == self_port)) ||
	    (self_debug_port &&
	     (ci.local_port == self_debug_port || ci.remote_port == self_debug_port)))
		ci.protocol = REDMAP_PROTO_NONE;
	bpf_map_update_elem(&conn_info_map, &key, &ci, BPF_ANY);
	return bpf_map_lookup_elem(&conn_info_map, &key);
}

/* One data syscall, as read from pt_regs at its exit. */
struct data_call {
	__u64 buf; /* buf, iovec array or msghdr, depending on kind */
	__s32 fd;
	__u32 kind; /* REDMAP_SYS_* */
	__u32 iovcnt;
	__u32 dir; /* REDMAP_DIR_* */
	__u32 peek; /* MSG_PEEK: the bytes stay in the socket */
};

/* Copies up to `len` bytes of the syscall's user data into dst. Returns the
 * number of bytes copied. */
static __always_inline __u32 copy_payload(__u8 *dst, const struct data_call *a, __u64 len)
{
	__u64 off = 0;

	if (len > payload_bytes)
		len = payload_bytes;
	if (len > REDMAP_MAX_PAYLOAD)
		len = REDMAP_MAX_PAYLOAD;

	if (a->kind == REDMAP_SYS_READ || a->kind == REDMAP_SYS_WRITE || a->kind == REDMAP_SYS_SENDTO ||
	    a->kind == REDMAP_SYS_RECVFROM) {
		if (bpf_probe_read_user(dst, len, (void *)a->buf)) {
			stat_inc(REDMAP_STAT_READ_FAILED);
			return 0;
		}
		return len;
	}
	if (a->kind == REDMAP_SYS_SENDFILE)
		return 0; /* bytes come from a file, not from user memory */

	/* iovec-based: readv/writev carry the array directly, *msg via msghdr. */
	struct iovec *iov = (struct iovec *)a->buf;
	__u32 iovcnt = a->iovcnt;

	if (a->kind == REDMAP_SYS_SENDMSG || a->kind == REDMAP_SYS_RECVMSG) {
		struct user_msghdr msg;

		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)a->buf)) {
			stat_inc(REDMAP_STAT_READ_FAILED);
			return 0;
		}
		iov = msg.msg_iov;
		iovcnt = msg.msg_iovlen;
	}

	/* The iovec array in one read (not one per element): nginx answers
	 * with a two-element writev. */
	struct iovec vs[MAX_IOV];
	__u32 n_iov = iovcnt < MAX_IOV ? iovcnt : MAX_IOV;
	__u64 iov_bytes = (__u64)n_iov * sizeof(vs[0]);

	barrier_var(iov_bytes); /* clang 14 loses the bound otherwise */
	if (iov_bytes == 0 || iov_bytes > sizeof(vs) || bpf_probe_read_user(vs, iov_bytes, iov))
		return 0;
	for (int i = 0; i < MAX_IOV; i++) {
		__u64 n;

		if (i >= n_iov || off >= len)
			break;
		n = vs[i].iov_len;
		if (n > len - off)
			n = len - off;
		/* 64-bit bounds the verifier can see: off <= MAX, n <= MAX, and
		 * dst holds 2 * MAX. */
		barrier_var(n);
		barrier_var(off);
		if (n > REDMAP_MAX_PAYLOAD || off > REDMAP_MAX_PAYLOAD)
			break;
		if (bpf_probe_read_user(dst + off, n, vs[i].iov_base)) {
			stat_inc(REDMAP_STAT_READ_FAILED);
			break;
		}
		off += n;
	}
	return (__u32)off;
}

static __always_inline void submit(void *data, __u64 size, __u32 n)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct redmap_stats *st = cpu_stats();
	void *ring = bpf_map_lookup_elem(&events, &cpu);

	if (!st)
		return;
	if (!ring) {
		st->v[REDMAP_STAT_RINGBUF_DROPS] += n;
		return;
	}
	/* Wake the reader only while it sleeps in epoll_wait (it sets
	 * reader_waiting around the call) and the ring holds wakeup_bytes. A
	 * wakeup is an irq_work self-IPI, in a VM an APIC write that traps to the
	 * hypervisor: ~6.5 us of the producer's time each, measured on nginx +
	 * wrk. A reader that is busy or pacing its rounds comes back by itself,
	 * and under load it never sleeps in epoll_wait (the rings always hold
	 * records), so load costs no wakeups at all. Not only at the crossing:
	 * a flag read just before the reader set it would otherwise leave it
	 * asleep for a whole poll interval; this way the next batch wakes it.
	 * The flag is cleared here, before the wakeup it stands for, so that a
	 * reader woken but still waiting for a CPU costs no more of them (a
	 * late clear cannot strand the reader: the wakeup behind it follows).
	 * The fill is looked at before each record, which is a batch of events:
	 * the fill the exporter reports is that of the latest look. */
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u64 queued = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);

	if (queued >= wakeup_bytes && *(volatile __u32 *)&reader_waiting) {
		*(volatile __u32 *)&reader_waiting = 0;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	st->v[REDMAP_STAT_RING_QUEUED] = queued; /* ring fill, for redmap_table_entries */
	long err = bpf_ringbuf_output(ring, data, size, flags);

	st->v[err ? REDMAP_STAT_RINGBUF_DROPS : REDMAP_STAT_EVENTS] += n;
}

/* Sends the CPU's batch, if any, as one record. */
static __always_inline void flush(struct scratch *s)
{
	__u32 used = s->st.used;

	if (s->st.count > 0 && used > 0 && used <= sizeof(s->buf))
		submit(s->buf, used, s->st.count);
	s->st.used = 0;
	s->st.count = 0;
	s->st.flush_wanted = 0;
}

/* The CPU's batch, marked busy, and where the next event goes in it. */
static __always_inline struct scratch *batch_begin(__u32 *used)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &cpu);

	if (!s)
		return NULL;
	s->st.busy = 1;
	barrier();
	*used = s->st.used;
	if (*used >= REDMAP_BATCH_BYTES) { /* never (flushed at the mark): bounds for the verifier */
		flush(s);
		*used = 0;
	}
	return s;
}

/* Ends an event of `size` bytes written at `used` (size 0: nothing was
 * added) with timestamp ts, flushing the batch when it is full or userspace
 * asked. */
static __always_inline void batch_end(struct scratch *s, __u32 used, __u32 size, __u64 ts)
{
	if (size > 0) {
		if (s->st.count == 0)
			s->st.first_ns = ts;
		s->st.used = used + ((size + 7) & ~7u);
		s->st.count++;
	}
	if (s->st.count >= batch_events || s->st.used >= batch_bytes || s->st.flush_wanted)
		flush(s);
	barrier();
	s->st.busy = 0;
}

/* A paired client end's write or read (ci->peer is PEER_PARSES and its
 * protocol is known): positions and times only, as redmap_peer_event. A
 * write is held in ci until the read after it, which carries both: one
 * record per request and response instead of two full events (measured on
 * nginx + wrk: one payload-less data event cost this program 55-120 ns and
 * the exporter ~0.1 us). A second write before any read sends the first
 * alone. A write never followed by a read is never sent: it would have
 * made no span (a client span needs its response's end). */
static __always_inline void peer_hold(struct conn_info *ci, __u64 now, __u32 seq, __u32 tid,
				      long ret)
{
	ci->pend_ns = now;
	ci->pend_seq = seq;
	ci->pend_tid = tid;
	ci->pend_len = (__u32)ret;
}

static __always_inline int peer_exit(struct conn_info *ci, const struct data_call *a, long ret,
				     __u32 seq, __u32 tgid, __u32 tid)
{
	const __u64 now = bpf_ktime_get_ns();
	const bool send = a->dir == REDMAP_DIR_EGRESS;

	if (send && ci->pend_len == 0) {
		peer_hold(ci, now, seq, tid, ret);
		return 0;
	}

	__u32 used = 0;
	struct scratch *s = batch_begin(&used);

	if (!s)
		return 0;
	barrier_var(used);
	if (used >= REDMAP_BATCH_BYTES)
		used = 0;
	struct redmap_peer_event *ev = (struct redmap_peer_event *)(s->buf + used);

	ev->type = REDMAP_EVENT_PEER;
	ev->tgid = tgid;
	ev->fd = a->fd;
	ev->protocol = (__u16)ci->protocol;
	ev->pad = 0;
	ev->conn_start_ns = ci->start_ns;
	ev->ts_ns = now;
	ev->send_ns = ci->pend_ns;
	ev->send_seq = ci->pend_seq;
	ev->send_len = ci->pend_len;
	ev->send_tid = ci->pend_tid;
	if (send) {
		ev->recv_tid = 0;
		ev->recv_seq = 0;
		ev->recv_len = 0;
		peer_hold(ci, now, seq, tid, ret); /* after the record took the older one */
	} else {
		ev->recv_tid = tid;
		ev->recv_seq = seq;
		ev->recv_len = (__u32)ret;
		ci->pend_len = 0;
	}
	batch_end(s, used, sizeof(*ev), now);
	return 0;
}

static __always_inline int data_exit(const struct data_call *a, long ret, const bool direct)
{
	struct conn_info *ci;
	struct file *file;
	struct sock *sk;

	if (ret <= 0) /* EAGAIN from a non-blocking socket, EOF: nothing moved */
		return 0;
	/* Ids come from the task, which the fd table needs anyway: one helper
	 * call fewer than bpf_get_current_pid_tgid. */
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	__u64 key = conn_key(tgid, a->fd);

	if (tgid == self_tgid)
		return 0;
	if (direct) {
		/* With direct loads the file type costs less than the map
		 * lookup: every read and write of a regular file or pipe on
		 * the node leaves before it. */
		file = fd_to_file(task, a->fd, true);
		if (!file || !file_is_socket(file))
			return 0;
	}
	ci = bpf_map_lookup_elem(&conn_info_map, &key);
	if (ci && ci->protocol == REDMAP_PROTO_NONE)
		return 0;
	if (!direct)
		file = fd_to_file(task, a->fd, false);
	if (ci && ci->file == (__u64)file) {
		/* Same open file as when the entry was made: the cached sock is
		 * still the one behind this fd. */
		sk = (struct sock *)ci->sk;
	} else {
		sk = file_to_tcp_sock(file, direct);
		if (!sk) {
			if (ci) /* the fd now names something else (dup2) */
				bpf_map_delete_elem(&conn_info_map, &key);
			return 0;
		}
		/* First sight of a connection that predates redmap, whose
		 * connect/accept we missed, or a reused fd: the role comes from
		 * inference. */
		ci = conn_create(key, file, sk, REDMAP_ROLE_UNKNOWN);
		if (!ci || ci->protocol == REDMAP_PROTO_NONE)
			return 0;
	}

	/* Stream position of the first byte: the counter has already moved past
	 * the bytes this call transferred (unless they were only peeked at). */
	__u32 seq = 0;

	if (direct) {
		struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));

		seq = a->dir == REDMAP_DIR_EGRESS ? tp->write_seq : tp->copied_seq;
	} else {
		struct tcp_sock *tp = (struct tcp_sock *)sk;

		if (a->dir == REDMAP_DIR_EGRESS)
			bpf_core_read(&seq, sizeof(seq), &tp->write_seq);
		else
			bpf_core_read(&seq, sizeof(seq), &tp->copied_seq);
	}
	if (!a->peek)
		seq -= (__u32)ret;

	/* A paired client end copies nothing once its protocol is known: the
	 * server end's copy of the same bytes is parsed instead. */
	if (ci->peer == REDMAP_EVENT_F_PEER_PARSES && ci->protocol != REDMAP_PROTO_UNKNOWN)
		return peer_exit(ci, a, ret, seq, tgid, task->pid);

	__u32 used = 0;
	struct scratch *s = batch_begin(&used);
	if (!s)
		return 0;
	/* Clamped again here: the verifier loses batch_begin's bound on the
	 * way back (rejected when batch_begin returned the slot instead). */
	barrier_var(used);
	if (used >= REDMAP_BATCH_BYTES)
		used = 0;
	struct redmap_data_event *ev = (struct redmap_data_event *)(s->buf + used);
	__u8 *payload = (__u8 *)ev + sizeof(*ev);
	__u32 captured = copy_payload(payload, a, (__u64)ret);
	__u16 flags = ci->peer == REDMAP_EVENT_F_PEER_LOCAL ? REDMAP_EVENT_F_PEER_LOCAL : 0;

	if (ci->protocol == REDMAP_PROTO_UNKNOWN) {
		__u32 is_request = 0;
		__u32 proto = redmap_infer_protocol(payload, captured, &is_request);

		if (proto == REDMAP_PROTO_UNKNOWN) {
			/* Nothing we parse: stop tracing this connection. */
			ci->protocol = REDMAP_PROTO_NONE;
			stat_inc(REDMAP_STAT_CONN_UNCLASSIFIED);
			batch_end(s, used, 0, 0);
			return 0;
		}
		ci->protocol = proto;
		if (ci->role == REDMAP_ROLE_UNKNOWN)
			ci->role = (is_request == (a->dir == REDMAP_DIR_EGRESS)) ? REDMAP_ROLE_CLIENT
										  : REDMAP_ROLE_SERVER;
		stat_inc(REDMAP_STAT_CONN_CLASSIFIED);
	}

	ev->type = REDMAP_EVENT_DATA;
	ev->direction = a->dir;
	ev->tgid = tgid;
	ev->tid = task->pid;
	ev->fd = a->fd;
	ev->protocol = ci->protocol;
	ev->conn_start_ns = ci->start_ns;
	ev->exit_ns = bpf_ktime_get_ns();
	ev->enter_ns = ev->exit_ns; /* exit-only tracing: see the top of this file */
	ev->cgroup_id = ci->cgroup_id;
	ev->byte_count = (__u32)ret;
	ev->captured_len = captured;
	ev->tcp_seq = seq;
	ev->family = ci->family;
	ev->role = ci->role;
	ev->local_port = ci->local_port;
	ev->remote_port = ci->remote_port;
	ev->syscall = a->kind;
	ev->flags = flags;
	__builtin_memcpy(ev->local_addr, ci->local_addr, 16);
	__builtin_memcpy(ev->remote_addr, ci->remote_addr, 16);
	__builtin_memcpy(ev->comm, ci->comm, 16);

	batch_end(s, used, sizeof(*ev) + captured, ev->exit_ns);
	return 0;
}

static __always_inline void peer_addr(__u8 *dst, const __u8 *src, __u16 family)
{
	if (family == REDMAP_AF_INET) {
		__builtin_memset(dst, 0, 10);
		dst[10] = 0xff;
		dst[11] = 0xff;
		__builtin_memcpy(dst + 12, src, 4);
	} else {
		__builtin_memcpy(dst, src, 16);
	}
}

static __always_inline void peer_tuple_of(struct peer_tuple *t, const struct conn_info *ci,
					  const bool reversed)
{
	peer_addr(t->local_addr, reversed ? ci->remote_addr : ci->local_addr, ci->family);
	peer_addr(t->remote_addr, reversed ? ci->local_addr : ci->remote_addr, ci->family);
	t->local_port = reversed ? ci->remote_port : ci->local_port;
	t->remote_port = reversed ? ci->local_port : ci->remote_port;
}

/* At accept: whether the client end is a traced socket on this node; if so
 * the two ends become a pair (see local_clients). */
static __always_inline void conn_mark_peer(struct conn_info *server)
{
	struct peer_tuple t = {};
	struct conn_info *client;
	__u64 *client_key;

	peer_tuple_of(&t, server, true);
	client_key = bpf_map_lookup_elem(&local_clients, &t);
	if (!client_key)
		return;
	client = bpf_map_lookup_elem(&conn_info_map, client_key);
	/* Still the same connection (the entry may outlive a process that
	 * never closed its fd), and traced. */
	if (!client || client->role != REDMAP_ROLE_CLIENT || client->protocol == REDMAP_PROTO_NONE ||
	    client->local_port != server->remote_port || client->remote_port != server->local_port)
		return;
	client->peer = REDMAP_EVENT_F_PEER_PARSES;
	server->peer = REDMAP_EVENT_F_PEER_LOCAL;
}

static __always_inline void track_new_socket(__s32 fd, __u16 role, const bool direct)
{
	struct file *file = fd_to_file(bpf_get_current_task_btf(), fd, direct);
	struct sock *sk = file_to_tcp_sock(file, direct);
	__u64 key = conn_key(bpf_get_current_pid_tgid() >> 32, fd);
	struct conn_info *ci;

	if (!sk)
		return;
	ci = conn_create(key, file, sk, role);
	if (parse_once && ci && ci->protocol != REDMAP_PROTO_NONE) {
		if (role == REDMAP_ROLE_CLIENT) {
			struct peer_tuple t = {};

			peer_tuple_of(&t, ci, false);
			bpf_map_update_elem(&local_clients, &t, &key, BPF_ANY);
		} else {
			conn_mark_peer(ci);
		}
	}
	if (role == REDMAP_ROLE_SERVER)
		tcp_conn_accepted(sk);
}

static __always_inline void close_exit(__s32 fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = conn_key(tgid, fd);
	struct conn_info *ci = bpf_map_lookup_elem(&conn_info_map, &key);

	if (!ci)
		return;
	if (parse_once && ci->role == REDMAP_ROLE_CLIENT) {
		struct peer_tuple t = {};

		peer_tuple_of(&t, ci, false);
		bpf_map_delete_elem(&local_clients, &t);
	}
	if (ci->protocol != REDMAP_PROTO_UNKNOWN && ci->protocol != REDMAP_PROTO_NONE) {
		/* In the batch, after the connection's data. */
		__u32 used = 0;
		struct scratch *s = batch_begin(&used);

		if (s) {
			barrier_var(used);
			if (used >= REDMAP_BATCH_BYTES)
				used = 0;
			struct redmap_close_event *ev = (struct redmap_close_event *)(s->buf + used);

			__builtin_memset(ev, 0, sizeof(*ev));
			ev->type = REDMAP_EVENT_CLOSE;
			ev->tgid = tgid;
			ev->fd = fd;
			ev->protocol = ci->protocol;
			ev->conn_start_ns = ci->start_ns;
			ev->close_ns = bpf_ktime_get_ns();
			ev->cgroup_id = bpf_get_current_cgroup_id();
			batch_end(s, used, sizeof(*ev), ev->close_ns);
		}
	}
	bpf_map_delete_elem(&conn_info_map, &key);
}

static __always_inline int is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_tgid;
}

/* Dispatch on the syscall number (x86_64 numbering, syscall_nrs.h). a0..a3
 * are the first four arguments, ret the return value. The number is looked
 * at before anything else: most syscalls are none of these and return
 * without a helper call. */
static __always_inline int on_sys_exit(long id, __u64 a0, __u64 a1, __u64 a2, __u64 a3, long ret,
				       const bool direct)
{
	struct data_call c = {};

	c.fd = (__s32)a0;
	c.buf = a1;
	switch (id) {
	case REDMAP_NR_read:
		c.kind = REDMAP_SYS_READ;
		c.dir = REDMAP_DIR_INGRESS;
		break;
	case REDMAP_NR_write:
		c.kind = REDMAP_SYS_WRITE;
		c.dir = REDMAP_DIR_EGRESS;
		break;
	case REDMAP_NR_readv:
		c.kind = REDMAP_SYS_READV;
		c.dir = REDMAP_DIR_INGRESS;
		c.iovcnt = (__u32)a2;
		break;
	case REDMAP_NR_writev:
		c.kind = REDMAP_SYS_WRITEV;
		c.dir = REDMAP_DIR_EGRESS;
		c.iovcnt = (__u32)a2;
		break;
	case REDMAP_NR_sendto:
		c.kind = REDMAP_SYS_SENDTO;
		c.dir = REDMAP_DIR_EGRESS;
		break;
	case REDMAP_NR_recvfrom:
		c.kind = REDMAP_SYS_RECVFROM;
		c.dir = REDMAP_DIR_INGRESS;
		c.peek = (a3 & MSG_PEEK) != 0;
		break;
	case REDMAP_NR_sendmsg:
		c.kind = REDMAP_SYS_SENDMSG;
		c.dir = REDMAP_DIR_EGRESS;
		break;
	case REDMAP_NR_recvmsg:
		c.kind = REDMAP_SYS_RECVMSG;
		c.dir = REDMAP_DIR_INGRESS;
		c.peek = (a2 & MSG_PEEK) != 0;
		break;
	case REDMAP_NR_sendfile:
		/* sendfile(out_fd, in_fd, ...): only the byte count matters
		 * (static files served by nginx): it tells userspace when a
		 * response body was sent. */
		c.kind = REDMAP_SYS_SENDFILE;
		c.dir = REDMAP_DIR_EGRESS;
		break;
	case REDMAP_NR_connect:
		if ((ret == 0 || ret == -EINPROGRESS) && !is_self())
			track_new_socket((__s32)a0, REDMAP_ROLE_CLIENT, direct);
		return 0;
	case REDMAP_NR_accept:
	case REDMAP_NR_accept4:
		if (ret >= 0 && !is_self())
			track_new_socket((__s32)ret, REDMAP_ROLE_SERVER, direct);
		return 0;
	case REDMAP_NR_close:
		/* The fd is released even when close reports an error, except EBADF. */
		if (ret != -EBADF && !is_self())
			close_exit((__s32)a0);
		return 0;
	default:
		return 0;
	}
	return data_exit(&c, ret, direct);
}

/* Preferred: a BTF-typed raw tracepoint, pt_regs fields are direct loads,
 * and so are the fd table slot and the stream position. */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs->orig_ax, regs->di, regs->si, regs->dx, regs->r10, ret, true);
}

/* The same where bpf_rdonly_cast is missing (kernels before 6.2): those
 * reads are helper calls. */
SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_compat, struct pt_regs *regs, long ret)
{
	return on_sys_exit(regs->orig_ax, regs->di, regs->si, regs->dx, regs->r10, ret, false);
}

/* Fallback for kernels without BTF tracepoints: same logic, pt_regs read
 * with probe reads. Loaded only when sys_exit_btf cannot be. */
SEC("raw_tracepoint/sys_exit")
int sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];

	return on_sys_exit(BPF_CORE_READ(regs, orig_ax), BPF_CORE_READ(regs, di),
			   BPF_CORE_READ(regs, si), BPF_CORE_READ(regs, dx), BPF_CORE_READ(regs, r10),
			   (long)ctx->args[1], false);
}

/* Sends this CPU's batch. Before each read, userspace runs it on each CPU
 * whose batch holds an event older than what it is about to deliver
 * (BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU: an IPI, so it may
 * interrupt sys_exit_* adding an event; then that program flushes as it
 * finishes). Under load batches fill within microseconds and it seldom
 * runs. Never attached. */
SEC("raw_tp")
int flush_batch(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &cpu);

	if (!s)
		return 0;
	if (s->st.busy) {
		s->st.flush_wanted = 1;
		return 0;
	}
	flush(s);
	return 0;
}
