#include "queuectl/clock.hpp"

#include <fmt/format.h>

#include <time.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>

namespace queuectl {

Micros now_micros() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

Micros monotonic_micros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Micros>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

namespace {

namespace chr = std::chrono;

// Days since 1970-01-01 of a proleptic Gregorian date; nullopt for a date that does not
// exist (2027-02-29 is no day, not 2027-03-01).
std::optional<std::int64_t> days_of(int y, int m, int d) {
  const chr::year_month_day ymd{chr::year(y), chr::month(static_cast<unsigned>(m)), chr::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  return chr::sys_days(ymd).time_since_epoch().count();
}

bool take_digits(std::string_view& s, size_t n, int& out) {
  if (s.size() < n) {
    return false;
  }
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  s.remove_prefix(n);
  return true;
}

bool take_char(std::string_view& s, char c) {
  if (s.empty() || s[0] != c) {
    return false;
  }
  s.remove_prefix(1);
  return true;
}

} // namespace

std::string format_time(Micros t) {
  std::int64_t secs = t / 1'000'000;
  std::int64_t frac = t % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  const chr::year_month_day ymd{chr::sys_days(chr::days(days))};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), rem / 3600, rem / 60 % 60,
                     rem % 60, frac);
}

std::optional<Micros> parse_time(std::string_view s) {
  int year = 0;
  int mon = 0;
  int day = 0;
  int hh = 0;
  int mm = 0;
  int ss = 0;
  if (!take_digits(s, 4, year) || !take_char(s, '-') || !take_digits(s, 2, mon) || !take_char(s, '-') ||
      !take_digits(s, 2, day)) {
    return std::nullopt;
  }
  if (!take_char(s, 'T') && !take_char(s, 't') && !take_char(s, ' ')) {
    return std::nullopt;
  }
  if (!take_digits(s, 2, hh) || !take_char(s, ':') || !take_digits(s, 2, mm) || !take_char(s, ':') ||
      !take_digits(s, 2, ss)) {
    return std::nullopt;
  }
  const auto days = days_of(year, mon, day);
  if (!days || hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  Micros frac = 0;
  if (take_char(s, '.')) {
    int digits = 0;
    Micros scale = 100000;
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) {
      if (digits < 6) {
        frac += (s[0] - '0') * scale;
        scale /= 10;
      }
      ++digits;
      s.remove_prefix(1);
    }
    if (digits == 0) {
      return std::nullopt;
    }
  }
  int offset_min = 0;
  if (take_char(s, 'Z') || take_char(s, 'z')) {
    // UTC
  } else if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    const int sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
    int oh = 0;
    int om = 0;
    if (!take_digits(s, 2, oh) || !take_char(s, ':') || !take_digits(s, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (!s.empty()) {
    return std::nullopt;
  }
  const std::int64_t secs =
      *days * 86400 + hh * 3600 + mm * 60 + std::min(ss, 59) - static_cast<std::int64_t>(offset_min) * 60;
  return secs * 1'000'000 + frac;
}

Micros later_by(Micros t, double seconds) {
  const Micros d = seconds_to_micros(seconds);
  return t >= k_latest_time || d >= k_latest_time - t ? k_latest_time : t + d;
}

Micros seconds_to_micros(double seconds) {
  const double us = std::round(seconds * 1e6);
  if (us >= static_cast<double>(std::numeric_limits<Micros>::max())) {
    return std::numeric_limits<Micros>::max();
  }
  if (us <= static_cast<double>(std::numeric_limits<Micros>::min())) {
    return std::numeric_limits<Micros>::min();
  }
  return static_cast<Micros>(us);
}

std::optional<double> parse_duration(std::string_view s) {
  if (s.empty()) {
    return std::nullopt;
  }
  static constexpr std::pair<char, double> k_units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
  double total = 0;
  std::size_t next_unit = 0; // units go from the largest down, each once: "2h30m", not "30m2h"
  while (!s.empty()) {
    std::size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) {
      ++n;
    }
    if (n == 0 || s.substr(0, n).find('.') != s.substr(0, n).rfind('.') || s[0] == '.' || s[n - 1] == '.') {
      return std::nullopt;
    }
    const double v = std::strtod(std::string(s.substr(0, n)).c_str(), nullptr);
    s.remove_prefix(n);
    if (s.empty()) {
      if (next_unit != 0) {
        return std::nullopt; // "2h30": 30 what?
      }
      total = v; // a bare number is seconds
      break;
    }
    std::size_t u = next_unit;
    while (u < std::size(k_units) && k_units[u].first != s[0]) {
      ++u;
    }
    if (u == std::size(k_units)) {
      return std::nullopt;
    }
    total += v * k_units[u].second;
    next_unit = u + 1;
    s.remove_prefix(1);
  }
  return std::isfinite(total) ? std::optional<double>(total) : std::nullopt;
}

namespace {

// Local time `days` (since the epoch, local calendar) at hh:mm:ss, as UTC; mktime(3)
// knows the zone's offset and its daylight saving time on that day.
std::optional<Micros> local_to_utc(std::int64_t days, int hh, int mm, int ss) {
  const chr::year_month_day ymd{chr::sys_days(chr::days(days))};
  std::tm tm{};
  tm.tm_year = static_cast<int>(ymd.year()) - 1900;
  tm.tm_mon = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
  tm.tm_mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  tm.tm_isdst = -1;
  const time_t t = ::mktime(&tm);
  if (t == static_cast<time_t>(-1) || tm.tm_hour != hh || tm.tm_min != mm) {
    return std::nullopt; // a time the clocks skip (the hour daylight saving time begins)
  }
  return static_cast<Micros>(t) * 1'000'000;
}

// Today's date in the local zone, as days since the epoch.
std::int64_t local_today(Micros now) {
  const time_t t = static_cast<time_t>(now / 1'000'000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  return *days_of(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

// "HH:MM" or "HH:MM:SS", the whole of `s`.
bool take_clock(std::string_view s, int& hh, int& mm, int& ss) {
  ss = 0;
  if (!take_digits(s, 2, hh) && !take_digits(s, 1, hh)) {
    return false;
  }
  if (!take_char(s, ':') || !take_digits(s, 2, mm)) {
    return false;
  }
  if (take_char(s, ':') && !take_digits(s, 2, ss)) {
    return false;
  }
  return s.empty() && hh <= 23 && mm <= 59 && ss <= 59;
}

} // namespace

std::optional<Micros> parse_user_time(std::string_view s, Micros now) {
  if (const auto t = parse_time(s)) {
    return t;
  }
  int hh = 0;
  int mm = 0;
  int ss = 0;
  const std::int64_t today = local_today(now);
  if (take_clock(s, hh, mm, ss)) { // the next such time: today, or tomorrow once it has passed
    const auto t = local_to_utc(today, hh, mm, ss);
    return t && *t <= now ? local_to_utc(today + 1, hh, mm, ss) : t;
  }
  for (const auto& [word, day] :
       {std::pair<std::string_view, std::int64_t>{"today ", today}, {"tomorrow ", today + 1}}) {
    if (s.substr(0, word.size()) == word) {
      return take_clock(s.substr(word.size()), hh, mm, ss) ? local_to_utc(day, hh, mm, ss) : std::nullopt;
    }
  }
  // "2026-12-01", "2026-12-01 03:00", "2026-12-01T03:00:00": a local date and time.
  int year = 0;
  int mon = 0;
  int day = 0;
  if (!take_digits(s, 4, year) || !take_char(s, '-') || !take_digits(s, 2, mon) || !take_char(s, '-') ||
      !take_digits(s, 2, day)) {
    return std::nullopt;
  }
  const auto days = days_of(year, mon, day);
  if (!days) {
    return std::nullopt;
  }
  if (s.empty()) {
    return local_to_utc(*days, 0, 0, 0);
  }
  if (!take_char(s, ' ') && !take_char(s, 'T')) {
    return std::nullopt;
  }
  return take_clock(s, hh, mm, ss) ? local_to_utc(*days, hh, mm, ss) : std::nullopt;
}

std::string relative_time(Micros t, Micros now) {
  const double d = static_cast<double>(t - now) / 1e6;
  const double a = std::fabs(d);
  if (a < 1) {
    return "now";
  }
  std::string span;
  if (a < 60) {
    span = fmt::format("{}s", static_cast<long>(a));
  } else if (a < 3600) {
    span = fmt::format("{}m", static_cast<long>(a / 60));
  } else if (a < 86400) {
    const long h = static_cast<long>(a / 3600);
    const long m = static_cast<long>(a / 60) % 60;
    span = m == 0 || h >= 10 ? fmt::format("{}h", h) : fmt::format("{}h{}m", h, m);
  } else if (a < 86400 * 60) {
    span = fmt::format("{}d", static_cast<long>(a / 86400));
  } else {
    return format_time(t).substr(0, 10); // a date says more than "400d"
  }
  return d > 0 ? "in " + span : span + " ago";
}

} // namespace queuectl
