// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Socket data capture from syscall tracepoints.
 *
 * Data syscalls (read, write, readv, writev, sendto, recvfrom, sendmsg,
 * recvmsg, sendfile): the enter hook resolves fd -> TCP socket, reads the
 * stream position (write_seq / copied_seq) and stashes the arguments per
 * thread; the exit hook knows how many bytes really moved, infers the L7
 * protocol on a connection's first bytes, and writes one record with the
 * first `payload_bytes` bytes to the ring buffer.
 *
 * Lifecycle syscalls (connect, accept, accept4, close) tell the role of a
 * connection and when an fd stops naming it.
 *
 * Cost discipline (every hook runs on every matching syscall of the node):
 * non-socket fds bail after the fd lookup, connections inferred as "no known
 * protocol" bail after one map lookup, and wakeups are batched: userspace is
 * woken only when wakeup_bytes are queued, otherwise it drains on a timer.
 *
 * Not hooked: sendmmsg/recvmmsg (used for UDP, not traced yet), splice and
 * io_uring (bytes moved that way show up as position gaps via tcp_seq).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "protocol_infer.h"
#include "socket_trace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Read-only knobs, set by userspace between open and load. */
const volatile __u32 self_tgid = 0;
const volatile __u16 self_port = 0;
const volatile __u32 payload_bytes = 1024;
const volatile __u64 wakeup_bytes = 64 * 1024;

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define EINPROGRESS 115
#define MAX_IOV 4

/* Sizes below are defaults; userspace sets the real ones from the config
 * with bpf_map__set_max_entries before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
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
	__u32 pad;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	char comm[16];
};

/* (tgid << 32 | fd) -> connection. LRU: bounded, and entries of processes
 * that exited without close() age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct conn_info);
} conn_info_map SEC(".maps");

struct syscall_args {
	__u64 enter_ns; /* 0: no syscall in flight */
	__u64 buf; /* buf, iovec array or msghdr, depending on kind */
	__s32 fd;
	__u32 kind; /* REDMAP_SYS_*, or 0 for connect */
	__u32 iovcnt;
	__u32 tcp_seq;
};

/* Arguments of the syscall the thread is in, kept in task-local storage:
 * a pointer hop from the task, no hash update/delete per syscall, and freed
 * by the kernel when the thread exits. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_args);
} args_map SEC(".maps");

/* Record under construction. data is twice the payload ceiling so that
 * "offset <= MAX and length <= MAX" is enough for the verifier when copying
 * several iovecs back to back. */
struct scratch {
	__u8 buf[sizeof(struct redmap_data_event) + 2 * REDMAP_MAX_PAYLOAD];
};

/* One slot per CPU. A plain array indexed by CPU id rather than a per-CPU
 * array: per-CPU values are capped at 32 KiB. Userspace sizes it to the
 * number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REDMAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u64 conn_key(__u32 tgid, __s32 fd)
{
	return ((__u64)tgid << 32) | (__u32)fd;
}

/* fd of the current task -> its struct file, or NULL. The walk down to the
 * fd array uses direct BTF loads (no helper call each); only the variable
 * index into the array needs a probe read. */
static __always_inline struct file *fd_to_file(__s32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct file *file = NULL;
	struct fdtable *fdt;

	if (fd < 0 || !files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || (__u32)fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]))
		return NULL;
	return file;
}

/* file -> its TCP sock, or NULL for anything else. */
static __always_inline struct sock *file_to_tcp_sock(struct file *file)
{
	struct socket *sock;
	struct sock *sk;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
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
	fill_tuple(&ci, sk);
	/* redmap's own endpoint (scrapes of /metrics) is never traced. */
	if (self_port && (ci.local_port == self_port || ci.remote_port == self_port))
		ci.protocol = REDMAP_PROTO_NONE;
	bpf_map_update_elem(&conn_info_map, &key, &ci, BPF_ANY);
	return bpf_map_lookup_elem(&conn_info_map, &key);
}

