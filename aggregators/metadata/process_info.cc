#include "aggregators/metadata/process_info.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "aggregators/common/read_file.h"

namespace redmap {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kCommBytes = 15;  // TASK_COMM_LEN - 1: longer names are cut

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\0'))
    s.remove_suffix(1);
  return s;
}

// Label-safe: printable ASCII, bounded.
std::string Sanitize(std::string_view s) {
  std::string out(s.substr(0, kMaxNameBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '_';
  }
  return out;
}

// service.name=x in "k=v,k2=v2".
std::string_view FromResourceAttributes(std::string_view attrs) {
  while (!attrs.empty()) {
    size_t comma = attrs.find(',');
    std::string_view kv = attrs.substr(0, comma);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos && Trim(kv.substr(0, eq)) == "service.name") {
      std::string_view v = Trim(kv.substr(eq + 1));
      if (!v.empty()) return v;
    }
    if (comma == std::string_view::npos) break;
    attrs.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

std::string ServiceNameFromComm(std::string_view comm) {
  comm = Trim(comm);
  return comm.empty() ? std::string(kUnknownService) : Sanitize(comm);
}

ProcessResolver::ProcessResolver(std::string proc_root, size_t max_entries)
    : proc_root_(std::move(proc_root)), max_entries_(std::max<size_t>(max_entries, 1)) {}

uint64_t ProcessResolver::StartTime(uint32_t tgid) const {
  // Field 22 of /proc/<pid>/stat, counted after the parenthesised comm
  // (which may itself hold spaces and parentheses): ") S ppid ...".
  std::string stat = ReadFileBounded(proc_root_ + "/" + std::to_string(tgid) + "/stat", 4096);
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::string_view rest(stat);
  rest.remove_prefix(close + 1);
  for (int field = 3; field <= 22; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    size_t end = std::min(rest.find(' '), rest.size());
    if (field == 22) {
      uint64_t v = 0;
      std::from_chars(rest.data(), rest.data() + end, v);
      return v;
    }
    rest.remove_prefix(end);
  }
  return 0;
}

std::string ProcessResolver::Resolve(uint32_t tgid, std::string_view kernel_comm) const {
  const std::string dir = proc_root_ + "/" + std::to_string(tgid);
  const std::string env = ReadFileBounded(dir + "/environ", 1 << 20);
  std::string_view from_attrs;
  for (size_t i = 0; i < env.size();) {
    size_t end = std::min(env.find('\0', i), env.size());
    std::string_view kv(env.data() + i, end - i);
    constexpr std::string_view kName = "OTEL_SERVICE_NAME=";
    constexpr std::string_view kAttrs = "OTEL_RESOURCE_ATTRIBUTES=";
    if (kv.substr(0, kName.size()) == kName) {
      std::string_view v = Trim(kv.substr(kName.size()));
      if (!v.empty()) return Sanitize(v);
    } else if (kv.substr(0, kAttrs.size()) == kAttrs) {
      std::string_view v = FromResourceAttributes(kv.substr(kAttrs.size()));
      if (!v.empty()) from_attrs = v;
    }
    i = end + 1;
  }
  if (!from_attrs.empty()) return Sanitize(from_attrs);

  std::string comm_buf = ReadFileBounded(dir + "/comm", 64);
  std::string_view comm = Trim(comm_buf);
  if (comm.empty()) return ServiceNameFromComm(kernel_comm);
  if (comm.size() == kCommBytes) {
    char link[PATH_MAX];
    ssize_t n = readlink((dir + "/exe").c_str(), link, sizeof(link));
    if (n > 0) {
      std::string_view exe(link, static_cast<size_t>(n));
      constexpr std::string_view kDeleted = " (deleted)";
      if (exe.size() > kDeleted.size() && exe.substr(exe.size() - kDeleted.size()) == kDeleted) {
        exe.remove_suffix(kDeleted.size());
      }
      std::string_view base = exe.substr(exe.rfind('/') + 1);  // npos + 1 == 0
      if (base.size() > comm.size() && base.substr(0, comm.size()) == comm) return Sanitize(base);
    }
  }
  return Sanitize(comm);
}

std::string ProcessResolver::ServiceName(uint32_t tgid, uint64_t now_ns,
                                         std::string_view kernel_comm) {
  if (tgid == 0) return kUnknownService;
  uint64_t cached_start = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(tgid);
    if (it != cache_.end()) {
      // Spans of different connections may arrive slightly out of time
      // order: an older now_ns is as fresh as the last check.
      if (now_ns <= it->second.checked_ns || now_ns - it->second.checked_ns < kRevalidateNs) {
        return it->second.service_name;
      }
      cached_start = it->second.start_time;
    }
  }
  // /proc is read without holding the lock.
  const uint64_t start = StartTime(tgid);
  if (start != 0 && start == cached_start) {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(tgid);
    if (it != cache_.end()) {
      it->second.checked_ns = now_ns;
      return it->second.service_name;
    }
  }
  std::string name = start != 0 ? Resolve(tgid, kernel_comm) : ServiceNameFromComm(kernel_comm);
  absl::MutexLock l(&mu_);
  if (cache_.size() >= max_entries_ && !cache_.contains(tgid)) {
    cache_.clear();  // bounded; live processes refill it from /proc once each
  }
  cache_[tgid] = Entry{start, now_ns, name};
  return name;
}

size_t ProcessResolver::cached() const {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

}  // namespace redmap
