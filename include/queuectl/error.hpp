// error: the one exception type of queuectl, carrying the exit code the CLI returns.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace queuectl {

// Exit codes of the contract (SPEC section 5).
enum class Exit : int { ok = 0, failure = 1, usage = 2 };

class Error : public std::runtime_error {
public:
  Error(Exit code, const std::string& msg) : std::runtime_error(msg), m_code(code) {}
  Exit code() const { return m_code; }

private:
  Exit m_code;
};

// The operation failed because what it names does not exist (no such job): Exit::failure
// for the command line, 404 for the HTTP API.
class NotFound : public Error {
public:
  explicit NotFound(const std::string& msg) : Error(Exit::failure, msg) {}
};

// Throws Error(Exit::failure, "<what> '<path>': <strerror(errno)>"). Reads errno.
[[noreturn]] void throw_errno(std::string_view what, std::string_view path);
// As throw_errno, with an explicit errno value.
[[noreturn]] void throw_errno(std::string_view what, std::string_view path, int err);

// Shorthands for the two error classes.
[[noreturn]] void fail(const std::string& msg);      // Exit::failure
[[noreturn]] void bad_usage(const std::string& msg); // Exit::usage

} // namespace queuectl
