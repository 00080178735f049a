#include "aggregators/sources/pcap_source.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bpf/protocol_infer.h"

namespace redmap {
namespace {

constexpr int kLinkSll2 = 276;  // DLT_LINUX_SLL2, absent from older headers
constexpr int kLinkIpv4 = 228;
constexpr int kLinkIpv6 = 229;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct Packet {
  Endpoint src, dst;
  uint32_t seq = 0;
  uint8_t flags = 0;
  uint32_t payload_len = 0;  // from the IP header: what was on the wire
  std::string_view payload;  // what the capture kept (may be shorter)
};

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;

// Link layer -> offset of the IP header and its version (4/6), or false.
bool LinkToIp(int linktype, const uint8_t* d, size_t n, size_t* off) {
  uint16_t ethertype = 0;
  switch (linktype) {
    case DLT_EN10MB: {
      if (n < 14) return false;
      size_t o = 12;
      ethertype = Be16(d + o);
      o += 2;
      while ((ethertype == 0x8100 || ethertype == 0x88a8) && n >= o + 4) {  // VLAN tags
        ethertype = Be16(d + o + 2);
        o += 4;
      }
      *off = o;
      break;
    }
    case DLT_LINUX_SLL:
      if (n < 16) return false;
      ethertype = Be16(d + 14);
      *off = 16;
      break;
    case kLinkSll2:
      if (n < 20) return false;
      ethertype = Be16(d);
      *off = 20;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (n < 4) return false;
      uint32_t family;
      std::memcpy(&family, d, 4);
      if (linktype == DLT_LOOP) family = ntohl(family);
      if (family != 2 && family != 24 && family != 28 && family != 30) {
        family = ntohl(family);  // written on a host of the other byte order
      }
      *off = 4;
      return family == 2 || family == 24 || family == 28 || family == 30;
    }
    case DLT_RAW:
    case kLinkIpv4:
    case kLinkIpv6:
    case 101:  // LINKTYPE_RAW where DLT_RAW differs
      *off = 0;
      return true;
    default:
      return false;
  }
  return ethertype == 0x0800 || ethertype == 0x86dd;
}

bool ParseTcp(int linktype, const uint8_t* d, size_t caplen, Packet* p) {
  size_t off;
  if (!LinkToIp(linktype, d, caplen, &off) || caplen <= off) return false;
  d += off;
  size_t n = caplen - off;
  size_t l4;
  uint32_t l4_len;  // TCP header + payload, from the IP header
  const uint8_t version = d[0] >> 4;
  if (version == 4) {
    if (n < 20) return false;
    size_t ihl = (d[0] & 0x0f) * 4u;
    uint16_t total = Be16(d + 2);
    uint16_t frag = Be16(d + 6);
    if (ihl < 20 || total < ihl || d[9] != 6 || (frag & 0x3fff) != 0) return false;
    uint32_t s, t;
    std::memcpy(&s, d + 12, 4);
    std::memcpy(&t, d + 16, 4);
    p->src.addr = IpAddress::V4(s);
    p->dst.addr = IpAddress::V4(t);
    l4 = ihl;
    l4_len = total - static_cast<uint32_t>(ihl);
  } else if (version == 6) {
    if (n < 40) return false;
    uint8_t next = d[6];
    uint32_t payload = Be16(d + 4);
    p->src.addr = IpAddress::V6(d + 8).Canonical();
    p->dst.addr = IpAddress::V6(d + 24).Canonical();
    l4 = 40;
    // Hop-by-hop, routing and destination options carry their own length.
    for (int i = 0; i < 4 && (next == 0 || next == 43 || next == 60); ++i) {
      if (n < l4 + 8) return false;
      size_t len = (d[l4 + 1] + 1u) * 8;
      next = d[l4];
      l4 += len;
      if (payload < len) return false;
      payload -= static_cast<uint32_t>(len);
    }
    if (next != 6) return false;
    l4_len = payload;
  } else {
    return false;
  }
  if (n < l4 + 20) return false;
  const uint8_t* t = d + l4;
  size_t thl = (t[12] >> 4) * 4u;
  if (thl < 20 || l4_len < thl || n < l4 + thl) return false;
  p->src.port = Be16(t);
  p->dst.port = Be16(t + 2);
  p->seq = Be32(t + 4);
  p->flags = t[13];
  p->payload_len = l4_len - static_cast<uint32_t>(thl);
  size_t have = n - l4 - thl;
  p->payload = std::string_view(reinterpret_cast<const char*>(t + thl),
                                std::min<size_t>(have, p->payload_len));
  return true;
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
  Reassembler(EventSink* sink, Stats* stats) : sink_(sink), stats_(stats) {}

  void OnPacket(const Packet& p, uint64_t ts) {
    FlowKey key = Less(p.src, p.dst) ? FlowKey{p.src, p.dst} : FlowKey{p.dst, p.src};
    auto it = flows_.find(key);
    if (it == flows_.end()) {
      // Only a SYN or data opens a flow: a bare ACK/FIN/RST is the tail of
      // one that ended (or that the capture never saw).
      if (!(p.flags & kSyn) && p.payload_len == 0) return;
      if (flows_.size() >= kMaxConnections) Evict();
      it = flows_.emplace(key, Flow()).first;
      it->second.index = next_index_++;
      it->second.a = key.a;
      it->second.b = key.b;
      it->second.start_ns = ts;
      order_.push_back(key);
      stats_->connections++;
    }
    Flow& f = it->second;
    Dir& d = f.dirs[p.src == key.a ? 0 : 1];
    if (p.flags & kSyn) {
      // SYN starts the sequence space; its sender is the client unless it is a SYN-ACK.
      d.init = true;
      d.next = p.seq + 1;
      if (!f.roles_known) {
        f.roles_known = true;
        f.client = (p.flags & kAck) ? p.dst : p.src;
        f.server = (p.flags & kAck) ? p.src : p.dst;
      }
    } else if (p.payload_len > 0) {
      stats_->tcp_segments++;
      Segment(f, d, p.src, p.seq, p.payload_len, p.payload, ts);
    }
    if (p.flags & kRst) {
      End(key, f, ts);
    } else if (p.flags & kFin) {
      d.fin = true;
      if (f.dirs[0].fin && f.dirs[1].fin) End(key, f, ts);
    }
  }

  void Finish(uint64_t ts) {
    for (auto& key : order_) {
      auto it = flows_.find(key);
      if (it != flows_.end()) Close(it->second, ts);
    }
    flows_.clear();
    order_.clear();
  }

 private:
  struct Pending {
    uint32_t len;
    std::string known;
    uint64_t ts;
  };
  struct Dir {
    bool init = false;
    bool fin = false;
    uint32_t next = 0;
    std::map<uint32_t, Pending> ooo;  // keyed by seq; small, bounded by bytes
    size_t ooo_bytes = 0;
  };
  struct Flow {
    uint64_t index = 0;
    uint64_t start_ns = 0;
    Endpoint a, b;  // the flow key's endpoints
    bool roles_known = false;
    int proto = 0;  // 0 not yet, 1 classified, 2 not ours
    Endpoint client, server;
    Dir dirs[2];
    bool closed = false;
  };

  static int32_t Diff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

  void Segment(Flow& f, Dir& d, const Endpoint& from, uint32_t seq, uint32_t len,
               std::string_view known, uint64_t ts) {
    if (f.proto == 2) return;
    if (!d.init) {
      d.init = true;
      d.next = seq;
    }
    int32_t ahead = Diff(seq, d.next);
    if (ahead < 0) {
      uint32_t behind = static_cast<uint32_t>(-static_cast<int64_t>(ahead));
      if (behind >= len) {
        stats_->duplicate_bytes += len;
        return;
      }
      stats_->duplicate_bytes += behind;
      seq += behind;
      len -= behind;
      known = known.size() > behind ? known.substr(behind) : std::string_view();
      ahead = 0;
    }
    if (ahead > 0) {
      stats_->out_of_order++;
      if (d.ooo_bytes + len > kMaxOutOfOrderBytes) {
        // Waited long enough for the hole: accept it as a gap.
        d.ooo.emplace(seq, Pending{len, std::string(known), ts});
        d.ooo_bytes += len;
        auto first = d.ooo.begin();
        stats_->gap_bytes += static_cast<uint32_t>(Diff(first->first, d.next));
        d.next = first->first;
        Drain(f, d, from);
        return;
      }
      auto [it, inserted] = d.ooo.emplace(seq, Pending{len, std::string(known), ts});
      if (inserted) d.ooo_bytes += len;
      return;
    }
    Emit(f, from, seq, len, known, ts);
    d.next = seq + len;
    Drain(f, d, from);
  }

  void Drain(Flow& f, Dir& d, const Endpoint& from) {
    while (!d.ooo.empty()) {
      // The map orders by raw seq; find the entry that continues the stream.
      auto it = d.ooo.find(d.next);
      if (it == d.ooo.end()) {
        // Drop entries entirely behind, stop at a hole.
        bool progressed = false;
        for (auto j = d.ooo.begin(); j != d.ooo.end();) {
          if (Diff(j->first + j->second.len, d.next) <= 0) {
            d.ooo_bytes -= j->second.len;
            stats_->duplicate_bytes += j->second.len;
            j = d.ooo.erase(j);
          } else if (Diff(j->first, d.next) < 0) {
            // Overlaps the front: trim and re-file.
            uint32_t behind = static_cast<uint32_t>(Diff(d.next, j->first));
            Pending p = std::move(j->second);
            d.ooo_bytes -= p.len;
            j = d.ooo.erase(j);
            p.len -= behind;
            p.known = p.known.size() > behind ? p.known.substr(behind) : std::string();
            d.ooo_bytes += p.len;
            d.ooo.emplace(d.next, std::move(p));
            progressed = true;
            break;
          } else {
            ++j;
          }
        }
        if (!progressed) return;
        continue;
      }
      Pending p = std::move(it->second);
      d.ooo.erase(it);
      d.ooo_bytes -= p.len;
      Emit(f, from, d.next, p.len, p.known, p.ts);
      d.next += p.len;
    }
  }

  void Emit(Flow& f, const Endpoint& from, uint32_t seq, uint32_t len, std::string_view known,
            uint64_t ts) {
    if (f.proto == 2 || f.closed) return;
    if (f.proto == 0) {
      __u32 is_request = 0;
      __u32 proto = redmap_infer_protocol(reinterpret_cast<const __u8*>(known.data()),
                                          static_cast<__u32>(known.size()), &is_request);
      if (proto == REDMAP_PROTO_UNKNOWN) {
        f.proto = 2;
        stats_->unclassified_connections++;
        return;
      }
      f.proto = 1;
      if (!f.roles_known) {
        // No SYN in the capture: whoever sends the first request is the client.
        const Endpoint& other = from == f.a ? f.b : f.a;
        f.roles_known = true;
        f.client = is_request ? from : other;
        f.server = is_request ? other : from;
      }
    }
    stats_->payload_bytes += len;
    const bool from_client = from == f.client;
    for (int view = 0; view < 2; ++view) {  // 0: client process, 1: server process
      const bool server_view = view == 1;
      DataEvent e;
      e.conn = ConnKey{0, static_cast<int32_t>(2 * f.index + view), f.start_ns};
      e.protocol = Protocol::kHttp1;
      e.role = server_view ? Role::kServer : Role::kClient;
      e.direction = (from_client != server_view) ? Direction::kEgress : Direction::kIngress;
      e.enter_ns = e.exit_ns = ts;
      e.byte_count = len;
      e.tcp_seq = seq;
      e.has_tcp_seq = true;
      e.local = server_view ? f.server : f.client;
      e.remote = server_view ? f.client : f.server;
      e.payload = known;
      sink_->OnData(e);
    }
  }

  void Close(Flow& f, uint64_t ts) {
    if (f.closed) return;
    f.closed = true;
    if (f.proto != 1) return;
    for (int view = 0; view < 2; ++view) {
      CloseEvent c;
      c.conn = ConnKey{0, static_cast<int32_t>(2 * f.index + view), f.start_ns};
      c.ts_ns = ts;
      sink_->OnClose(c);
    }
  }

  void End(const FlowKey& key, Flow& f, uint64_t ts) {
    Close(f, ts);
    flows_.erase(key);  // order_ entry is skipped when found missing
  }

  void Evict() {
    while (!order_.empty()) {
      FlowKey key = order_.front();
      order_.pop_front();
      auto it = flows_.find(key);
      if (it == flows_.end()) continue;
      Close(it->second, it->second.start_ns);
      flows_.erase(it);
      return;
    }
  }

  EventSink* sink_;
  Stats* stats_;
  absl::flat_hash_map<FlowKey, Flow> flows_;
  std::deque<FlowKey> order_;
  uint64_t next_index_ = 0;
};

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::FromHandle(pcap_t* p,
                                                                   const std::string& name) {
  std::unique_ptr<PcapSource> s(new PcapSource());
  s->pcap_ = p;
  s->name_ = name;
  s->linktype_ = pcap_datalink(p);
  switch (s->linktype_) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case kLinkSll2:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_RAW:
    case kLinkIpv4:
    case kLinkIpv6:
    case 101:
      return s;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": unsupported link type ", s->linktype_, " (",
                       pcap_datalink_val_to_name(s->linktype_) ? pcap_datalink_val_to_name(s->linktype_)
                                                               : "unknown",
                       "); supported: Ethernet, Linux cooked v1/v2, raw IP, loopback"));
  }
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::Open(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read capture ", path, ": ", err));
  }
  return FromHandle(p, path);
}

