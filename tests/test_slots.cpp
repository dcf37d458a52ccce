#include "queuectl/slots.hpp"
#include "queuectl/spool.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace queuectl;

TEST_CASE("slots: at most `limit` taken; a slot is free again once its descriptor is closed", "[slots]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  QueueSlots a(s);
  QueueSlots b(s); // another worker
  Fd one = a.try_take("q", 2);
  Fd two = b.try_take("q", 2);
  REQUIRE(one);
  REQUIRE(two);
  CHECK_FALSE(a.try_take("q", 2));
  CHECK_FALSE(b.try_take("q", 2));
  CHECK(a.try_take("other", 1)); // queues do not share slots
  // A raised limit gives a slot at once; the closed one is free for anyone.
  CHECK(a.try_take("q", 3));
  one.reset();
  CHECK(b.try_take("q", 2));
}

TEST_CASE("slots: the last close of a taken slot is an inotify event; a failed try is none", "[slots]") {
  TempDir dir;
  Spool s = Spool::open(dir.path());
  QueueSlots a(s);
  QueueSlots waiter(s);
  sys::Inotify w = sys::Inotify::try_open();
  REQUIRE(w);
  w.add(a.path(), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
  const auto events = [&] {
    int n = 0;
    w.drain([&](int, std::uint32_t, std::string_view) { ++n; });
    return n;
  };
  Fd held = a.try_take("q", 1);
  REQUIRE(held);
  events();
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(waiter.try_take("q", 1));
  }
  CHECK(events() == 0); // the waiter's tries close nothing: no worker wakes another in turn
  // A child keeps the slot after the taker lets go; its exit is the release, and the event.
  const pid_t child = ::fork();
  if (child == 0) {
    ::usleep(200'000);
    ::_exit(0);
  }
  held.reset();
  CHECK_FALSE(waiter.try_take("q", 1));
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(events() >= 1);
  CHECK(waiter.try_take("q", 1));
}
