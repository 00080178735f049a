// A stand-in for the exporter's userspace side, for tests/bench/ab.sh: wakes
// every PERIOD_US microseconds (absolute deadlines, as the exporter's paced
// rounds do) and burns BURST_US microseconds of its own CPU time, then
// sleeps again. It touches almost no memory, so what it costs the workload
// beside it is the scheduling alone: the CPU it takes, plus whatever the
// workload loses while displaced. That tells how many microseconds of
// throughput one microsecond of the exporter's CPU is worth on a given
// machine and workload (docs/overhead.md).
//
//   cpu_burst PERIOD_US BURST_US [THREADS]
//
// THREADS > 1 splits each burst over that many threads, thread i pinned to
// CPU i, all waking at the same deadlines: both halves of a ping-pong
// workload are displaced at once instead of one after the other.
// At SIGTERM/SIGINT prints the CPU it used, as a share of one CPU.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

int64_t Now(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

struct Plan {
  int64_t period_ns = 0;
  int64_t burst_ns = 0;  // per thread
  int64_t first_deadline_ns = 0;
  int threads = 1;
};

void* Run(void* arg) {
  const auto* plan = static_cast<const Plan*>(arg);
  static std::atomic_int next_cpu{0};
  const int cpu = next_cpu.fetch_add(1);
  if (plan->threads > 1) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      std::fprintf(stderr, "cpu_burst: cannot pin a thread to CPU %d\n", cpu);
      std::exit(1);
    }
  }
  int64_t deadline = plan->first_deadline_ns;
  while (true) {
    deadline += plan->period_ns;
    const timespec ts{static_cast<time_t>(deadline / 1'000'000'000),
                      static_cast<long>(deadline % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    const int64_t until = Now(CLOCK_THREAD_CPUTIME_ID) + plan->burst_ns;
    while (Now(CLOCK_THREAD_CPUTIME_ID) < until) {
      for (int i = 0; i < 64; ++i) __builtin_ia32_pause();
    }
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
  int64_t period_us = 0, burst_us = 0, threads = 1;
  if (argc < 3 || argc > 4 || !ParsePositive(argv[1], &period_us) ||
      !ParsePositive(argv[2], &burst_us) || (argc == 4 && !ParsePositive(argv[3], &threads)) ||
      threads > 64) {
    std::fprintf(stderr, "usage: cpu_burst PERIOD_US BURST_US [THREADS]\n");
    return 2;
  }
  plan.period_ns = period_us * 1000;
  plan.threads = static_cast<int>(threads);
  plan.burst_ns = burst_us * 1000 / plan.threads;
  // Deadlines on whole periods, so that the threads wake together.
  plan.first_deadline_ns = Now(CLOCK_MONOTONIC) / plan.period_ns * plan.period_ns;

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // inherited: only main takes them
  const int64_t start_ns = Now(CLOCK_MONOTONIC);
  std::vector<pthread_t> workers(plan.threads);
  for (pthread_t& t : workers) {
    if (pthread_create(&t, nullptr, Run, &plan) != 0) {
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
