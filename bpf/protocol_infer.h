/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * L7 protocol inference from the first bytes a connection carries. Shared,
 * byte for byte, by the BPF program (socket_trace.bpf.c) and the pcap replay
 * source, so live capture and replay classify connections identically.
 * Only looks at buf[0..len), len <= REDMAP_INFER_BYTES.
 */
#ifndef REDMAP_BPF_PROTOCOL_INFER_H
#define REDMAP_BPF_PROTOCOL_INFER_H

#include "socket_trace.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* How many leading bytes inference needs. */
#define REDMAP_INFER_BYTES 8

static __always_inline int redmap_prefix_is(const __u8 *buf, __u32 len, const char *p, __u32 n)
{
	if (len < n)
		return 0;
	for (__u32 i = 0; i < n && i < REDMAP_INFER_BYTES; i++)
		if (buf[i] != (__u8)p[i])
			return 0;
	return 1;
}

/*
 * Returns REDMAP_PROTO_* for the bytes, and via *is_request whether they
 * start a request (1) or a response (0). REDMAP_PROTO_UNKNOWN means "cannot
 * tell from these bytes".
 */
static __always_inline __u32 redmap_infer_protocol(const __u8 *buf, __u32 len, __u32 *is_request)
{
	*is_request = 1;
	/* HTTP/1.x request methods (RFC 9110 section 9, plus PATCH). */
	if (redmap_prefix_is(buf, len, "GET ", 4) || redmap_prefix_is(buf, len, "PUT ", 4) ||
	    redmap_prefix_is(buf, len, "POST ", 5) || redmap_prefix_is(buf, len, "HEAD ", 5) ||
	    redmap_prefix_is(buf, len, "PATCH ", 6) || redmap_prefix_is(buf, len, "TRACE ", 6) ||
	    redmap_prefix_is(buf, len, "DELETE ", 7) || redmap_prefix_is(buf, len, "OPTIONS ", 8) ||
	    redmap_prefix_is(buf, len, "CONNECT ", 8))
		return REDMAP_PROTO_HTTP1;
	if (redmap_prefix_is(buf, len, "HTTP/1.", 7)) {
		*is_request = 0;
		return REDMAP_PROTO_HTTP1;
	}
	return REDMAP_PROTO_UNKNOWN;
}

#endif /* REDMAP_BPF_PROTOCOL_INFER_H */
