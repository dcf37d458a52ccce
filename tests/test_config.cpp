#include "queuectl/config.hpp"
#include "queuectl/error.hpp"

#include <catch2/catch.hpp>

using namespace queuectl;

TEST_CASE("config: defaults", "[config]") {
  const Config c = Config::parse("", "config.json");
  CHECK(format_value(c.get("max-retries")) == "3");
  CHECK(format_value(c.get("backoff-base")) == "2");
  CHECK(format_value(c.get("backoff-max")) == "3600");
  CHECK(format_value(c.get("timeout")) == "0");
  CHECK(format_value(c.get("priority")) == "0");
  CHECK(c.list().size() == 5);
}

TEST_CASE("config: set, get, unset, both spellings", "[config]") {
  Config c;
  c.set("max_retries", "5");
  CHECK(format_value(c.get("max-retries")) == "5");
  c.set("backoff-base", "1.5");
  CHECK(format_value(c.get("backoff_base")) == "1.5");
  c.set("priority", "-3");
  CHECK(c.job_defaults().priority == -3);
  CHECK(c.unset("max-retries"));
  CHECK_FALSE(c.unset("max-retries"));
  CHECK(format_value(c.get("max-retries")) == "3");
  SECTION("survives a round trip through its file") {
    const Config d = Config::parse(c.dump(), "config.json");
    CHECK(d.backoff_base() == 1.5);
    CHECK(d.job_defaults().priority == -3);
  }
}

TEST_CASE("config: bad keys and values are usage errors", "[config]") {
  Config c;
  const auto usage = [&](const char* k, const char* v) {
    try {
      c.set(k, v);
    } catch (const Error& e) {
      return e.code() == Exit::usage;
    }
    return false;
  };
  CHECK(usage("colour", "1"));
  CHECK(usage("max-retries", "-1"));
  CHECK(usage("max-retries", "1.5"));
  CHECK(usage("max-retries", "three"));
  CHECK(usage("max-retries", ""));
  CHECK(usage("backoff-base", "0.5"));
  CHECK(usage("backoff-max", "-1"));
  CHECK(usage("timeout", "nan"));
  CHECK(usage("timeout", "inf"));
  CHECK(usage("priority", "1e3"));
  CHECK(usage("priority", " 1"));
  CHECK(c.dump() == Config().dump()); // nothing stored by the failures
}

TEST_CASE("config: a broken file is an error, not defaults", "[config]") {
  CHECK_THROWS_AS(Config::parse("{oops", "config.json"), Error);
  CHECK_THROWS_AS(Config::parse("[]", "config.json"), Error);
}

TEST_CASE("config: queue settings are kept under \"queues\"; defaults remove the entry", "[config]") {
  Config c;
  CHECK(c.queues().empty());
  c.set_queue("builds", QueueSettings{4, false});
  c.set_queue("deploy", QueueSettings{std::nullopt, true});
  Config back = Config::parse(c.dump(), "config.json");
  CHECK(back.queue("builds").concurrency == 4);
  CHECK_FALSE(back.queue("builds").paused);
  CHECK(back.queue("deploy").paused);
  CHECK(back.queue("other") == QueueSettings{});
  back.set_queue("builds", QueueSettings{});
  back.set_queue("deploy", QueueSettings{});
  CHECK(back.dump().find("queues") == std::string::npos);
  // What is not a setting is ignored, never an error: a worker goes on.
  const Config odd = Config::parse(R"({"queues":{"a b":{"paused":true},"x":{"concurrency":0},"y":5}})", "c");
  CHECK(odd.queues().count("a b") == 0);
  CHECK_FALSE(odd.queue("x").concurrency);
}
