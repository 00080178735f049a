// The C++ view of what the kernel (or a pcap replay) saw on a socket. Every
// source produces exactly these types; nothing downstream knows where they
// came from.
#ifndef REDMAP_AGGREGATORS_SOURCES_EVENT_H_
#define REDMAP_AGGREGATORS_SOURCES_EVENT_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/hash/hash.h"

namespace redmap {

enum class Direction : uint8_t { kEgress, kIngress };
enum class Role : uint8_t { kUnknown, kClient, kServer };
enum class Protocol : uint8_t { kUnknown, kHttp1 };

std::string_view ProtocolName(Protocol p);  // "http1", "unknown"

struct IpAddress {
  uint8_t family = 0;  // 0 (unset), 4 or 6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in bytes[0..3]

  static IpAddress V4(uint32_t network_order);
  static IpAddress V6(const uint8_t bytes[16]);
  // Makes this the IPv4 address at network_order[0..3], in place (the
  // decoder's per-record path: no temporary to copy in).
  void SetV4(const uint8_t network_order[4]) {
    family = 4;
    std::memcpy(bytes.data(), network_order, 4);
    std::memset(bytes.data() + 4, 0, 12);
  }
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) collapses to plain IPv4.
  IpAddress Canonical() const;
  bool IsLoopback() const;
  std::string ToString() const;  // "127.0.0.1", "::1", "" when unset

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.family, a.bytes);
  }
};

struct Endpoint {
  IpAddress addr;
  uint16_t port = 0;  // host order
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.addr, e.port);
  }
};

// One incarnation of a connection inside one process: fds are reused, so the
// time the fd was first seen as this socket is part of the key.
struct ConnKey {
  uint32_t tgid = 0;
  int32_t fd = -1;
  uint64_t start_ns = 0;
  friend bool operator==(const ConnKey&, const ConnKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ConnKey& k) {
    return H::combine(std::move(h), k.tgid, k.fd, k.start_ns);
  }
};

struct DataEvent {
  ConnKey conn;
  uint32_t tid = 0;
  Direction direction = Direction::kEgress;
  Protocol protocol = Protocol::kUnknown;
  Role role = Role::kUnknown;  // as far as the kernel side knows
  uint64_t enter_ns = 0;       // monotonic ns (CLOCK_MONOTONIC or capture time)
  uint64_t exit_ns = 0;
  uint64_t cgroup_id = 0;
  uint32_t byte_count = 0;  // bytes the syscall moved (>= payload.size())
  uint32_t tcp_seq = 0;     // stream position of the first byte
  bool has_tcp_seq = false;
  // Both ends of the connection are traced on this node (kernel side's
  // "parse once"). peer_parses (client end): no payload was copied; the
  // server end's copy of the same bytes is parsed. peer_local (server end):
  // the client end waits for this end's spans.
  bool peer_parses = false;
  bool peer_local = false;
  // From a compact record of a paired client end (redmap_peer_event): no
  // endpoints, cgroup or process name. Its connection is already tracked
  // (from its first, full event); if it is not, the event is dropped.
  bool compact = false;
  Endpoint local;
  Endpoint remote;
  // Kernel's name of the process (comm), may be empty. Same lifetime as payload.
  std::string_view process_name;
  // The first bytes of the data. Points into the source's buffer: valid only
  // during the sink callback; copy what must outlive it.
  std::string_view payload;
};

struct CloseEvent {
  ConnKey conn;
  uint64_t ts_ns = 0;
};

// A TCP-level event from the kernel's TCP stack (bpf/tcp_health.bpf.h):
// not tied to a syscall, so it names the connection by its kernel socket.
enum class TcpEventKind : uint8_t {
  kEstablished,    // value: connect latency ns (client side; 0 when unknown)
  kConnectFailed,  // error: the socket's errno (ECONNREFUSED, ETIMEDOUT, ...)
  kClosed,         // value: bytes sent, value2: bytes received, srtt_us
  kRetransmit,     // value: segments; retransmit says which kind
  kResetSent,
  kResetReceived,
  kZeroWindowLocal,  // a segment arrived while this side advertised 0
  kZeroWindowPeer,   // a segment arrived while the peer advertised 0
  kListen,           // a process started listening on local
};
enum class RetransmitKind : uint8_t { kData, kSyn, kSynAck };

struct TcpEvent {
  TcpEventKind kind = TcpEventKind::kEstablished;
  uint64_t sk = 0;  // kernel socket address: unique while the connection lives
  uint64_t ts_ns = 0;
  uint64_t value = 0;
  uint64_t value2 = 0;
  uint32_t srtt_us = 0;
  bool has_close_stats = false;  // kClosed: value, value2 and srtt_us are valid
  int32_t error = 0;
  RetransmitKind retransmit = RetransmitKind::kData;
  uint32_t tgid = 0;  // owner, 0 when unknown (softirq, or opened before redmap)
  uint64_t cgroup_id = 0;  // owner's cgroup v2 id (its pod), 0 when unknown
  Role role = Role::kUnknown;  // this side of the connection
  Endpoint local;
  Endpoint remote;
  std::string_view process_name;  // valid during the callback only
};

// Where sources deliver events. Called from one thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnData(const DataEvent& event) = 0;
  virtual void OnClose(const CloseEvent& event) = 0;
  virtual void OnTcp(const TcpEvent& /*event*/) {}
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_SOURCES_EVENT_H_
