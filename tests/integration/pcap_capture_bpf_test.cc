// PcapSource on fresh captures (needs root for tcpdump, not BPF): curl
// against python's http.server on loopback, captured at once on `lo`
// (Ethernet link type) and on `any` (Linux cooked v2). Replaying either
// capture must give exactly the connections and bytes curl reports having
// moved, in both the client and the server view.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "aggregators/sources/pcap_source.h"
#include "tests/integration/harness_util.h"

namespace redmap {
namespace {

using ::redmap::testing::FreePort;
using ::redmap::testing::RunShell;
using ::redmap::testing::Subprocess;
using ::redmap::testing::TempDir;
using ::redmap::testing::WaitForPort;

// What curl said it moved, summed over transfers.
struct CurlTotals {
  uint64_t up = 0;    // request line, headers and body
  uint64_t down = 0;  // response headers and body
  int connects = 0;   // new connections (keep-alive reuses count 0)
  int transfers = 0;
};

// Runs curl with -w printing, per transfer: size_request size_header size_download num_connects.
bool Curl(const std::string& args, CurlTotals* totals) {
  auto r = RunShell(absl::StrCat(
      "curl -sS -w '%{size_request} %{size_header} %{size_download} %{num_connects}\\n' ", args));
  if (r.exit_code != 0) {
    ADD_FAILURE() << args << ": " << r.output;
    return false;
  }
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    uint64_t req, hdr, body;
    int connects;
    if (f.size() != 4 || !absl::SimpleAtoi(f[0], &req) || !absl::SimpleAtoi(f[1], &hdr) ||
        !absl::SimpleAtoi(f[2], &body) || !absl::SimpleAtoi(f[3], &connects)) {
      ADD_FAILURE() << "unexpected curl output: " << r.output;
      return false;
    }
    totals->up += req;
    totals->down += hdr + body;
    totals->connects += connects;
    totals->transfers++;
  }
  return true;
}

class Recorder : public EventSink {
 public:
  void OnData(const DataEvent& e) override {
    const int view = e.role == Role::kClient ? 0 : 1;
    const int dir = e.direction == Direction::kEgress ? 0 : 1;
    bytes[view][dir] += e.byte_count;
    known[view][dir] += e.payload.size();
    if (e.role == Role::kClient && e.direction == Direction::kEgress &&
        first_egress.count(e.conn.fd) == 0) {
      first_egress[e.conn.fd] = std::string(e.payload.substr(0, 16));
    }
    client_fds.insert(e.role == Role::kClient ? e.conn.fd : e.conn.fd - 1);
  }
  void OnClose(const CloseEvent&) override { closes++; }

