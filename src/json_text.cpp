#include "queuectl/json_text.hpp"

#include <fmt/format.h>

namespace queuectl {

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Where a value that starts at `pos` ends: the first ',' '}' or ']' outside strings at
// the depth it started, or the end of the text. Counts the deepest nesting on the way.
std::size_t value_end(std::string_view t, std::size_t pos, std::size_t& deepest) {
  std::size_t depth = 0;
  deepest = 0;
  bool in_string = false;
  for (; pos < t.size(); ++pos) {
    const char c = t[pos];
    if (in_string) {
      if (c == '\\') {
        ++pos;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
    case '"':
      in_string = true;
      break;
    case '[':
    case '{':
      deepest = std::max(deepest, ++depth);
      break;
    case ']':
    case '}':
      if (depth == 0) {
        return pos;
      }
      --depth;
      break;
    case ',':
      if (depth == 0) {
        return pos;
      }
      break;
    default:
      break;
    }
  }
  return pos;
}

} // namespace

std::optional<Json> parse_json_text(std::string_view text, std::string& why) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\0') {
      // nlohmann takes a NUL for the end of the input and would ignore what follows.
      why = fmt::format("invalid JSON: a NUL byte at offset {}", i);
      return std::nullopt;
    }
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > k_max_json_depth) {
        why = fmt::format("JSON nested deeper than {} levels", k_max_json_depth);
        return std::nullopt;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) { // a parse_error, or out_of_range for a number like 1e400
    const std::string what = e.what();
    const auto pos = what.find("] "); // after "[json.exception.parse_error.101]"
    why = "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2));
    return std::nullopt;
  }
}

Json salvage_members(std::string_view t) {
  Json out = Json::object();
  std::size_t pos = 0;
  const auto skip_space = [&] {
    while (pos < t.size() && is_space(t[pos])) {
      ++pos;
    }
  };
  skip_space();
  if (pos >= t.size() || t[pos] != '{') {
    return out;
  }
  ++pos;
  std::string ignored;
  for (;;) {
    skip_space();
    if (pos >= t.size() || t[pos] != '"') {
      return out; // '}', the end, or text that is not a member
    }
    // The key: a string, up to its closing quote.
    std::size_t k = pos + 1;
    for (; k < t.size() && t[k] != '"'; ++k) {
      if (t[k] == '\\') {
        ++k;
      }
    }
    if (k >= t.size()) {
      return out;
    }
    const std::string_view key = t.substr(pos, k + 1 - pos);
    pos = k + 1;
    skip_space();
    if (pos >= t.size() || t[pos] != ':') {
      return out;
    }
    ++pos;
    std::size_t deepest = 0;
    const std::size_t end = value_end(t, pos, deepest);
    const std::optional<Json> name = parse_json_text(key, ignored);
    // A member's value sits one level inside the object: it may nest one level less.
    std::optional<Json> value =
        deepest < k_max_json_depth ? parse_json_text(t.substr(pos, end - pos), ignored) : std::nullopt;
    if (name && name->is_string() && value) {
      out[name->get<std::string>()] = std::move(*value);
    }
    pos = end;
    if (pos >= t.size() || t[pos] != ',') {
      return out;
    }
    ++pos;
  }
}

} // namespace queuectl
