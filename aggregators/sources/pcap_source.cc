#include "aggregators/sources/pcap_source.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "aggregators/sources/packet_headers.h"
#include "bpf/protocol_infer.h"

namespace redmap {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

struct Packet {
  Endpoint src, dst;
  uint32_t seq = 0;
  uint8_t flags = 0;
  uint32_t payload_len = 0;  // on the wire, from the IP header
  std::string_view payload;  // what the capture kept: a prefix of it
};

enum class ParseResult { kTcp, kTruncatedTcp, kUnsupported, kMalformed };

// Parses link, IP and TCP headers of one captured packet. `caplen` bytes are
// at `d`; `wirelen` is how long the packet was on the wire.
ParseResult ParsePacket(int linktype, const uint8_t* d, size_t caplen, size_t wirelen, Packet* p) {
  IpPacket ip;
  switch (ParseIpHeaders(linktype, d, caplen, wirelen, &ip)) {
    case HeaderResult::kOk:
      break;
    case HeaderResult::kMalformed:
      return ParseResult::kMalformed;
    case HeaderResult::kUnsupported:
    case HeaderResult::kFragment:
      return ParseResult::kUnsupported;
  }
  if (ip.protocol != kIpProtoTcp) return ParseResult::kUnsupported;
  const size_t n = ip.l4_captured;
  const uint32_t l4_len = ip.l4_len;
  if (l4_len < 20 || n < 20) return ParseResult::kMalformed;
  const uint8_t* t = ip.l4;
  const size_t thl = (t[12] >> 4) * 4u;
  if (thl < 20 || l4_len < thl || n < thl) return ParseResult::kMalformed;
  p->src = Endpoint{ip.src, Be16(t)};
  p->dst = Endpoint{ip.dst, Be16(t + 2)};
  p->seq = Be32(t + 4);
  p->flags = t[13];
  p->payload_len = l4_len - static_cast<uint32_t>(thl);
  const size_t have = n - thl;  // may include link-layer padding
  p->payload = std::string_view(reinterpret_cast<const char*>(t + thl),
                                std::min<size_t>(have, p->payload_len));
  return have < p->payload_len ? ParseResult::kTruncatedTcp : ParseResult::kTcp;
}

Protocol FromInferred(__u32 proto) {
  switch (proto) {
    case REDMAP_PROTO_HTTP1:
      return Protocol::kHttp1;
    default:
      return Protocol::kUnknown;
  }
}

struct FlowKey {
  Endpoint a, b;  // a < b, so both directions share a key
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const FlowKey& k) {
    return H::combine(std::move(h), k.a, k.b);
  }
};

bool Less(const Endpoint& x, const Endpoint& y) {
  if (x.addr.bytes != y.addr.bytes) return x.addr.bytes < y.addr.bytes;
  return x.port < y.port;
}

}  // namespace

class PcapSource::Reassembler {
 public:
  Reassembler(const Options& options, EventSink* sink, Stats* stats)
      : options_(options), sink_(sink), stats_(stats) {}

  void OnPacket(const Packet& p, uint64_t ts) {
    const bool from_a = Less(p.src, p.dst);
    const FlowKey key = from_a ? FlowKey{p.src, p.dst} : FlowKey{p.dst, p.src};
    const bool syn = p.flags & kSyn;
    auto it = flows_.find(key);
    if (it != flows_.end() && syn && !(p.flags & kAck) &&
        IsNewIncarnation(it->second, from_a ? 0 : 1, p.seq)) {
      // The 4-tuple reused for a new connection.
      Close(it->second, ts);
      flows_.erase(it);
      it = flows_.end();
    }
    if (it == flows_.end()) {
      // Only a SYN or data opens a flow: a bare ACK/FIN/RST is the tail of
      // one that ended (or that the capture never saw).
      if (!syn && p.payload_len == 0) return;
      if (flows_.size() >= options_.max_connections) Evict();
      it = flows_.try_emplace(key).first;
      Flow& f = it->second;
      f.index = next_index_++;
      f.a = key.a;
      f.b = key.b;
      f.start_ns = f.last_ns = ts;
      open_order_.push_back({key, f.index});
      stats_->connections++;
      Compact();
    }
    Flow& f = it->second;
    const int di = from_a ? 0 : 1;
    Dir& d = f.dirs[di];
    if (f.closed) {
      // Retransmissions and trailing ACKs after the end.
      stats_->duplicate_bytes += p.payload_len;
      return;
    }
    uint32_t data_seq = p.seq;
    if (syn) {
      data_seq++;  // SYN occupies one sequence number; data (fast open) follows
      if (!d.syn) {
        d.syn = true;
        d.isn = p.seq;
        if (!d.init) d.Start(data_seq);
      }
      // The SYN's sender is the client, the SYN-ACK's the server.
      if (!f.roles_known) {
        f.roles_known = true;
        f.client = (p.flags & kAck) ? p.dst : p.src;
        f.server = (p.flags & kAck) ? p.src : p.dst;
      }
    }
    if (p.payload_len > 0) {
      stats_->tcp_segments++;
      Segment(f, di, data_seq, p.payload_len, p.payload, ts);
    }
    if (p.flags & kRst) {
      Close(f, ts);
      return;
    }
    if ((p.flags & kFin) && !d.fin) {
      if (!d.init) d.Start(data_seq);
      d.fin = true;
      d.fin_at = d.Unwrap(data_seq + p.payload_len);
    }
    // Ends when both directions delivered everything up to their FIN.
    if (f.dirs[0].Finished() && f.dirs[1].Finished()) Close(f, ts);
  }

