#include "queuectl/job.hpp"
#include "queuectl/json_text.hpp"

#include <catch2/catch.hpp>

using namespace queuectl;

namespace {

std::string nested(std::size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

std::string why_of(std::string_view text) {
  std::string why;
  CHECK_FALSE(parse_json_text(text, why));
  return why;
}

} // namespace

TEST_CASE("parse_json_text: at most 64 levels, refused before any recursion", "[json_text]") {
  std::string why;
  CHECK(parse_json_text(nested(64), why));
  CHECK_THAT(why_of(nested(65)), Catch::Contains("nested deeper than 64 levels"));
  // A million levels: measured in one pass, nothing recurses (this would overflow the
  // stack of anything that copied or dumped the value).
  CHECK_THAT(why_of(nested(1'000'000)), Catch::Contains("nested deeper"));
  // Brackets inside strings are text, not nesting.
  CHECK(parse_json_text(R"({"a":")" + std::string(100, '[') + R"("})", why));
  CHECK(parse_json_text(R"({"a":"\"[[["})", why));
}

TEST_CASE("parse_json_text: nothing but whitespace after the value", "[json_text]") {
  std::string why;
  CHECK(parse_json_text(" {\"a\":1}\n\t ", why));
  CHECK_THAT(why_of(std::string("{\"a\":1}\0", 8)), Catch::Contains("NUL byte at offset 7"));
  CHECK_THAT(why_of(std::string("{\"a\":1}\0\0garbage", 16)), Catch::Contains("NUL"));
  CHECK_THAT(why_of("{\"a\":1} x"), Catch::Contains("invalid JSON"));
  CHECK_THAT(why_of("{\"a\":1e400}"), Catch::Contains("number overflow"));
}

TEST_CASE("salvage_members: what parses of an object is kept, in order", "[json_text]") {
  CHECK(salvage_members(R"({"command":"true","priority":1e400,"x":{"y":[1,2]}})") ==
        Json::parse(R"({"command":"true","x":{"y":[1,2]}})"));
  CHECK(salvage_members(R"({"a":1,"b":"cut short)") == Json::parse(R"({"a":1})"));
  CHECK(salvage_members(R"({"a":"x,y}","b":2})") == Json::parse(R"({"a":"x,y}","b":2})"));
  CHECK(salvage_members(R"({"a":1,"deep":)" + nested(64) + "}") == Json::parse(R"({"a":1})"));
  CHECK(salvage_members(R"({"a":1,"ok":)" + nested(63) + "}").contains("ok"));
  CHECK(salvage_members("[1,2]") == Json::object());
  CHECK(salvage_members("not json") == Json::object());
}

TEST_CASE("Job::try_parse and read_from: a drop-in's id is its file's name", "[job]") {
  std::string why;
  auto job = Job::try_parse(R"({"command":"true"})", why);
  REQUIRE(job);
  job->read_from(JobState::pending, "early");
  CHECK(job->id() == "early");
  CHECK(job->json()["state"] == "pending");
  CHECK_FALSE(Job::try_parse("[1]", why));
  CHECK(why == "a job must be a JSON object, not array");
}
