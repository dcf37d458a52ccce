// parallel: splitting a bulk operation (thousands of jobs) over the machine's cores.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace queuectl {

// How many threads a bulk operation may use: `cpu` work gets one per core (at most 4);
// `io` work, reading files that may not be cached, gets 8 whatever the cores: most of
// its time is spent waiting for the disk, which serves several reads at once (cold,
// 200,000 job files read in 17 s by one thread, in 6.5 s by 4 to 8, on a 2-core VM).
enum class Work { cpu, io };

inline std::size_t max_threads(Work w) {
  const std::size_t hw = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  return w == Work::io ? 8 : std::min<std::size_t>(hw, 4);
}

// Calls fn(begin, end) on contiguous chunks of [0, n), one chunk per thread (at most
// max_threads(work), and one thread below `min_per_thread` items per thread), and waits
// for all. If chunks throw, rethrows the exception of the earliest chunk, so that an
// error is reported as a sequential loop would have reported it.
template <class Fn> void for_chunks(std::size_t n, Fn&& fn, Work work = Work::cpu, std::size_t min_per_thread = 1024) {
  const std::size_t threads =
      std::clamp<std::size_t>(n / std::max<std::size_t>(min_per_thread, 1), 1, max_threads(work));
  if (threads == 1) {
    fn(std::size_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  const auto run = [&](std::size_t t) {
    try {
      fn(n * t / threads, n * (t + 1) / threads);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  for (std::size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(run, t);
    } catch (const std::system_error&) {
      run(t); // no thread to be had (a process limit): this one does the chunk
    }
  }
  run(0);
  for (std::thread& th : pool) {
    th.join();
  }
  for (const std::exception_ptr& e : errors) {
    if (e) {
      std::rethrow_exception(e);
    }
  }
}

} // namespace queuectl