static __always_inline int data_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u32 kind, __u32 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 key = conn_key(tgid, fd);
	struct conn_info *ci;
	struct file *file;
	struct sock *sk;

	if (tgid == self_tgid)
		return 0;
	ci = bpf_map_lookup_elem(&conn_info_map, &key);
	if (ci && ci->protocol == REDMAP_PROTO_NONE)
		return 0;
	file = fd_to_file(fd);
	if (ci && ci->file == (__u64)file) {
		/* Same open file as when the entry was made: the cached sock is
		 * still the one behind this fd. */
		sk = (struct sock *)ci->sk;
	} else {
		sk = file_to_tcp_sock(file);
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

	struct syscall_args *a = bpf_task_storage_get(&args_map, bpf_get_current_task_btf(), 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	if (!a)
		return 0;
	a->enter_ns = bpf_ktime_get_ns();
	a->buf = buf;
	a->fd = fd;
	a->kind = kind;
	a->iovcnt = iovcnt;
	if (dir == REDMAP_DIR_EGRESS)
		bpf_core_read(&a->tcp_seq, sizeof(a->tcp_seq), &tp->write_seq);
	else
		bpf_core_read(&a->tcp_seq, sizeof(a->tcp_seq), &tp->copied_seq);
	return 0;
}

/* Copies up to `len` bytes of the syscall's user data into dst. Returns the
 * number of bytes copied. */
static __always_inline __u32 copy_payload(__u8 *dst, const struct syscall_args *a, __u64 len)
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

	for (int i = 0; i < MAX_IOV; i++) {
		struct iovec v;
		__u64 n;

		if (i >= iovcnt || off >= len)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
			break;
		n = v.iov_len;
		if (n > len - off)
			n = len - off;
		/* 64-bit bounds the verifier can see: off <= MAX, n <= MAX, and
		 * dst holds 2 * MAX. */
		barrier_var(n);
		barrier_var(off);
		if (n > REDMAP_MAX_PAYLOAD || off > REDMAP_MAX_PAYLOAD)
			break;
		if (bpf_probe_read_user(dst + off, n, v.iov_base)) {
			stat_inc(REDMAP_STAT_READ_FAILED);
			break;
		}
		off += n;
	}
	return (__u32)off;
}

static __always_inline void submit(void *data, __u64 size)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										   : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&events, data, size, flags))
		stat_inc(REDMAP_STAT_RINGBUF_DROPS);
	else
		stat_inc(REDMAP_STAT_EVENTS);
}

static __always_inline int data_exit(long ret, __u32 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct syscall_args *ap = bpf_task_storage_get(&args_map, bpf_get_current_task_btf(), 0, 0);
	struct syscall_args a;
	struct conn_info *ci;

	if (!ap || !ap->enter_ns)
		return 0; /* not a traced socket, or the enter was missed */
	a = *ap;
	ap->enter_ns = 0;
	if (ret <= 0 || a.kind == 0)
		return 0;

	__u64 key = conn_key(tgid, a.fd);
	ci = bpf_map_lookup_elem(&conn_info_map, &key);
	if (!ci) {
		stat_inc(REDMAP_STAT_ARGS_MISSING);
		return 0;
	}

	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &cpu);
	if (!s)
		return 0;
	struct redmap_data_event *ev = (struct redmap_data_event *)s->buf;
	__u8 *payload = s->buf + sizeof(*ev);
	__u32 captured = copy_payload(payload, &a, (__u32)ret);

	if (ci->protocol == REDMAP_PROTO_UNKNOWN) {
		__u32 is_request = 0;
		__u32 proto = redmap_infer_protocol(payload, captured, &is_request);

		if (proto == REDMAP_PROTO_UNKNOWN) {
			/* Nothing we parse: stop tracing this connection. */
			ci->protocol = REDMAP_PROTO_NONE;
			stat_inc(REDMAP_STAT_CONN_UNCLASSIFIED);
			return 0;
		}
		ci->protocol = proto;
		if (ci->role == REDMAP_ROLE_UNKNOWN)
			ci->role = (is_request == (dir == REDMAP_DIR_EGRESS)) ? REDMAP_ROLE_CLIENT
									       : REDMAP_ROLE_SERVER;
		stat_inc(REDMAP_STAT_CONN_CLASSIFIED);
	}

	ev->type = REDMAP_EVENT_DATA;
	ev->direction = dir;
	ev->tgid = tgid;
	ev->tid = (__u32)pid_tgid;
	ev->fd = a.fd;
	ev->protocol = ci->protocol;
	ev->conn_start_ns = ci->start_ns;
	ev->enter_ns = a.enter_ns;
	ev->exit_ns = bpf_ktime_get_ns();
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->byte_count = (__u32)ret;
	ev->captured_len = captured;
	ev->tcp_seq = a.tcp_seq;
	ev->family = ci->family;
	ev->role = ci->role;
	ev->local_port = ci->local_port;
	ev->remote_port = ci->remote_port;
	ev->syscall = a.kind;
	__builtin_memcpy(ev->local_addr, ci->local_addr, 16);
	__builtin_memcpy(ev->remote_addr, ci->remote_addr, 16);
	__builtin_memcpy(ev->comm, ci->comm, 16);

	__u64 size = sizeof(*ev) + captured;
	if (size > sizeof(*s))
		return 0;
	submit(s, size);
	return 0;
}

