// placeholder, being written
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "socket_trace.h"
char LICENSE[] SEC("license") = "Dual BSD/GPL";
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 20); } events SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_close") int tp_close(void *ctx) { return 0; }