  // End of capture: what is still open closes now.
  void Finish(uint64_t ts) {
    for (const auto& [key, index] : open_order_) {
      auto it = flows_.find(key);
      if (it != flows_.end() && it->second.index == index) Close(it->second, ts);
    }
    flows_.clear();
    open_order_.clear();
    closed_order_.clear();
  }

 private:
  struct Pending {
    uint32_t len;
    std::string known;
    uint64_t ts;
  };

  struct Dir {
    bool init = false;
    bool syn = false;
    bool fin = false;
    uint32_t isn = 0;
    // Sequence numbers unwrapped to 64 bits (starting 2^32 up, so a step
    // back from the first one stays positive): wrap-around is just counting.
    uint64_t next = 0;    // next byte to emit
    uint64_t fin_at = 0;  // where the FIN sits
    std::map<uint64_t, Pending> ooo;
    size_t ooo_bytes = 0;

    void Start(uint32_t seq) {
      init = true;
      next = (uint64_t{1} << 32) + seq;
    }
    uint64_t Unwrap(uint32_t seq) const {
      return next + static_cast<int64_t>(static_cast<int32_t>(seq - static_cast<uint32_t>(next)));
    }
    bool Finished() const { return fin && next >= fin_at; }
  };

  struct Flow {
    uint64_t index = 0;
    uint64_t start_ns = 0;
    uint64_t last_ns = 0;  // latest timestamp emitted: keeps a connection's events monotonic
    Endpoint a, b;         // the flow key's endpoints; dirs[0] is a -> b
    bool roles_known = false;
    Endpoint client, server;
    Protocol protocol = Protocol::kUnknown;  // set by the first payload
    bool ignored = false;                    // first payload was not a known protocol
    bool closed = false;                     // kept as a tombstone for late packets
    Dir dirs[2];
  };

  struct OrderEntry {
    FlowKey key;
    uint64_t index;
  };

  static bool IsNewIncarnation(const Flow& f, int di, uint32_t seq) {
    if (f.closed) return true;
    const Dir& d = f.dirs[di];
    if (d.syn) return d.isn != seq;  // same ISN: a retransmitted SYN
    return d.init;                   // the old one was seen mid-stream
  }

  void Segment(Flow& f, int di, uint32_t seq, uint32_t len, std::string_view known, uint64_t ts) {
    Dir& d = f.dirs[di];
    if (!d.init) d.Start(seq);  // no SYN seen: the stream starts here
    uint64_t pos = d.Unwrap(seq);
    if (f.ignored) {  // only follow the position, to see where it ends
      d.next = std::max(d.next, pos + len);
      return;
    }
    if (pos + len <= d.next) {
      stats_->duplicate_bytes += len;
      return;
    }
    if (pos < d.next) {  // overlaps what was emitted: keep the new tail
      const uint64_t behind = d.next - pos;
      stats_->duplicate_bytes += behind;
      pos = d.next;
      len -= static_cast<uint32_t>(behind);
      known.remove_prefix(std::min<size_t>(behind, known.size()));
    }
    if (pos > d.next) {
      stats_->out_of_order++;
      auto [it, inserted] = d.ooo.try_emplace(pos, Pending{len, std::string(known), ts});
      if (!inserted) {
        // Same start retransmitted: keep the longer one.
        if (it->second.len >= len) {
          stats_->duplicate_bytes += len;
          return;
        }
        stats_->duplicate_bytes += it->second.len;
        d.ooo_bytes -= it->second.len;
        it->second = Pending{len, std::string(known), ts};
      }
      d.ooo_bytes += len;
      // Waited long enough for the hole: accept it as lost.
      while (d.ooo_bytes > options_.max_out_of_order_bytes && !d.ooo.empty()) SkipHole(f, di);
      return;
    }
    Emit(f, di, pos, len, known, ts);
    d.next = pos + len;
    Drain(f, di);
  }

