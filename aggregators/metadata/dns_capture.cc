#include "aggregators/metadata/dns_capture.h"

#include <pcap/pcap.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "aggregators/sources/packet_headers.h"

namespace redmap {
namespace {

constexpr uint16_t kDnsPort = 53;
constexpr size_t kUdpHeaderBytes = 8;

uint64_t MonotonicNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(t.tv_nsec);
}

}  // namespace

DnsAnswerResult DnsAnswerFeed::Count(DnsAnswerResult r) {
  answers_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  return r;
}

std::array<uint64_t, kNumDnsAnswerResults> DnsAnswerFeed::answers() const {
  std::array<uint64_t, kNumDnsAnswerResults> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = answers_[i].load(std::memory_order_relaxed);
  return out;
}

DnsAnswerResult DnsAnswerFeed::OnFrame(int linktype, const uint8_t* data, size_t caplen,
                                       size_t wirelen, uint64_t now_ns) {
  IpPacket ip;
  switch (ParseIpHeaders(linktype, data, caplen, wirelen, &ip)) {
    case HeaderResult::kOk:
      break;
    case HeaderResult::kFragment:  // the rest of a large answer is in other fragments
      return Count(DnsAnswerResult::kTruncated);
    case HeaderResult::kUnsupported:
    case HeaderResult::kMalformed:
      return Count(DnsAnswerResult::kMalformed);
  }
  // The kernel filter passes UDP from port 53 only; anything else here is
  // not an answer (a hand-fed frame).
  if (ip.protocol != kIpProtoUdp || ip.l4_len < kUdpHeaderBytes) {
    return Count(DnsAnswerResult::kMalformed);
  }
  if (ip.l4_captured < kUdpHeaderBytes) return Count(DnsAnswerResult::kTruncated);
  const uint16_t udp_len = Be16(ip.l4 + 4);
  if (Be16(ip.l4) != kDnsPort || udp_len < kUdpHeaderBytes || udp_len > ip.l4_len) {
    return Count(DnsAnswerResult::kMalformed);
  }
  const size_t payload = udp_len - kUdpHeaderBytes;
  if (ip.l4_captured - kUdpHeaderBytes < payload) return Count(DnsAnswerResult::kTruncated);
  const std::string_view message(reinterpret_cast<const char*>(ip.l4 + kUdpHeaderBytes), payload);
  const DnsAnswerResult r = ParseDnsAnswer(message, &scratch_);
  if (r == DnsAnswerResult::kParsed) {
    for (const DnsAnswer::Address& a : scratch_.addresses) {
      cache_->Add(a.ip, scratch_.name, a.ttl_s, now_ns);
    }
    addresses_.fetch_add(scratch_.addresses.size(), std::memory_order_relaxed);
  }
  return Count(r);
}

absl::StatusOr<std::unique_ptr<DnsCapture>> DnsCapture::Open(DnsCache* cache,
                                                             const DnsCaptureOptions& options) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(options.device.c_str(), err);
  if (p == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot capture DNS answers on ", options.device, ": ", err));
  }
  // Never promiscuous: only what this host sends and receives. Immediate
  // mode: each answer is handed over at once (TPACKET_V2, one wakeup per
  // answer); the 1 s timeout bounds how long a quiet capture sleeps.
  pcap_set_snaplen(p, options.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_immediate_mode(p, 1);
  pcap_set_timeout(p, 1000);
  pcap_set_buffer_size(p, options.buffer_bytes);
  const int rc = pcap_activate(p);
  if (rc < 0) {
    std::string why = pcap_geterr(p);
    if (why.empty()) why = pcap_statustostr(rc);
    if (rc == PCAP_ERROR_PERM_DENIED) why += " (needs CAP_NET_RAW)";
    pcap_close(p);
    return absl::UnavailableError(
        absl::StrCat("cannot capture DNS answers on ", options.device, ": ", why));
  }
  const int linktype = pcap_datalink(p);
  if (!LinkTypeSupported(linktype)) {
    const char* name = pcap_datalink_val_to_name(linktype);
    pcap_close(p);
    return absl::UnavailableError(absl::StrCat("cannot capture DNS answers on ", options.device,
                                               ": unsupported link type ",
                                               name != nullptr ? name : "unknown"));
  }
  // The filter runs in the kernel: nothing but answers is copied to us.
  bpf_program prog;
  bool filtered = false;
  if (pcap_compile(p, &prog, options.filter.c_str(), /*optimize=*/1, PCAP_NETMASK_UNKNOWN) == 0) {
    filtered = pcap_setfilter(p, &prog) == 0;
    pcap_freecode(&prog);
  }
  if (!filtered) {
    std::string why = pcap_geterr(p);
    pcap_close(p);
    return absl::UnavailableError(absl::StrCat("cannot filter DNS answers on ", options.device,
                                               " (\"", options.filter, "\"): ", why));
  }
  return std::unique_ptr<DnsCapture>(new DnsCapture(p, cache));
}

DnsCapture::DnsCapture(pcap_t* pcap, DnsCache* cache)
    : pcap_(pcap), linktype_(pcap_datalink(pcap)), feed_(cache) {}

DnsCapture::~DnsCapture() {
  Stop();
  pcap_close(pcap_);
}

void DnsCapture::Start() {
  if (thread_.joinable()) return;
  stop_.store(false);
  up_.store(true);
  thread_ = std::thread([this] { Run(); });
}

void DnsCapture::Stop() {
  stop_.store(true);
  if (!thread_.joinable()) return;
  pcap_breakloop(pcap_);  // wakes a blocked poll (libpcap >= 1.10 on Linux)
  thread_.join();
  up_.store(false);
}

void DnsCapture::Run() {
  // Signals (SIGTERM, SIGINT) belong to the main thread, which stops us.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), "redmap-dns");  // its CPU in /proc/<pid>/task
  uint64_t last_stats_ns = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    const int n = pcap_dispatch(
        pcap_, -1,
        [](u_char* self, const pcap_pkthdr* h, const u_char* bytes) {
          auto* c = reinterpret_cast<DnsCapture*>(self);
          c->feed_.OnFrame(c->linktype_, bytes, h->caplen, std::max(h->len, h->caplen),
                           MonotonicNs());
        },
        reinterpret_cast<u_char*>(this));
    if (n == PCAP_ERROR_BREAK) continue;  // stop_ is set
    if (n == PCAP_ERROR) {
      fprintf(stderr, "redmap: DNS answer capture stopped: %s\n", pcap_geterr(pcap_));
      up_.store(false);
      return;
    }
    const uint64_t now = MonotonicNs();
    if (now - last_stats_ns >= 1'000'000'000) {
      last_stats_ns = now;
      pcap_stat st;
      if (pcap_stats(pcap_, &st) == 0) kernel_drops_.store(st.ps_drop, std::memory_order_relaxed);
    }
  }
}

}  // namespace redmap
