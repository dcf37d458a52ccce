#include "queuectl/helpers.hpp"

#include "queuectl/sys.hpp"

namespace queuectl {

std::optional<std::filesystem::path> find_helper(const char* name, const char* installed) {
  const std::filesystem::path dir = sys::self_exe().parent_path();
  for (const auto& helper : {dir / name, dir / installed}) {
    if (sys::is_executable(helper)) {
      return helper;
    }
  }
  return std::nullopt;
}

std::filesystem::path installed_helper(const char* installed) {
  return (sys::self_exe().parent_path() / installed).lexically_normal();
}

} // namespace queuectl