  uint64_t bytes[2][2] = {};  // [client view, server view][egress, ingress]
  uint64_t known[2][2] = {};
  std::map<int32_t, std::string> first_egress;
  std::set<int32_t> client_fds;
  int closes = 0;
};

class Tcpdump {
 public:
  bool Start(const std::string& iface, const std::string& file, int port) {
    // A 64 MiB buffer: with the default, `any` drops some of the 64 KiB
    // loopback segments of a large response.
    if (!proc_.Start({"tcpdump", "-Z", "root", "-B", "65536", "--immediate-mode", "-U", "-i", iface,
                      "-w", file, "tcp", "port", std::to_string(port)})) {
      return false;
    }
    for (int i = 0; i < 200 && !absl::StrContains(proc_.Output(), "listening on"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::StrContains(proc_.Output(), "listening on");
  }
  void Stop() { proc_.Stop(SIGINT); }
  std::string Output() const { return proc_.Output(); }

 private:
  Subprocess proc_;
};

int LinkType(const std::string& file) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(file.c_str(), err);
  if (p == nullptr) return -1;
  int linktype = pcap_datalink(p);
  pcap_close(p);
  return linktype;
}

TEST(PcapCaptureTest, CapturesOfCurlReplayToWhatCurlMoved) {
  TempDir dir;
  dir.Write("a.txt", "alpha\n");
  // Larger than one loopback segment (64 KiB): the response is reassembled.
  std::string big;
  for (int i = 0; big.size() < 300000; ++i) big += absl::StrCat("line ", i, "\n");
  dir.Write("big.txt", big);

  const int port = FreePort();
  Subprocess server;
  ASSERT_TRUE(server.Start({"python3", "-m", "http.server", "--protocol", "HTTP/1.1", "--bind",
                            "127.0.0.1", "--directory", dir.path(), std::to_string(port)}));
  ASSERT_TRUE(WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) << server.Output();

  const std::string lo_file = dir.path() + "/lo.pcap", any_file = dir.path() + "/any.pcap";
  Tcpdump lo, any;
  ASSERT_TRUE(lo.Start("lo", lo_file, port)) << lo.Output();
  ASSERT_TRUE(any.Start("any", any_file, port)) << any.Output();

  const std::string base = absl::StrCat("http://127.0.0.1:", port);
  CurlTotals curl;
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Curl(absl::StrCat("-o /dev/null ", base, "/a.txt"), &curl));
  // One keep-alive connection: two 200s, then a 404 after which the server closes.
  ASSERT_TRUE(Curl(absl::StrCat("-o /dev/null -o /dev/null -o /dev/null ", base, "/a.txt ", base,
                                "/big.txt ", base, "/missing"),
                   &curl));
  ASSERT_TRUE(Curl(absl::StrCat("-o /dev/null --data hello=world ", base, "/a.txt"), &curl));
  ASSERT_TRUE(Curl(absl::StrCat("-o /dev/null -I ", base, "/big.txt"), &curl));
  ASSERT_EQ(curl.transfers, 10);
  ASSERT_EQ(curl.connects, 8);

  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last FIN/ACKs
  lo.Stop();
  any.Stop();

  EXPECT_EQ(LinkType(lo_file), DLT_EN10MB);
  EXPECT_EQ(LinkType(any_file), DLT_LINUX_SLL2);
  for (const auto* file : {&lo_file, &any_file}) {
    SCOPED_TRACE(absl::StrCat(*file, "\n", lo.Output(), any.Output()));
    auto source = PcapSource::Open(*file);
    ASSERT_TRUE(source.ok()) << source.status();
    Recorder r;
    std::atomic<bool> stop{false};
    ASSERT_TRUE((*source)->Run(&r, stop).ok());
    const PcapSource::Stats& stats = (*source)->stats();
    EXPECT_EQ(stats.connections, 8u);
    EXPECT_EQ(stats.unclassified_connections, 0u);
    EXPECT_EQ(stats.gap_bytes, 0u);
    EXPECT_EQ(stats.truncated_packets, 0u);
    EXPECT_EQ(stats.payload_bytes, curl.up + curl.down);
    EXPECT_EQ(r.client_fds.size(), 8u);
    EXPECT_EQ(r.closes, 16);
    // [view][direction]: the client sends what the server receives and back.
    EXPECT_EQ(r.bytes[0][0], curl.up);
    EXPECT_EQ(r.bytes[0][1], curl.down);
    EXPECT_EQ(r.bytes[1][1], curl.up);
    EXPECT_EQ(r.bytes[1][0], curl.down);
    EXPECT_EQ(r.known[0][1], curl.down);  // nothing cut by the snap length
    ASSERT_EQ(r.first_egress.size(), 8u);
    int gets = 0, posts = 0, heads = 0;
    for (const auto& [fd, first] : r.first_egress) {
      gets += absl::StartsWith(first, "GET /");
      posts += absl::StartsWith(first, "POST /a.txt ");
      heads += absl::StartsWith(first, "HEAD /big.txt ");
    }
    EXPECT_EQ(gets, 6);
    EXPECT_EQ(posts, 1);
    EXPECT_EQ(heads, 1);
  }
}

}  // namespace
}  // namespace redmap
