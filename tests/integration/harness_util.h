// Helpers for root integration tests: real processes, loopback ports,
// scraping /metrics and reading values out of the exposition.
#ifndef REDMAP_TESTS_INTEGRATION_HARNESS_UTIL_H_
#define REDMAP_TESTS_INTEGRATION_HARNESS_UTIL_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace redmap::testing {

// A child process with stdout+stderr going to a log file; killed (SIGTERM,
// then SIGKILL) when destroyed.
class Subprocess {
 public:
  Subprocess() = default;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();
  // Starts argv[0] (PATH lookup). Returns false if fork/exec fails.
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {});
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends sig and waits; returns the exit status as from waitpid (or -1).
  int Stop(int sig = 15, std::chrono::milliseconds grace = std::chrono::seconds(5));
  int Wait();
  std::string Output() const;  // what it printed so far
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout + stderr
};
// Runs `sh -c command` and waits.
CommandResult RunShell(const std::string& command);

// Polls `cond` every 200 ms for up to `seconds`; its last answer.
bool WaitUntil(const std::function<bool()>& cond, int seconds);

// A TCP port on 127.0.0.1 free right now.
int FreePort();
// Polls until something accepts on host:port.
// A foreground, single-process nginx configuration whose pid, logs and
// temp files live in dir; `http_body` is the rest of the http block
// (server blocks and directives).
std::string NginxConfig(const std::string& dir, const std::string& http_body);

bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout);

// Plain HTTP/1.0 GET; returns the body, nullopt on connection failure.
struct HttpResult {
  int status = 0;
  std::string body;
};
std::optional<HttpResult> HttpGet(const std::string& host, int port, const std::string& path);

// Parsed Prometheus text exposition: series string ("name{a=\"b\"}") -> value.
class Exposition {
 public:
  static Exposition Parse(const std::string& text);
  // Sum of all series of `name` whose labels include every pair in `labels`.
  double Sum(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  // Number of such series.
  int Count(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  const std::string& text() const { return text_; }

 private:
  struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value;
  };
  std::vector<Sample> samples_;
  std::string text_;
};

// The real redmap_exporter on a free loopback port. Start waits until the
// probes report on /metrics (the HTTP server listens before BPF loads);
// on failure it returns false with the exporter's output in *why.
class ExporterProcess {
 public:
  bool Start(const std::vector<std::string>& flags, std::string* why,
             const std::vector<std::string>& env = {});
  // SIGTERM; true when it exited 0 (everything detached) within 10 s.
  bool Stop(std::string* why);
  int port() const { return port_; }
  int pid() const { return process_.pid(); }
  bool Running() { return process_.Running(); }
  std::string Output() const { return process_.Output(); }
  Exposition Scrape() const;

 private:
  Subprocess process_;
  int port_ = 0;
};

// Temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace redmap::testing

#endif  // REDMAP_TESTS_INTEGRATION_HARNESS_UTIL_H_
