// The real binary's failure modes: one clear line, non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <fstream>
#include <string>

namespace redmap {
namespace {

struct Result {
  int code;
  std::string output;
};

Result RunExporter(const std::string& args) {
  std::string cmd = std::string(REDMAP_EXPORTER_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string WriteTemp(const std::string& content) {
  char path[] = "/tmp/redmap-cli-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << content;
  return path;
}

TEST(ExporterCliTest, UnknownConfigKey) {
  std::string f = WriteTemp("capture:\n  payload_byts: 5\n");
  Result r = RunExporter("--config.file=" + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.output, "redmap: " + f + ": unknown key 'capture.payload_byts' (line 2)\n");
  unlink(f.c_str());
}

TEST(ExporterCliTest, BadValue) {
  std::string f = WriteTemp("red:\n  buckets: [1, 0.5]\n");
  Result r = RunExporter("--config.file " + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("red.buckets: buckets must be strictly increasing"), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  unlink(f.c_str());
}

TEST(ExporterCliTest, MalformedYaml) {
  std::string f = WriteTemp("capture: [\n");
  Result r = RunExporter("--config.file=" + f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("malformed YAML"), std::string::npos) << r.output;
  unlink(f.c_str());
}

TEST(ExporterCliTest, UnknownFlagIsUsageError) {
  Result r = RunExporter("--metrics.port=1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.output.rfind("redmap: unknown flag '--metrics.port'\n", 0), 0u) << r.output;
}

TEST(ExporterCliTest, BadListenAddress) {
  Result r = RunExporter("--web.listen-address=nowhere");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("--web.listen-address=nowhere"), std::string::npos) << r.output;
}

TEST(ExporterCliTest, MissingReplayFile) {
  Result r = RunExporter("--replay=/nonexistent/x.pcap");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("cannot read capture /nonexistent/x.pcap"), std::string::npos)
      << r.output;
}

TEST(ExporterCliTest, HelpAndVersion) {
  EXPECT_EQ(RunExporter("--help").code, 0);
  Result v = RunExporter("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.output.rfind("redmap_exporter ", 0), 0u);
}

}  // namespace
}  // namespace redmap