  // Emits buffered segments that now continue the stream.
  void Drain(Flow& f, int di) {
    Dir& d = f.dirs[di];
    while (!d.ooo.empty()) {
      auto it = d.ooo.begin();
      const uint64_t pos = it->first;
      if (pos > d.next) return;  // still a hole
      Pending& p = it->second;
      const uint64_t end = pos + p.len;
      if (end <= d.next) {
        stats_->duplicate_bytes += p.len;
      } else {
        const uint64_t behind = d.next - pos;
        stats_->duplicate_bytes += behind;
        std::string_view known = p.known;
        known.remove_prefix(std::min<size_t>(behind, known.size()));
        Emit(f, di, d.next, static_cast<uint32_t>(end - d.next), known, p.ts);
        d.next = end;
      }
      d.ooo_bytes -= p.len;
      d.ooo.erase(it);
    }
  }

  void SkipHole(Flow& f, int di) {
    Dir& d = f.dirs[di];
    const uint64_t first = d.ooo.begin()->first;
    if (first > d.next) {
      stats_->gap_bytes += first - d.next;
      d.next = first;
    }
    Drain(f, di);
  }

  void Emit(Flow& f, int di, uint64_t pos, uint32_t len, std::string_view known, uint64_t ts) {
    if (f.ignored) return;
    const Endpoint& from = di == 0 ? f.a : f.b;
    if (f.protocol == Protocol::kUnknown) {
      // Classify exactly as the kernel does, on the connection's first bytes.
      __u32 is_request = 0;
      const __u32 inferred = redmap_infer_protocol(
          reinterpret_cast<const __u8*>(known.data()),
          static_cast<__u32>(std::min<size_t>(known.size(), REDMAP_INFER_BYTES)), &is_request);
      f.protocol = FromInferred(inferred);
      if (f.protocol == Protocol::kUnknown) {
        f.ignored = true;
        stats_->unclassified_connections++;
        return;
      }
      if (!f.roles_known) {
        // No SYN in the capture: whoever sends the first request is the client.
        const Endpoint& other = di == 0 ? f.b : f.a;
        f.roles_known = true;
        f.client = is_request ? from : other;
        f.server = is_request ? other : from;
      }
    }
    f.last_ns = std::max(f.last_ns, ts);
    stats_->payload_bytes += len;
    const bool from_client = from == f.client;
    for (int view = 0; view < 2; ++view) {  // 0: the client process, 1: the server process
      const bool server_view = view == 1;
      DataEvent e;
      e.conn = ConnKey{0, static_cast<int32_t>(2 * f.index + view), f.start_ns};
      e.protocol = f.protocol;
      e.role = server_view ? Role::kServer : Role::kClient;
      e.direction = from_client != server_view ? Direction::kEgress : Direction::kIngress;
      e.enter_ns = e.exit_ns = f.last_ns;
      e.byte_count = len;
      e.tcp_seq = static_cast<uint32_t>(pos);
      e.has_tcp_seq = true;
      e.local = server_view ? f.server : f.client;
      e.remote = server_view ? f.client : f.server;
      e.payload = known;
      sink_->OnData(e);
    }
  }

  // Ends a connection: what is still buffered behind a hole is delivered
  // (the hole was lost by the capture, not by the programs), then both views
  // close. The flow stays as a tombstone so late retransmissions do not open
  // a new one.
  void Close(Flow& f, uint64_t ts) {
    if (f.closed) return;
    for (int di = 0; di < 2; ++di) {
      while (!f.dirs[di].ooo.empty()) SkipHole(f, di);
    }
    f.closed = true;
    closed_order_.push_back({FlowKey{f.a, f.b}, f.index});
    if (f.ignored || f.protocol == Protocol::kUnknown) return;
    f.last_ns = std::max(f.last_ns, ts);
    for (int view = 0; view < 2; ++view) {
      CloseEvent c;
      c.conn = ConnKey{0, static_cast<int32_t>(2 * f.index + view), f.start_ns};
      c.ts_ns = f.last_ns;
      sink_->OnClose(c);
    }
  }

