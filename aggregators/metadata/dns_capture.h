// Feeds the DnsCache from the DNS answers crossing this node: a libpcap live
// capture on the `any` device with the kernel filter `udp src port 53`
// (answers only), on its own thread.
//
// Where it sees answers: pods' DNS traffic crosses their host-side veth (and
// the CNI bridge, if any) in the host network namespace, so one capture in
// the host namespace sees the answers every pod receives, whether the
// server is a cluster DNS pod, a node-local cache (hostNetwork) or outside
// the node; so are the answers of host processes (loopback included). Not
// seen: DNS over TCP, DoT and DoH; answers that exist only inside another
// network namespace without a host-side interface (a resolver inside the
// pod itself, answering on the pod's loopback); a capture that is not in
// the host network namespace (a pod without hostNetwork) sees only its own.
// An answer that crosses several host interfaces (the bridge and a veth) is
// captured, and counted, once on each: adding it to the cache again is
// harmless.
//
// Cost: the kernel filter runs on every packet of every interface (a few
// instructions; everything but UDP from port 53 is dropped before a copy);
// each answer is copied (at most snaplen bytes) into a memory-mapped ring
// and parsed on this thread. Immediate mode: an answer reaches the cache
// within a wakeup, before the client's connection is usually even opened.
#ifndef REDMAP_AGGREGATORS_METADATA_DNS_CAPTURE_H_
#define REDMAP_AGGREGATORS_METADATA_DNS_CAPTURE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "aggregators/metadata/dns_answer.h"
#include "aggregators/metadata/dns_cache.h"

typedef struct pcap pcap_t;

namespace redmap {

// The pure half: one captured frame in, the cache fed, the result counted.
// OnFrame from one thread; the counters from any.
class DnsAnswerFeed {
 public:
  explicit DnsAnswerFeed(DnsCache* cache) : cache_(cache) {}

  // A frame of libpcap link type `linktype`: caplen bytes captured of a
  // wirelen-byte packet. now_ns: monotonic.
  DnsAnswerResult OnFrame(int linktype, const uint8_t* data, size_t caplen, size_t wirelen,
                          uint64_t now_ns);

  // Answers by result (index: DnsAnswerResult).
  std::array<uint64_t, kNumDnsAnswerResults> answers() const;
  uint64_t addresses() const { return addresses_.load(std::memory_order_relaxed); }

 private:
  DnsAnswerResult Count(DnsAnswerResult r);

  DnsCache* cache_;
  DnsAnswer scratch_;  // reused: no allocation per answer in the steady state
  std::array<std::atomic<uint64_t>, kNumDnsAnswerResults> answers_{};
  std::atomic<uint64_t> addresses_{0};
};

struct DnsCaptureOptions {
  std::string device = "any";
  // Bytes kept of each packet (link + IP + UDP headers + the answer); longer
  // answers are counted as truncated. 1500 holds a full Ethernet frame: every
  // answer that was not fragmented on a 1500-byte link.
  int snaplen = 1500;
  int buffer_bytes = 2 << 20;  // the kernel ring; a full ring drops (kernel_drops)
  std::string filter = "udp src port 53";
};

class DnsCapture {
 public:
  // Opens and activates the capture and installs the filter (needs
  // CAP_NET_RAW); does not start the thread. The error says what failed
  // (permission, no such device, filter) with libpcap's words.
  static absl::StatusOr<std::unique_ptr<DnsCapture>> Open(DnsCache* cache,
                                                          const DnsCaptureOptions& options = {});
  DnsCapture(const DnsCapture&) = delete;
  DnsCapture& operator=(const DnsCapture&) = delete;
  ~DnsCapture();  // Stop()

  void Start();
  // Wakes the thread (pcap_breakloop) and joins it; idempotent.
  void Stop();

  const DnsAnswerFeed& feed() const { return feed_; }
  // 1 while the thread captures; 0 before Start, after Stop or a capture error.
  bool up() const { return up_.load(std::memory_order_relaxed); }
  // Packets the kernel dropped because the ring was full (pcap_stats).
  uint64_t kernel_drops() const { return kernel_drops_.load(std::memory_order_relaxed); }

 private:
  DnsCapture(pcap_t* pcap, DnsCache* cache);
  void Run();

  pcap_t* pcap_;
  int linktype_;
  DnsAnswerFeed feed_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> up_{false};
  std::atomic<uint64_t> kernel_drops_{0};
  std::thread thread_;
};

}  // namespace redmap

#endif  // REDMAP_AGGREGATORS_METADATA_DNS_CAPTURE_H_