absl::StatusOr<std::unique_ptr<PcapSource>> PcapSource::OpenBuffer(const void* data, size_t size) {
  FILE* f = fmemopen(const_cast<void*>(data), size, "rb");
  if (f == nullptr) return absl::InternalError("fmemopen failed");
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    fclose(f);
    return absl::InvalidArgumentError(absl::StrCat("cannot read capture: ", err));
  }
  auto s = FromHandle(p, "<memory>");
  return s;
}

PcapSource::~PcapSource() {
  if (pcap_ != nullptr) pcap_close(pcap_);  // also closes a FILE handed to pcap
}

absl::Status PcapSource::Run(EventSink* sink, const std::atomic<bool>& stop) {
  Reassembler r(sink, &stats_);
  pcap_pkthdr* hdr;
  const u_char* data;
  uint64_t last_ts = 0;
  int rc;
  while (!stop.load(std::memory_order_relaxed) && (rc = pcap_next_ex(pcap_, &hdr, &data)) >= 0) {
    if (rc == 0) continue;
    stats_.packets++;
    const uint64_t ts = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ull +
                        static_cast<uint64_t>(hdr->ts.tv_usec);  // ns: nano precision
    last_ts = std::max(last_ts, ts);
    Packet p;
    if (!ParseTcp(linktype_, data, hdr->caplen, &p)) {
      stats_.unsupported_packets++;
      continue;
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
