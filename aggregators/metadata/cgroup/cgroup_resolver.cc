#include "aggregators/metadata/cgroup/cgroup_resolver.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <vector>

#include "absl/strings/str_split.h"
#include "aggregators/common/read_file.h"
#include "aggregators/common/string_view.h"

namespace redmap {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountPath(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string FindCgroup2Mount(const std::string& mountinfo_path) {
  std::ifstream in(mountinfo_path);
  std::string line;
  while (std::getline(in, line)) {
    // "36 35 0:30 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<absl::string_view> tail = absl::StrSplit(AbslView(std::string_view(line).substr(dash + 3)), ' ');
    if (tail.empty() || tail[0] != "cgroup2") continue;
    std::vector<absl::string_view> head =
        absl::StrSplit(AbslView(std::string_view(line).substr(0, dash)), ' ');
    if (head.size() < 5) continue;
    return UnescapeMountPath(StdView(head[4]));
  }
  return {};
}

CgroupResolver::CgroupResolver(CgroupResolverOptions options) : opt_(std::move(options)) {
  root_ = opt_.cgroup_root;
  if (root_.empty()) root_ = FindCgroup2Mount();
  if (root_.empty()) root_ = "/sys/fs/cgroup";
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  opt_.max_entries = std::max<size_t>(opt_.max_entries, 1);
}

void CgroupResolver::Walk(absl::flat_hash_map<uint64_t, std::string>* found) const {
  // Iterative depth-first walk; paths relative to the root.
  struct Dir {
    std::string rel;
    int depth;
  };
  std::vector<Dir> stack;
  struct stat st;
  if (stat(root_.c_str(), &st) != 0) return;
  (*found)[st.st_ino] = "/";
  stack.push_back({"", 0});
  size_t visited = 1;
  while (!stack.empty() && visited < opt_.max_walk_entries) {
    Dir d = std::move(stack.back());
    stack.pop_back();
    const std::string abs = root_ + d.rel;
    DIR* dir = opendir(abs.c_str());
    if (dir == nullptr) continue;
    while (dirent* e = readdir(dir)) {
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      std::string rel = d.rel + "/" + std::string(name);
      // d_ino of a kernfs directory is its cgroup id; stat only when the
      // file system did not fill d_type/d_ino.
      uint64_t ino = e->d_ino;
      if (e->d_type == DT_UNKNOWN || ino == 0) {
        if (stat((root_ + rel).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        ino = st.st_ino;
      }
      (*found)[ino] = rel;
      if (++visited >= opt_.max_walk_entries) break;
      if (d.depth + 1 < opt_.max_walk_depth) stack.push_back({std::move(rel), d.depth + 1});
    }
    closedir(dir);
  }
}

void CgroupResolver::Insert(uint64_t id, Entry e) {
  if (cache_.size() >= opt_.max_entries && !cache_.contains(id)) {
    // Bounded: drop misses first, then everything (live cgroups refill from
    // the next walk).
    absl::erase_if(cache_, [](const auto& kv) { return kv.second.path.empty(); });
    if (cache_.size() >= opt_.max_entries) cache_.clear();
  }
  cache_[id] = std::move(e);
}

std::optional<std::string> CgroupResolver::PathOf(uint64_t id, uint64_t now_ns) {
  if (id == 0) return std::nullopt;
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
      if (!it->second.path.empty()) return it->second.path;
      if (now_ns >= it->second.checked_ns && now_ns - it->second.checked_ns < opt_.miss_ttl_ns) {
        return std::nullopt;
      }
    }
    if (walked_ && now_ns >= last_walk_ns_ && now_ns - last_walk_ns_ < opt_.min_walk_interval_ns) {
      Insert(id, Entry{"", now_ns});
      return std::nullopt;
    }
  }
  absl::MutexLock walk_lock(&walk_mu_);
  {
    // Another caller may have walked while we waited.
    absl::MutexLock l(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end() && !it->second.path.empty()) return it->second.path;
    if (walked_ && now_ns >= last_walk_ns_ && now_ns - last_walk_ns_ < opt_.min_walk_interval_ns) {
      Insert(id, Entry{"", now_ns});
      return std::nullopt;
    }
    last_walk_ns_ = now_ns;
    walked_ = true;
    ++walks_;
  }
  absl::flat_hash_map<uint64_t, std::string> found;
  Walk(&found);
  absl::MutexLock l(&mu_);
  std::optional<std::string> result;
  if (auto it = found.find(id); it != found.end()) {
    result = it->second;
    Insert(id, Entry{it->second, now_ns});
  } else {
    Insert(id, Entry{"", now_ns});
  }
  // Remember what the walk saw while there is room: one walk per node.
  for (auto& [ino, path] : found) {
    if (cache_.size() >= opt_.max_entries) break;
    auto [it, inserted] = cache_.try_emplace(ino, Entry{path, now_ns});
    if (!inserted && it->second.path.empty()) it->second = Entry{std::move(path), now_ns};
  }
  return result;
}

std::optional<CgroupIdentity> CgroupResolver::IdentityOf(uint64_t id, uint64_t now_ns) {
  std::optional<std::string> path = PathOf(id, now_ns);
  if (!path) return std::nullopt;
  return ParseCgroupPath(*path);
}

std::optional<CgroupIdentity> CgroupResolver::IdentityOfProcess(uint32_t tgid) const {
  if (tgid == 0) return std::nullopt;
  std::string content = ReadFileBounded(opt_.proc_root + "/" + std::to_string(tgid) + "/cgroup", 64 << 10);
  if (content.empty()) return std::nullopt;
  return ParseProcCgroup(content);
}

size_t CgroupResolver::cached() const {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

uint64_t CgroupResolver::walks() const {
  absl::MutexLock l(&mu_);
  return walks_;
}

}  // namespace redmap
