#include "queuectl/clock.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <string>

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

TEST_CASE("parse_duration: seconds, and units largest first", "[clock]") {
  CHECK(parse_duration("90") == 90);
  CHECK(parse_duration("1.5") == 1.5);
  CHECK(parse_duration("90s") == 90);
  CHECK(parse_duration("5m") == 300);
  CHECK(parse_duration("2h30m") == 9000);
  CHECK(parse_duration("1d") == 86400);
  CHECK(parse_duration("1d2h3m4s") == 93784);
  CHECK(parse_duration("0") == 0);
  for (const char* bad : {"", "-5", "5x", "m", "30m2h", "2h30", "1..5", ".5", "5.", "1e3", "5m5m", "nan"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

namespace {
// Runs `fn` with the local zone set to `tz`.
template <class Fn> void in_zone(const char* tz, Fn fn) {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  ::setenv("TZ", tz, 1);
  ::tzset();
  fn();
  old ? ::setenv("TZ", saved.c_str(), 1) : ::unsetenv("TZ");
  ::tzset();
}
} // namespace

TEST_CASE("parse_user_time: local forms, in the local zone", "[clock]") {
  const Micros now = *parse_time("2026-12-01T12:00:00Z");
  in_zone("UTC", [&] {
    CHECK(parse_user_time("2026-12-01T03:00:00Z", now) == parse_time("2026-12-01T03:00:00Z"));
    CHECK(parse_user_time("14:30", now) == parse_time("2026-12-01T14:30:00Z"));
    CHECK(parse_user_time("09:15", now) == parse_time("2026-12-02T09:15:00Z")); // passed today: tomorrow
    CHECK(parse_user_time("9:15:30", now) == parse_time("2026-12-02T09:15:30Z"));
    CHECK(parse_user_time("today 09:15", now) == parse_time("2026-12-01T09:15:00Z"));
    CHECK(parse_user_time("tomorrow 03:00", now) == parse_time("2026-12-02T03:00:00Z"));
    CHECK(parse_user_time("2026-12-24", now) == parse_time("2026-12-24T00:00:00Z"));
    CHECK(parse_user_time("2026-12-24 18:00", now) == parse_time("2026-12-24T18:00:00Z"));
    CHECK(parse_user_time("2026-12-24T18:00:05", now) == parse_time("2026-12-24T18:00:05Z"));
  });
  in_zone("Europe/Berlin", [&] { // UTC+1 in winter, +2 in summer
    CHECK(parse_user_time("2026-12-24 18:00", now) == parse_time("2026-12-24T17:00:00Z"));
    CHECK(parse_user_time("2027-07-01 18:00", now) == parse_time("2027-07-01T16:00:00Z"));
    CHECK(parse_user_time("tomorrow 00:30", now) == parse_time("2026-12-01T23:30:00Z"));
    CHECK_FALSE(parse_user_time("2027-03-28 02:30", now).has_value()); // the hour the clocks skip
    CHECK(parse_user_time("2027-03-28 03:30", now) == parse_time("2027-03-28T01:30:00Z"));
  });
  for (const char* bad : {"", "soon", "25:00", "14:60", "2027-02-29", "2027-02-29 10:00", "2026-12-01 3pm", "tomorrow",
                          "yesterday 10:00", "2026-12-01T03:00:00+5"}) {
    INFO(bad);
    CHECK_FALSE(parse_user_time(bad, now).has_value());
  }
}

TEST_CASE("relative_time: one or two units, ago or in", "[clock]") {
  const Micros now = *parse_time("2026-12-01T12:00:00Z");
  const auto at = [&](double secs) { return relative_time(now + seconds_to_micros(secs), now); };
  CHECK(at(0.2) == "now");
  CHECK(at(-45) == "45s ago");
  CHECK(at(300) == "in 5m");
  CHECK(at(-(2 * 3600 + 20 * 60)) == "2h20m ago");
  CHECK(at(3 * 3600) == "in 3h");
  CHECK(at(-3 * 86400) == "3d ago");
  CHECK(at(400 * 86400) == "2028-01-05");
}
