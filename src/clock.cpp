#include "queuectl/clock.hpp"

#include <fmt/format.h>

#include <time.h>

#include <cctype>
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

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
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
  std::int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", y, m, d, rem / 3600, rem / 60 % 60, rem % 60, frac);
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
  if (mon < 1 || mon > 12 || day < 1 || hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  static constexpr int k_days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > k_days_in_month[mon - 1] + (mon == 2 && leap ? 1 : 0)) {
    return std::nullopt; // 2027-02-29 is no day, not 2027-03-01
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
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(mon), static_cast<unsigned>(day));
  const std::int64_t secs =
      days * 86400 + hh * 3600 + mm * 60 + std::min(ss, 59) - static_cast<std::int64_t>(offset_min) * 60;
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

} // namespace queuectl
