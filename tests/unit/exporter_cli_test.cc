// The real binary's failure modes: nothing on stdout, one clear line on
// stderr, non-zero exit (2 for usage errors, 1 for everything else). Live
// mode needs root and BPF; it is exercised in tests/integration.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"

namespace redmap {
namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

std::string TempPath() {
  char path[] = "/tmp/redmap-cli-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  return path;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result RunExporter(const std::string& args) {
  std::string out = TempPath(), err = TempPath();
  std::string cmd =
      std::string(REDMAP_EXPORTER_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  int st = std::system(cmd.c_str());
  Result r{WIFEXITED(st) ? WEXITSTATUS(st) : -1, Slurp(out), Slurp(err)};
  unlink(out.c_str());
  unlink(err.c_str());
  return r;
}

std::string WriteTemp(const std::string& content) {
  std::string path = TempPath();
  std::ofstream(path) << content;
  return path;
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(ExporterCliTest, UnknownConfigKey) {
  std::string f = WriteTemp("capture:\n  payload_byts: 5\n");
  Result r = RunExporter("--config.file=" + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "redmap: " + f + ": unknown key 'capture.payload_byts' (line 2)\n");
  EXPECT_EQ(r.out, "");
  unlink(f.c_str());
}

TEST(ExporterCliTest, BadValue) {
  std::string f = WriteTemp("red:\n  buckets: [1, 0.5]\n");
  Result r = RunExporter("--config.file " + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("red.buckets: buckets must be strictly increasing"), std::string::npos)
      << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  unlink(f.c_str());
}

TEST(ExporterCliTest, DnsCaptureWithoutKubernetesIsAnError) {
  // DNS names are only used with Kubernetes identities: asking for the
  // capture without them stops the exporter before anything is loaded.
  std::string f = WriteTemp("kubernetes:\n  enabled: false\nidentity:\n  dns_capture: true\n");
  Result r = RunExporter("--config.file=" + f + " --web.listen-address=127.0.0.1:1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("identity.dns_capture: true needs Kubernetes identities"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
  unlink(f.c_str());
}

TEST(ExporterCliTest, MalformedYaml) {
  std::string f = WriteTemp("capture: [\n");
  Result r = RunExporter("--config.file=" + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("malformed YAML at line"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  unlink(f.c_str());
}

TEST(ExporterCliTest, MissingConfigFile) {
  Result r = RunExporter("--config.file=/nonexistent/redmap.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "redmap: cannot read config file /nonexistent/redmap.yaml: No such file or directory\n");
}

TEST(ExporterCliTest, UnknownFlagIsUsageError) {
  Result r = RunExporter("--metrics.port=1");
  EXPECT_EQ(r.code, 2);
  // The first line names the flag; the usage follows.
  EXPECT_EQ(r.err.rfind("redmap: unknown flag '--metrics.port'\n", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--config.file=PATH"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(ExporterCliTest, MissingFlagValueIsUsageError) {
  Result r = RunExporter("--config.file");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("redmap: flag --config.file needs a value\n", 0), 0u) << r.err;
}

TEST(ExporterCliTest, BadListenAddress) {
  Result r = RunExporter("--web.listen-address=nowhere");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--web.listen-address=nowhere"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST(ExporterCliTest, MissingReplayFile) {
  Result r = RunExporter("--replay=/nonexistent/x.pcap");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot read capture /nonexistent/x.pcap"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST(ExporterCliTest, ReplayOfANonCapture) {
  std::string f = WriteTemp("this is not a pcap file\n");
  Result r = RunExporter("--replay=" + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(f), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
  unlink(f.c_str());
}

// curl -> python3 -m http.server: GET / (200) and GET /x (404); see
// tests/fixtures/pcap/README.md.
TEST(ExporterCliTest, ReplayPrintsSpansThenExposition) {
  Result r = RunExporter(std::string("--replay=") + REDMAP_SOURCE_DIR +
                         "/tests/fixtures/pcap/curl_python_http_server.pcap --replay.spans");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int spans = 0;
  while (std::getline(lines, line) && !line.empty() && line[0] == '{') {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["protocol"], "http1");
    EXPECT_EQ(j["method"], "GET");
    EXPECT_EQ(j["server"], "127.0.0.1:18002");
    EXPECT_TRUE(j["side"] == "client" || j["side"] == "server") << line;
    EXPECT_EQ(j["status"], j["target"] == "/" ? 200 : 404) << line;
    EXPECT_GE(j["end_ns"].get<uint64_t>(), j["start_ns"].get<uint64_t>());
    ++spans;
  }
  EXPECT_EQ(spans, 4);  // two requests, each seen by client and server
  EXPECT_EQ(line.rfind("# HELP ", 0), 0u) << line;
  EXPECT_NE(r.out.find("http_server_request_duration_seconds_count{"), std::string::npos);
}

TEST(ExporterCliTest, HelpAndVersion) {
  Result h = RunExporter("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_EQ(h.out.rfind("usage: redmap_exporter", 0), 0u) << h.out;
  EXPECT_EQ(RunExporter("-h").code, 0);
  Result v = RunExporter("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("redmap_exporter ", 0), 0u);
  EXPECT_EQ(Lines(v.out), 1);
}

}  // namespace
}  // namespace redmap
