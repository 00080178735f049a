// redmap_exporter: eBPF RED metrics for unmodified programs.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "aggregators/metadata/target_info.h"
#include "exporter/config.h"
#include "exporter/exporter.h"
#include "exporter/flags.h"
#include "exporter/listen_address.h"
#include "exporter/replay.h"

namespace {

// The one piece of global state: async-signal-safe stop request.
std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

int Fail(const std::string& message) {
  fprintf(stderr, "redmap: %s\n", message.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  // Debian's abseil is built with Mutex deadlock detection on; its lock-graph
  // bookkeeping showed up as ~5% of the exporter's CPU under load.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto flags = redmap::ParseFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) {
    fprintf(stderr, "redmap: %s\n\n%s", std::string(flags.status().message()).c_str(),
            redmap::Usage().c_str());
    return 2;
  }
  if (flags->help) {
    fputs(redmap::Usage().c_str(), stdout);
    return 0;
  }
  if (flags->version) {
    printf("redmap_exporter %s\n", redmap::kRedmapVersion);
    return 0;
  }

  redmap::Config config;
  if (!flags->config_file.empty()) {
    auto loaded = redmap::Config::FromFile(flags->config_file);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    config = *loaded;
  }
  if (flags->listen_address) {
    auto parsed = redmap::ParseListenAddress(*flags->listen_address);
    if (!parsed.ok()) {
      return Fail("--web.listen-address=" + *flags->listen_address + ": " +
                  std::string(parsed.status().message()));
    }
    config.web.listen_address = *flags->listen_address;
  }
  if (flags->debug_listen_address) {
    auto parsed = redmap::ParseListenAddress(*flags->debug_listen_address);
    if (!parsed.ok()) {
      return Fail("--debug.listen-address=" + *flags->debug_listen_address + ": " +
                  std::string(parsed.status().message()));
    }
    config.debug.listen_address = *flags->debug_listen_address;
  }

  if (!flags->replay.empty()) {
    absl::Status s = redmap::RunReplay(config, flags->replay, flags->replay_spans, std::cout);
    std::cout.flush();
    return s.ok() ? 0 : Fail(std::string(s.message()));
  }

  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  // A second Ctrl-C kills at once should a clean shutdown hang.
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto exporter = redmap::Exporter::Create(config);
  if (!exporter.ok()) return Fail(std::string(exporter.status().message()));
  fprintf(stderr, "redmap: listening on http://%s/metrics\n", (*exporter)->address().c_str());
  if (!(*exporter)->debug_address().empty()) {
    fprintf(stderr, "redmap: sampled traces on http://%s/\n", (*exporter)->debug_address().c_str());
  }
  absl::Status s = (*exporter)->Run(g_stop);
  exporter->reset();  // detach probes, stop the server
  if (!s.ok()) return Fail(std::string(s.message()));
  fprintf(stderr, "redmap: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    // Last resort: our code returns Status; this is a library's exception.
    fprintf(stderr, "redmap: fatal: %s\n", e.what());
    return 1;
  } catch (...) {
    fprintf(stderr, "redmap: fatal: unknown exception\n");
    return 1;
  }
}
