#include "queuectl/error.hpp"
#include "queuectl/job.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <set>

using namespace queuectl;

namespace {
std::string usage_error_of(const std::string& text) {
  try {
    Job::parse(text);
  } catch (const Error& e) {
    CHECK(e.code() == Exit::usage);
    return e.what();
  }
  return "";
}
} // namespace

TEST_CASE("valid_id: the id syntax", "[job]") {
  CHECK(valid_id("job1"));
  CHECK(valid_id("a.b_c-D9"));
  CHECK(valid_id(std::string(128, 'x')));
  CHECK_FALSE(valid_id(""));
  CHECK_FALSE(valid_id(std::string(129, 'x')));
  CHECK_FALSE(valid_id(".hidden"));
  CHECK_FALSE(valid_id("a/b"));
  CHECK_FALSE(valid_id("a b"));
  CHECK_FALSE(valid_id("caf\xc3\xa9"));
}

TEST_CASE("generate_id: valid, unique, sorted in creation order", "[job]") {
  std::vector<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    ids.push_back(generate_id());
  }
  std::set<std::string> unique(ids.begin(), ids.end());
  CHECK(unique.size() == ids.size());
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  for (const auto& id : ids) {
    REQUIRE(valid_id(id));
  }
}

TEST_CASE("parse: errors name the problem", "[job]") {
  CHECK_THAT(usage_error_of("{"), Catch::Contains("invalid JSON"));
  CHECK_THAT(usage_error_of("[1]"), Catch::Contains("JSON object"));
  CHECK_THAT(usage_error_of("{}"), Catch::Contains("missing field 'command'"));
  CHECK_THAT(usage_error_of(R"({"command":5})"), Catch::Contains("'command'"));
  CHECK_THAT(usage_error_of(R"({"command":""})"), Catch::Contains("'command'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","id":"../x"})"), Catch::Contains("invalid id"));
  CHECK_THAT(usage_error_of(R"({"command":"x","priority":1.5})"), Catch::Contains("'priority'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","max_retries":-1})"), Catch::Contains("'max_retries'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","timeout":-1})"), Catch::Contains("'timeout'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","run_at":"soon"})"), Catch::Contains("'run_at'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","env":{"A":1}})"), Catch::Contains("'env'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","state":"weird"})"), Catch::Contains("'state'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","cwd":7})"), Catch::Contains("'cwd'"));
  // Numbers JSON allows but a job cannot hold: an integer past int64, a double past its range.
  CHECK_THAT(usage_error_of(R"({"command":"x","priority":18446744073709551615})"), Catch::Contains("64-bit"));
  CHECK(usage_error_of(R"({"command":"x","timeout":1e400})") == "invalid JSON: number overflow parsing '1e400'");
}

TEST_CASE("parse: queue, after and tags (SPEC section 7)", "[job]") {
  CHECK_THAT(usage_error_of(R"({"command":"x","queue":""})"), Catch::Contains("invalid queue"));
  CHECK_THAT(usage_error_of(R"({"command":"x","queue":"a b"})"), Catch::Contains("invalid queue"));
  CHECK_THAT(usage_error_of(R"({"command":"x","queue":7})"), Catch::Contains("'queue'"));
  CHECK_THAT(usage_error_of(fmt::format(R"({{"command":"x","queue":"{}"}})", std::string(65, 'q'))),
             Catch::Contains("invalid queue"));
  CHECK_THAT(usage_error_of(R"({"command":"x","after":"a"})"), Catch::Contains("'after'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","after":[1]})"), Catch::Contains("'after'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","after":["-x"]})"), Catch::Contains("in field 'after'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","tags":"t"})"), Catch::Contains("'tags'"));
  CHECK_THAT(usage_error_of(R"({"command":"x","tags":[""]})"), Catch::Contains("invalid tag"));
  CHECK_THAT(usage_error_of(R"({"command":"x","tags":["a\u0007"]})"), Catch::Contains("invalid tag"));
  CHECK_THAT(usage_error_of(fmt::format(R"({{"command":"x","tags":["{}"]}})", std::string(65, 't'))),
             Catch::Contains("invalid tag"));
  std::string many = R"({"command":"x","tags":[)";
  for (int i = 0; i < 33; ++i) {
    many += fmt::format("{}\"t{}\"", i ? "," : "", i);
  }
  CHECK_THAT(usage_error_of(many + "]}"), Catch::Contains("at most 32"));
  // 64 characters of two bytes each are one tag; a name of 64 is one queue.
  std::string wide;
  for (int i = 0; i < 64; ++i) {
    wide += "\u00e9";
  }
  const Job ok = Job::parse(fmt::format(R"({{"command":"x","queue":"{}","after":["a","b"],"tags":["{}","x y"]}})",
                                        std::string(64, 'q'), wide));
  REQUIRE_NOTHROW(ok.validate());
  CHECK(ok.queue() == std::string(64, 'q'));
  CHECK(ok.after() == std::vector<std::string>{"a", "b"});
  CHECK(ok.has_tag("x y"));
  CHECK_FALSE(ok.has_tag("x"));
  CHECK(Job::parse(R"({"command":"x"})").queue() == "default");
  CHECK(usage_error_of(R"({"command":"x","state":"held"})").empty());
}

TEST_CASE("max_runs: max_retries + 1, also at the largest max_retries", "[job]") {
  CHECK(Job::parse(R"({"command":"x","max_retries":0})").max_runs() == 1);
  CHECK(Job::parse(R"({"command":"x","max_retries":9223372036854775807})").max_runs() == 9223372036854775808u);
}

TEST_CASE("fill_new: defaults for what is missing, explicit fields win, unknown kept", "[job]") {
  Job j = Job::parse(R"({"command":"true","priority":7,"x-owner":{"team":"ops"}})");
  JobDefaults d;
  d.max_retries = 5;
  d.priority = 1;
  d.timeout = 2.5;
  j.fill_new(d, 1'795'410'000'000'000);
  const Json& o = j.json();
  CHECK(valid_id(j.id()));
  CHECK(o["state"] == "pending");
  CHECK(o["attempts"] == 0);
  CHECK(o["max_retries"] == 5);
  CHECK(o["priority"] == 7);
  CHECK(o["timeout"] == 2.5);
  CHECK(o["created_at"] == "2026-11-23T05:00:00.000000Z");
  CHECK(o["exit_code"].is_null());
  CHECK(o["x-owner"]["team"] == "ops");
  CHECK_NOTHROW(j.validate());
  SECTION("dump is one line of JSON that parses back to the same job") {
    const std::string text = j.dump();
    CHECK(text.back() == '\n');
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
    CHECK(Job::parse(text).json() == o);
  }
}

TEST_CASE("parse_state: names and the 'done' alias", "[job]") {
  CHECK(parse_state("done") == JobState::completed);
  CHECK(parse_state("completed") == JobState::completed);
  CHECK(parse_state("dead") == JobState::dead);
  CHECK_FALSE(parse_state("finished").has_value());
  CHECK(state_dir(JobState::completed) == "done");
}
