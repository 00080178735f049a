// A stand-in for the exporter's userspace side, for tests/bench/ab.sh: wakes
// every PERIOD_US microseconds (absolute deadlines, as the exporter's paced
// rounds do) and burns BURST_US microseconds of its own CPU time, then
// sleeps again. It touches almost no memory, so what it costs the workload
// beside it is the scheduling alone: the CPU it takes, plus whatever the
// workload loses while displaced. That tells how many microseconds of
// throughput one microsecond of the exporter's CPU is worth on a given
// machine and workload (docs/overhead.md).
//
//   cpu_burst [--futex] [--unpinned] PERIOD_US BURST_US[,BURST_US...] [THREADS]
//
// THREADS > 1 splits each burst evenly over that many threads; a list of
// bursts gives one thread each (unevenly split work, e.g. a pipeline's
// stages). Thread i is pinned to CPU i, and all wake at the same deadlines:
// both halves of a ping-pong workload are displaced at once instead of one
// after the other. --unpinned leaves placement to the scheduler; --futex
// wakes only the first thread on the timer, and it wakes the others with a
// futex before its own burst, as a worker pool handed a round would be.
// At SIGTERM/SIGINT prints the CPU it used, as a share of one CPU.
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int64_t Now(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

struct Plan {
  int64_t period_ns = 0;
  std::vector<int64_t> burst_ns;  // one per thread
  int64_t first_deadline_ns = 0;
  bool pinned = true;
  bool futex = false;
};

// Rounds the first thread has started (--futex): the others wait on it.
std::atomic<int> round_started{0};

void Burn(int64_t ns) {
  const int64_t until = Now(CLOCK_THREAD_CPUTIME_ID) + ns;
  while (Now(CLOCK_THREAD_CPUTIME_ID) < until) {
    for (int i = 0; i < 64; ++i) __builtin_ia32_pause();
  }
}

struct Worker {
  const Plan* plan;
  int index;
};

void* Run(void* arg) {
  const auto* w = static_cast<const Worker*>(arg);
  const Plan& plan = *w->plan;
  const int64_t burst_ns = plan.burst_ns[w->index];
  if (plan.pinned && plan.burst_ns.size() > 1) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->index, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      std::fprintf(stderr, "cpu_burst: cannot pin a thread to CPU %d\n", w->index);
      std::exit(1);
    }
  }
  if (plan.futex && w->index > 0) {
    int seen = 0;
    while (true) {
      int now;
      while ((now = round_started.load()) == seen) {
        syscall(SYS_futex, &round_started, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
      }
      seen = now;
      Burn(burst_ns);
    }
  }
  int64_t deadline = plan.first_deadline_ns;
  while (true) {
    deadline += plan.period_ns;
    const timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                      static_cast<long>(deadline % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    if (plan.futex && plan.burst_ns.size() > 1) {
      round_started.fetch_add(1);
      syscall(SYS_futex, &round_started, FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
    }
    Burn(burst_ns);
  }
  return nullptr;
}

bool ParsePositive(const char* s, int64_t* out) {
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Plan plan;
  std::vector<const char*> args;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--futex") == 0) {
      plan.futex = true;
    } else if (std::strcmp(argv[i], "--unpinned") == 0) {
      plan.pinned = false;
    } else {
      args.push_back(argv[i]);
    }
  }
  int64_t period_us = 0, threads = 1;
  std::vector<int64_t> bursts_us;
  bool ok = (args.size() == 2 || args.size() == 3) && ParsePositive(args[0], &period_us);
  if (ok) {
    std::string list = args[1];
    size_t start = 0;
    while (ok) {
      const size_t comma = list.find(',', start);
      int64_t us = 0;
      ok = ParsePositive(list.substr(start, comma - start).c_str(), &us);
      bursts_us.push_back(us);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (ok && args.size() == 3) ok = bursts_us.size() == 1 && ParsePositive(args[2], &threads);
  if (!ok || threads > 64 || bursts_us.size() > 64) {
    std::fprintf(stderr,
                 "usage: cpu_burst [--futex] [--unpinned] PERIOD_US BURST_US[,BURST_US...] "
                 "[THREADS]\n");
    return 2;
  }
  plan.period_ns = period_us * 1000;
  if (bursts_us.size() == 1) {
    plan.burst_ns.assign(static_cast<size_t>(threads), bursts_us[0] * 1000 / threads);
  } else {
    for (int64_t us : bursts_us) plan.burst_ns.push_back(us * 1000);
  }
  // Deadlines on whole periods, so that the threads wake together.
  plan.first_deadline_ns = Now(CLOCK_MONOTONIC) / plan.period_ns * plan.period_ns;

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // inherited: only main takes them
  const int64_t start_ns = Now(CLOCK_MONOTONIC);
  std::vector<Worker> workers;
  for (size_t i = 0; i < plan.burst_ns.size(); ++i) workers.push_back({&plan, static_cast<int>(i)});
  for (Worker& w : workers) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Run, &w) != 0) {
      std::fprintf(stderr, "cpu_burst: cannot start a thread\n");
      return 1;
    }
  }
  int sig = 0;
  sigwait(&stop, &sig);
  const double wall = static_cast<double>(Now(CLOCK_MONOTONIC) - start_ns);
  std::printf("cpu_burst: used %.1f%% of one CPU over %.1f s\n",
              100.0 * static_cast<double>(Now(CLOCK_PROCESS_CPUTIME_ID)) / wall, wall / 1e9);
  return 0;
}
