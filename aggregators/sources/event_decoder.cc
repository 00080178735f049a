#include "aggregators/sources/event_decoder.h"

#include <cstdint>
#include <cstring>

#include "bpf/socket_trace.h"

namespace redmap {
namespace {

// The layout is a contract with bpf/socket_trace.bpf.c; a change on one side
// without the other must not compile.
static_assert(sizeof(redmap_data_event) == 128, "redmap_data_event layout changed");
static_assert(sizeof(redmap_close_event) == 40, "redmap_close_event layout changed");
static_assert(offsetof(redmap_data_event, local_addr) == 80);

Endpoint MakeEndpoint(uint16_t family, const uint8_t addr[16], uint16_t port) {
  Endpoint e;
  e.port = port;
  if (family == REDMAP_AF_INET) {
    uint32_t v4;
    std::memcpy(&v4, addr, 4);
    e.addr = IpAddress::V4(v4);
  } else {
    e.addr = IpAddress::V6(addr).Canonical();
  }
  return e;
}

}  // namespace

DecodeResult DecodeRecord(const void* data, size_t size, EventSink* sink) {
  if (data == nullptr || size < sizeof(uint32_t)) return DecodeResult::kInvalid;
  uint32_t type;
  std::memcpy(&type, data, sizeof(type));
  const auto* bytes = static_cast<const uint8_t*>(data);

  if (type == REDMAP_EVENT_DATA) {
    // Records are copied before use: ring memory is only 8-byte aligned and a
    // short record must never be read past its end.
    redmap_data_event h;
    if (size < sizeof(h)) return DecodeResult::kInvalid;
    std::memcpy(&h, data, sizeof(h));
    if (h.captured_len > size - sizeof(h) || h.captured_len > h.byte_count ||
        h.captured_len > REDMAP_MAX_PAYLOAD ||
        (h.direction != REDMAP_DIR_EGRESS && h.direction != REDMAP_DIR_INGRESS) ||
        (h.family != REDMAP_AF_INET && h.family != REDMAP_AF_INET6) ||
        h.exit_ns < h.enter_ns || h.role > REDMAP_ROLE_SERVER) {
      return DecodeResult::kInvalid;
    }
    DataEvent ev;
    ev.conn = ConnKey{h.tgid, h.fd, h.conn_start_ns};
    ev.tid = h.tid;
    ev.direction = h.direction == REDMAP_DIR_EGRESS ? Direction::kEgress : Direction::kIngress;
    ev.protocol = h.protocol == REDMAP_PROTO_HTTP1 ? Protocol::kHttp1 : Protocol::kUnknown;
    ev.role = h.role == REDMAP_ROLE_CLIENT   ? Role::kClient
              : h.role == REDMAP_ROLE_SERVER ? Role::kServer
                                             : Role::kUnknown;
    ev.enter_ns = h.enter_ns;
    ev.exit_ns = h.exit_ns;
    ev.cgroup_id = h.cgroup_id;
    ev.byte_count = h.byte_count;
    ev.tcp_seq = h.tcp_seq;
    ev.has_tcp_seq = true;
    ev.local = MakeEndpoint(h.family, h.local_addr, h.local_port);
    ev.remote = MakeEndpoint(h.family, h.remote_addr, h.remote_port);
    ev.process_name = std::string_view(h.comm, strnlen(h.comm, sizeof(h.comm)));
    ev.payload = std::string_view(reinterpret_cast<const char*>(bytes + sizeof(h)), h.captured_len);
    sink->OnData(ev);
    return DecodeResult::kData;
  }

  if (type == REDMAP_EVENT_CLOSE) {
    redmap_close_event h;
    if (size < sizeof(h)) return DecodeResult::kInvalid;
    std::memcpy(&h, data, sizeof(h));
    CloseEvent ev;
    ev.conn = ConnKey{h.tgid, h.fd, h.conn_start_ns};
    ev.ts_ns = h.close_ns;
    sink->OnClose(ev);
    return DecodeResult::kClose;
  }
  return DecodeResult::kInvalid;
}

}  // namespace redmap
