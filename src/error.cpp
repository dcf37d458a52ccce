#include "queuectl/error.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace queuectl {

void throw_errno(std::string_view what, std::string_view path) {
  throw_errno(what, path, errno);
}

void throw_errno(std::string_view what, std::string_view path, int err) {
  std::string msg = fmt::format("{} '{}': {}", what, path, std::strerror(err));
  if (err == ENOSPC) {
    msg += " (free some space and try again)";
  } else if (err == EACCES || err == EPERM || err == EROFS) {
    msg += " (check the spool's permissions, or pick another with --spool)";
  }
  throw Error(Exit::failure, msg);
}

void fail(const std::string& msg) {
  throw Error(Exit::failure, msg);
}

void bad_usage(const std::string& msg) {
  throw Error(Exit::usage, msg);
}

} // namespace queuectl
