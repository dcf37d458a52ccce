#include "queuectl/error.hpp"
#include "queuectl/parallel.hpp"
#include "queuectl/sys.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <vector>

using namespace queuectl;

namespace {

Fd write_file(const TempDir& t, const std::string& name, const std::string& data) {
  const sys::Dir dir = sys::Dir::open(t.path().string());
  (void)dir.create(name, data, false, 0600);
  struct stat st {};
  Fd fd = dir.open_regular(name, O_RDONLY, &st);
  REQUIRE(static_cast<std::size_t>(st.st_size) == data.size());
  return fd;
}

} // namespace

TEST_CASE("read_regular: the whole file whatever the size hint says", "[sys]") {
  TempDir t;
  const std::string data(5000, 'x');
  SECTION("the size fstat gave") {
    CHECK(sys::read_regular(write_file(t, "a", data).get(), 5000, "a") == data);
  }
  SECTION("a file that grew since: hint too small") {
    CHECK(sys::read_regular(write_file(t, "a", data).get(), 10, "a") == data);
    CHECK(sys::read_regular(write_file(t, "b", data).get(), 0, "b") == data);
  }
  SECTION("a file that shrank since: hint too large") {
    CHECK(sys::read_regular(write_file(t, "a", data).get(), 1 << 20, "a") == data);
  }
  SECTION("empty") {
    CHECK(sys::read_regular(write_file(t, "a", "").get(), 0, "a").empty());
  }
}

TEST_CASE("open_regular_at: refuses symlinks and FIFOs, gives the fstat", "[sys]") {
  TempDir t;
  const sys::Dir dir = sys::Dir::open(t.path().string());
  REQUIRE(::symlink("/etc/passwd", (t.path() / "link").c_str()) == 0);
  REQUIRE(::mkfifo((t.path() / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(dir.open_regular("link"), Catch::Contains("symbolic link"));
  CHECK_THROWS_WITH(dir.open_regular("fifo"), Catch::Contains("not a regular file"));
  CHECK_FALSE(dir.open_regular("missing"));
  (void)write_file(t, "job", "{}");
  struct stat st {};
  CHECK(dir.open_regular("job", O_RDONLY, &st));
  CHECK(st.st_size == 2);
}

TEST_CASE("for_chunks: every index exactly once; the earliest chunk's error wins", "[parallel]") {
  for (const Work w : {Work::cpu, Work::io}) {
    for (const std::size_t n : {0UL, 1UL, 7UL, 100'000UL}) {
      std::vector<std::atomic<int>> seen(n);
      for_chunks(
          n,
          [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
              ++seen[i];
            }
          },
          w, 16);
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(seen[i] == 1);
      }
    }
  }
  // Chunks of 100,000 items over up to 8 threads: every chunk throws, with its start.
  const auto throwing = [](std::size_t b, std::size_t) { throw std::runtime_error(std::to_string(b)); };
  CHECK_THROWS_WITH(for_chunks(100'000, throwing, Work::io, 16), "0");
}
