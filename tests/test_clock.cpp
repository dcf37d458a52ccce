#include "queuectl/clock.hpp"

#include <catch2/catch.hpp>

using namespace queuectl;

TEST_CASE("format_time: UTC with six fraction digits", "[clock]") {
  CHECK(format_time(0) == "1970-01-01T00:00:00.000000Z");
  CHECK(format_time(1'795'410'000'123'456) == "2026-11-23T05:00:00.123456Z");
}

TEST_CASE("parse_time: RFC 3339 forms", "[clock]") {
  CHECK(parse_time("2026-11-23T05:00:00Z") == 1'795'410'000'000'000);
  CHECK(parse_time("2026-11-23T05:00:00.123456Z") == 1'795'410'000'123'456);
  CHECK(parse_time("2026-11-23T05:00:00.5Z") == 1'795'410'000'500'000);
  CHECK(parse_time("2026-11-23 06:00:00+01:00") == 1'795'410'000'000'000);
  CHECK(parse_time("2026-11-23T04:30:00-00:30") == 1'795'410'000'000'000);
  SECTION("round trip") {
    const Micros t = now_micros();
    CHECK(parse_time(format_time(t)) == t);
  }
}

TEST_CASE("later_by: saturates at the latest writable time", "[clock]") {
  CHECK(later_by(1'000'000, 2.5) == 3'500'000);
  CHECK(later_by(now_micros(), 1e300) == k_latest_time);
  CHECK(later_by(k_latest_time - 1, 1) == k_latest_time);
  CHECK(format_time(k_latest_time) == "9999-12-31T23:59:59.999999Z");
  CHECK(parse_time(format_time(k_latest_time)) == k_latest_time);
}

TEST_CASE("parse_time: rejects what is not a time", "[clock]") {
  for (const char* bad :
       {"", "tomorrow", "2026-11-23", "2026-11-23T05:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-11-23T25:00:00Z", "2026-11-23T05:00:00.Z", "2026-11-23T05:00:00Zjunk", "2026-11-23T05:00:00+1:00"}) {
    INFO(bad);
    CHECK_FALSE(parse_time(bad).has_value());
  }
}
