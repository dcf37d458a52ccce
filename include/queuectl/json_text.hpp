// json_text: reading JSON text that anyone may have written, without trusting it.
//
// nlohmann's parser is iterative, but copying, dumping and comparing a value recurse, so
// a value nested a hundred thousand levels deep overflows the stack of whoever touches it
// next. Every job text is therefore measured here first, in one pass over its bytes with
// no recursion, and refused when it is nested deeper than k_max_json_depth or carries
// bytes after its value; only then is it parsed.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace queuectl {

using Json = nlohmann::ordered_json;

// The deepest nesting a job may have (SPEC section 5): `{"a":[[1]]}` is 3 levels.
inline constexpr std::size_t k_max_json_depth = 64;

// Parses `text` as one JSON value: nothing but whitespace around it (a NUL byte is not
// whitespace), nested at most k_max_json_depth levels. On failure returns nullopt and
// sets `why` to one line ("invalid JSON: ...", "JSON nested deeper than 64 levels").
std::optional<Json> parse_json_text(std::string_view text, std::string& why);

// Every member of a JSON object text whose key and value parse on their own, in order:
// what a quarantine record keeps of a file that is not a valid job (a bad number, a
// member nested too deep, a text cut short). Empty when the text does not start as an
// object. Never recurses on the input's nesting.
Json salvage_members(std::string_view text);

} // namespace queuectl