  // Makes room for one flow: the oldest tombstone, else the oldest live one.
  void Evict() {
    for (bool want_closed : {true, false}) {
      std::deque<OrderEntry>& order = want_closed ? closed_order_ : open_order_;
      while (!order.empty()) {
        const OrderEntry e = order.front();
        order.pop_front();
        auto it = flows_.find(e.key);
        if (it == flows_.end() || it->second.index != e.index || it->second.closed != want_closed) {
          continue;  // stale: replaced, or moved to the closed list
        }
        if (!want_closed) {
          stats_->evicted_connections++;
          Close(it->second, it->second.last_ns);
        }
        flows_.erase(it);
        return;
      }
    }
  }

  // Stale order entries pile up as connections close; keep them proportional
  // to the table.
  void Compact() {
    const size_t limit = 2 * flows_.size() + 64;
    for (std::deque<OrderEntry>* order : {&open_order_, &closed_order_}) {
      if (order->size() <= limit) continue;
      const bool want_closed = order == &closed_order_;
      std::erase_if(*order, [&](const OrderEntry& e) {
        auto it = flows_.find(e.key);
        return it == flows_.end() || it->second.index != e.index ||
               it->second.closed != want_closed;
      });
    }
  }

  const Options& options_;
  EventSink* sink_;
  Stats* stats_;
  absl::flat_hash_map<FlowKey, Flow> flows_;
  std::deque<OrderEntry> open_order_;    // by first packet
  std::deque<OrderEntry> closed_order_;  // by close
  uint64_t next_index_ = 0;
};

PcapSource::PcapSource(pcap_t* pcap, std::string name, const Options& options)
    : pcap_(pcap), name_(std::move(name)), options_(options), linktype_(pcap_datalink(pcap)) {}

PcapSource::~PcapSource() {
  pcap_close(pcap_);  // also closes a FILE handed to pcap
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::FromHandle(pcap_t* pcap, std::string name,
                                                                   const Options& options) {
  std::unique_ptr<PcapSource> s(new PcapSource(pcap, std::move(name), options));
  if (!LinkTypeSupported(s->linktype_)) {
    const char* link_name = pcap_datalink_val_to_name(s->linktype_);
    return absl::InvalidArgumentError(absl::StrCat(
        s->name_, ": unsupported link type ", s->linktype_, " (",
        link_name != nullptr ? link_name : "unknown",
        "); supported: Ethernet, Linux cooked v1/v2 (-i any), raw IPv4/IPv6, BSD loopback"));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::Open(const std::string& path) {
  return Open(path, Options{});
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::Open(const std::string& path,
                                                             const Options& options) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read capture ", path, ": ", err));
  }
  return FromHandle(p, path, options);
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::OpenBuffer(const void* data, size_t size) {
  return OpenBuffer(data, size, Options{});
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::OpenBuffer(const void* data, size_t size,
                                                                   const Options& options) {
  if (size == 0) return absl::InvalidArgumentError("cannot read capture: empty buffer");
  FILE* f = fmemopen(const_cast<void*>(data), size, "rb");
  if (f == nullptr) return absl::InternalError("fmemopen failed");
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    fclose(f);
    return absl::InvalidArgumentError(absl::StrCat("cannot read capture: ", err));
  }
  return FromHandle(p, "<memory>", options);
}

absl::Status PcapSource::Run(EventSink* sink, const std::atomic<bool>& stop) {
  Reassembler r(options_, sink, &stats_);
  pcap_pkthdr* hdr;
  const u_char* data;
  uint64_t last_ts = 0;
  int rc = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    rc = pcap_next_ex(pcap_, &hdr, &data);
    if (rc < 0) break;
    if (rc == 0) continue;  // live captures only
    stats_.packets++;
    // Nanosecond precision: tv_usec holds nanoseconds.
    const uint64_t ts = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000u +
                        static_cast<uint64_t>(hdr->ts.tv_usec);
    last_ts = std::max(last_ts, ts);
    Packet p;
    switch (ParsePacket(linktype_, data, hdr->caplen, std::max(hdr->len, hdr->caplen), &p)) {
      case ParseResult::kUnsupported:
        stats_.unsupported_packets++;
        continue;
      case ParseResult::kMalformed:
        stats_.malformed_packets++;
        continue;
      case ParseResult::kTruncatedTcp:
        stats_.truncated_packets++;
        break;
      case ParseResult::kTcp:
        break;
    }
    r.OnPacket(p, ts);
  }
  r.Finish(last_ts);
  if (rc == PCAP_ERROR) {
    return absl::DataLossError(absl::StrCat(name_, ": capture is corrupt after ", stats_.packets,
                                            " packets: ", pcap_geterr(pcap_)));
  }
  return absl::OkStatus();
}

}  // namespace redmap
