#include "queuectl/catalog.hpp"
#include "queuectl/clock.hpp"
#include "queuectl/enqueue.hpp"
#include "queuectl/spool.hpp"
#include "support/spool_util.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

using namespace queuectl;
using namespace queuectl::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> ids(const std::vector<StoredJob>& jobs) {
  std::vector<std::string> v;
  for (const StoredJob& sj : jobs) {
    v.push_back(fmt::format("{}:{}", state_name(sj.state), sj.job.id()));
  }
  return v;
}

std::vector<std::string> slice(const std::vector<std::string>& v, std::size_t offset, std::size_t limit) {
  const std::size_t b = std::min(offset, v.size());
  const std::size_t e = std::min(v.size(), b + std::min(limit, v.size()));
  return {v.begin() + static_cast<long>(b), v.begin() + static_cast<long>(e)};
}

// Every page the catalog gives is the same slice of what Spool::list gives, or of its
// reverse for the newest first.
void check_pages(const Spool& s, Catalog& c) {
  const auto all = ids(s.list_all());
  const auto pending = ids(s.list(JobState::pending));
  const std::vector<std::string> all_newest(all.rbegin(), all.rend());
  const std::vector<std::string> pending_newest(pending.rbegin(), pending.rend());
  for (std::size_t offset : {0UL, 1UL, 50UL, 2999UL, 3000UL, 5000UL}) {
    for (std::size_t limit : {0UL, 1UL, 50UL, 10'000UL, SIZE_MAX}) {
      INFO(offset << " " << limit);
      REQUIRE(ids(c.page(std::nullopt, offset, limit)) == slice(all, offset, limit));
      REQUIRE(ids(c.page(JobState::pending, offset, limit)) == slice(pending, offset, limit));
      REQUIRE(ids(c.page(std::nullopt, offset, limit, true)) == slice(all_newest, offset, limit));
      REQUIRE(ids(c.page(JobState::pending, offset, limit, true)) == slice(pending_newest, offset, limit));
    }
  }
}

} // namespace

TEST_CASE("catalog: pages as list gives them, kept current as jobs come, move and go", "[catalog]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  write_scrambled_jobs(dir.path() / "pending", 3000);
  std::ofstream(dir.path() / "done" / "d1.json") << R"({"id":"d1","command":"x","created_at":"2000-01-01T00:00:00Z"})";
  std::ofstream(dir.path() / "pending" / "broken.json") << "{not json"; // listed as invalid, as list shows it
  Catalog c(s);
  check_pages(s, c);
  CHECK(c.known(JobState::pending) == 3001);

  // Jobs leave, arrive and move to another state between two pages.
  fs::remove(dir.path() / "pending" / "j5.json");
  fs::rename(dir.path() / "pending" / "j6.json", dir.path() / "dead" / "j6.json");
  std::ofstream(dir.path() / "pending" / "new.json")
      << R"({"id":"new","command":"x","created_at":"1999-01-01T00:00:00Z"})";
  check_pages(s, c);
  CHECK(c.known(JobState::pending) == 3000);
  // An invalid file has no created_at: it sorts first.
  CHECK(ids(c.page(std::nullopt, 0, 3)) == std::vector<std::string>{"pending:broken", "pending:new", "completed:d1"});
  CHECK(ids(c.page(JobState::dead, 0, 10)) == std::vector<std::string>{"dead:j6"});
}
