#include "tests/integration/harness_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace redmap::testing {

Subprocess::~Subprocess() {
  if (pid_ > 0 && status_ == -1) Stop(SIGTERM, std::chrono::seconds(3));
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

bool Subprocess::Start(const std::vector<std::string>& argv,
                       const std::vector<std::string>& extra_env) {
  char tmpl[] = "/tmp/redmap-subprocess-XXXXXX";
  int log_fd = mkstemp(tmpl);
  if (log_fd < 0) return false;
  log_path_ = tmpl;
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    setpgid(0, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (const auto& e : extra_env) putenv(strdup(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(log_fd);
  status_ = -1;
  return true;
}

bool Subprocess::Running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int st;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

int Subprocess::Stop(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (status_ != -1) return status_;
  kill(pid_, sig);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Running()) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  return Wait();
}

int Subprocess::Wait() {
  if (pid_ <= 0) return -1;
  if (status_ != -1) return status_;
  int st;
  if (waitpid(pid_, &st, 0) == pid_) status_ = st;
  return status_;
}

std::string Subprocess::Output() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult RunShell(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  int st = pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool WaitUntil(const std::function<bool()>& cond, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return cond();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

static int Connect(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool WaitForPort(const std::string& host, int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = Connect(host, port);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::optional<HttpResult> HttpGet(const std::string& host, int port, const std::string& path) {
  int fd = Connect(host, port);
  if (fd < 0) return std::nullopt;
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, n);
  close(fd);
  HttpResult r;
  if (resp.size() < 12) return std::nullopt;
  r.status = std::atoi(resp.c_str() + 9);
  size_t body = resp.find("\r\n\r\n");
  if (body != std::string::npos) r.body = resp.substr(body + 4);
  return r;
}

Exposition Exposition::Parse(const std::string& text) {
  Exposition e;
  e.text_ = text;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t brace = line.find('{');
    size_t space;
    if (brace != std::string::npos && brace < line.find(' ')) {
      s.name = line.substr(0, brace);
      size_t i = brace + 1;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        std::string key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;  // past ="
        while (j < line.size() && line[j] != '"') {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value.push_back(line[j] == 'n' ? '\n' : line[j]);
          } else {
            value.push_back(line[j]);
          }
          ++j;
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      space = line.find(' ', i);
    } else {
      space = line.find(' ');
      s.name = line.substr(0, space);
    }
    if (space == std::string::npos) continue;
    s.value = std::strtod(line.c_str() + space + 1, nullptr);
    e.samples_.push_back(std::move(s));
  }
  return e;
}

static bool Matches(const std::map<std::string, std::string>& have,
                    const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = have.find(k);
    if (it == have.end() || it->second != v) return false;
  }
  return true;
}

double Exposition::Sum(const std::string& name,
                       const std::map<std::string, std::string>& labels) const {
  double total = 0;
  for (const auto& s : samples_)
    if (s.name == name && Matches(s.labels, labels)) total += s.value;
  return total;
}

int Exposition::Count(const std::string& name,
                      const std::map<std::string, std::string>& labels) const {
  int n = 0;
  for (const auto& s : samples_)
    if (s.name == name && Matches(s.labels, labels)) ++n;
  return n;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/redmap-test-XXXXXX";
  path_ = mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p) << content;
  return p;
}

bool ExporterProcess::Start(const std::vector<std::string>& flags, std::string* why,
                            const std::vector<std::string>& env) {
  port_ = FreePort();
  std::vector<std::string> argv = {REDMAP_EXPORTER_BINARY,
                                   absl::StrCat("--web.listen-address=127.0.0.1:", port_)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  if (!process_.Start(argv, env)) {
    *why = "cannot start " + argv[0];
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = HttpGet("127.0.0.1", port_, "/metrics");
    if (r && Exposition::Parse(r->body).Count("redmap_probe_up") > 0) return true;
    if (!process_.Running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *why = "the exporter's probes did not report within 30 s:\n" + process_.Output();
  return false;
}

bool ExporterProcess::Stop(std::string* why) {
  const int st = process_.Stop(SIGTERM, std::chrono::seconds(10));
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return true;
  *why = absl::StrCat("the exporter did not exit cleanly on SIGTERM (status ", st, "):\n",
                      process_.Output());
  return false;
}

Exposition ExporterProcess::Scrape() const {
  auto r = HttpGet("127.0.0.1", port_, "/metrics");
  return Exposition::Parse(r ? r->body : "");
}

std::string NginxConfig(const std::string& dir, const std::string& http_body) {
  return absl::StrCat(R"(
daemon off;
master_process off;
worker_processes 1;
user root;
pid )", dir, R"(/nginx.pid;
error_log )", dir, R"(/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path )", dir, R"(/body;
  proxy_temp_path )", dir, R"(/proxy;
  fastcgi_temp_path )", dir, R"(/fastcgi;
  uwsgi_temp_path )", dir, R"(/uwsgi;
  scgi_temp_path )", dir, R"(/scgi;
)", http_body, R"(
}
)");
}

}  // namespace redmap::testing