/* ---- data syscalls ------------------------------------------------------ */

#define ARG(ctx, i) ((ctx)->args[i])

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_READ, REDMAP_DIR_INGRESS);
}
SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_WRITE, REDMAP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), ARG(ctx, 2), REDMAP_SYS_READV, REDMAP_DIR_INGRESS);
}
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), ARG(ctx, 2), REDMAP_SYS_WRITEV, REDMAP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_SENDTO, REDMAP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_RECVFROM, REDMAP_DIR_INGRESS);
}
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_INGRESS);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_SENDMSG, REDMAP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_EGRESS);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), ARG(ctx, 1), 0, REDMAP_SYS_RECVMSG, REDMAP_DIR_INGRESS);
}
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_INGRESS);
}

/* sendfile(out_fd, in_fd, ...): only the byte count matters (static files
 * served by nginx): it tells userspace when a response body was sent. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int enter_sendfile(struct trace_event_raw_sys_enter *ctx)
{
	return data_enter(ARG(ctx, 0), 0, 0, REDMAP_SYS_SENDFILE, REDMAP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int exit_sendfile(struct trace_event_raw_sys_exit *ctx)
{
	return data_exit(ctx->ret, REDMAP_DIR_EGRESS);
}

/* ---- connection lifecycle ------------------------------------------------ */

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct syscall_args *a;

	if ((bpf_get_current_pid_tgid() >> 32) == self_tgid)
		return 0;
	a = bpf_task_storage_get(&args_map, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0;
	a->enter_ns = bpf_ktime_get_ns();
	a->fd = ARG(ctx, 0);
	a->kind = 0;
	return 0;
}

static __always_inline void track_new_socket(__s32 fd, __u16 role)
{
	struct file *file = fd_to_file(fd);
	struct sock *sk = file_to_tcp_sock(file);

	if (sk)
		conn_create(conn_key(bpf_get_current_pid_tgid() >> 32, fd), file, sk, role);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct syscall_args *a = bpf_task_storage_get(&args_map, bpf_get_current_task_btf(), 0, 0);
	__s32 fd;

	if (!a || !a->enter_ns || a->kind != 0)
		return 0;
	fd = a->fd;
	a->enter_ns = 0;
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	track_new_socket(fd, REDMAP_ROLE_CLIENT);
	return 0;
}

static __always_inline int accept_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (ret < 0 || (pid_tgid >> 32) == self_tgid)
		return 0;
	track_new_socket(ret, REDMAP_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__s32 fd = ARG(ctx, 0);
	__u64 key = conn_key(tgid, fd);
	struct conn_info *ci = bpf_map_lookup_elem(&conn_info_map, &key);

	if (!ci)
		return 0;
	if (ci->protocol != REDMAP_PROTO_UNKNOWN && ci->protocol != REDMAP_PROTO_NONE) {
		struct redmap_close_event ev = {};

		ev.type = REDMAP_EVENT_CLOSE;
		ev.tgid = tgid;
		ev.fd = fd;
		ev.protocol = ci->protocol;
		ev.conn_start_ns = ci->start_ns;
		ev.close_ns = bpf_ktime_get_ns();
		ev.cgroup_id = bpf_get_current_cgroup_id();
		submit(&ev, sizeof(ev));
	}
	bpf_map_delete_elem(&conn_info_map, &key);
	return 0;
}
