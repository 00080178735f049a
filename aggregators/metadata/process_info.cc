#include "aggregators/metadata/process_info.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace redmap {
namespace {

std::string ReadFile(const std::string& path, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string out;
  out.resize(limit);
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// Label-safe: printable ASCII, bounded.
std::string Sanitize(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 128)) {
    out.push_back(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f ? c
                                                                                                : '_');
  }
  return out;
}

// service.name=x in "k=v,k2=v2".
std::string FromResourceAttributes(std::string_view attrs) {
  while (!attrs.empty()) {
    size_t comma = attrs.find(',');
    std::string_view kv = attrs.substr(0, comma);
    while (!kv.empty() && kv.front() == ' ') kv.remove_prefix(1);
    constexpr std::string_view kKey = "service.name=";
    if (kv.substr(0, kKey.size()) == kKey) return std::string(kv.substr(kKey.size()));
    if (comma == std::string_view::npos) break;
    attrs.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

ProcessResolver::ProcessResolver(std::string proc_root, size_t max_entries)
    : proc_root_(std::move(proc_root)), max_entries_(max_entries) {}

uint64_t ProcessResolver::StartTime(uint32_t tgid) const {
  // Field 22 of /proc/<pid>/stat, after the parenthesised comm (which may
  // itself contain spaces and parentheses).
  std::string stat = ReadFile(proc_root_ + "/" + std::to_string(tgid) + "/stat", 4096);
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::string ProcessResolver::Resolve(uint32_t tgid, std::string_view kernel_comm) const {
  const std::string dir = proc_root_ + "/" + std::to_string(tgid);
  std::string env = ReadFile(dir + "/environ");
  std::string from_attrs;
  for (size_t i = 0; i < env.size();) {
    size_t end = env.find('\0', i);
    if (end == std::string::npos) end = env.size();
    std::string_view kv(env.data() + i, end - i);
    constexpr std::string_view kName = "OTEL_SERVICE_NAME=";
    constexpr std::string_view kAttrs = "OTEL_RESOURCE_ATTRIBUTES=";
    if (kv.substr(0, kName.size()) == kName && kv.size() > kName.size()) {
      return Sanitize(kv.substr(kName.size()));
    }
    if (kv.substr(0, kAttrs.size()) == kAttrs) {
      from_attrs = FromResourceAttributes(kv.substr(kAttrs.size()));
    }
    i = end + 1;
  }
  if (!from_attrs.empty()) return Sanitize(from_attrs);

  std::string comm = ReadFile(dir + "/comm", 64);
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\0')) comm.pop_back();
  if (!comm.empty()) return Sanitize(comm);
  if (!kernel_comm.empty()) return Sanitize(kernel_comm);
  return kUnknownService;
}

std::string ProcessResolver::ServiceName(uint32_t tgid, uint64_t now_ns,
                                         std::string_view kernel_comm) {
  if (tgid == 0) return kUnknownService;
  uint64_t cached_start = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(tgid);
    if (it != cache_.end()) {
      if (now_ns - it->second.checked_ns < kRevalidateNs) return it->second.service_name;
      cached_start = it->second.start_time;
    }
  }
  const uint64_t start = StartTime(tgid);
  if (start != 0 && start == cached_start) {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(tgid);
    if (it != cache_.end()) {
      it->second.checked_ns = now_ns;
      return it->second.service_name;
    }
  }
  std::string name = start != 0            ? Resolve(tgid, kernel_comm)
                     : !kernel_comm.empty() ? Sanitize(kernel_comm)
                                            : std::string(kUnknownService);
  absl::MutexLock l(&mu_);
  if (cache_.size() >= max_entries_) cache_.clear();  // bounded; refills from /proc
  cache_[tgid] = Entry{start, now_ns, name};
  return name;
}

size_t ProcessResolver::cached() const {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

}  // namespace redmap
