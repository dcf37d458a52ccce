// clock: wall-clock time as microseconds since the epoch, and its RFC 3339 form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace queuectl {

using Micros = std::int64_t; // microseconds since 1970-01-01T00:00:00Z

Micros now_micros();
// A clock that never steps (CLOCK_MONOTONIC), for intervals: microseconds since boot.
Micros monotonic_micros();

// "2026-11-23T05:00:00.123456Z": always UTC, always six fraction digits.
std::string format_time(Micros t);

// Parses RFC 3339 ("2026-11-23T05:00:00Z", "...T05:00:00.5+01:00", a space instead of
// 'T'). nullopt when the text is not such a time.
std::optional<Micros> parse_time(std::string_view text);

// A duration as people type it: "90" or "90s" (seconds, may be fractional), "5m", "2h30m",
// "1d" (units d, h, m, s, largest first). Seconds; nullopt when it is not one.
std::optional<double> parse_duration(std::string_view text);

// A time as people type it: RFC 3339 (as parse_time), or in the local zone "14:30" (the
// next 14:30: today, or tomorrow once it has passed), "today 14:30", "tomorrow 03:00",
// "2026-12-01", "2026-12-01 03:00[:00]" (or with 'T'). Dates that do not exist are refused.
std::optional<Micros> parse_user_time(std::string_view text, Micros now);

// "in 5m", "3h20m ago", "2d ago", "now"; a date beyond 60 days.
std::string relative_time(Micros t, Micros now);

// Seconds (may be fractional) to microseconds, saturating.
Micros seconds_to_micros(double seconds);

// The latest time format_time writes with a four-digit year, which parse_time reads back.
constexpr Micros k_latest_time = 253'402'300'799'999'999; // 9999-12-31T23:59:59.999999Z

// t plus seconds (>= 0), saturating at k_latest_time: a deadline or a due time that far
// off means "never" and must not overflow.
Micros later_by(Micros t, double seconds);

} // namespace queuectl
