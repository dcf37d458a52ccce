// helpers: where the helper executables are (queuectl-serve, queuectl-cluster): beside
// the running binary in a build tree, or where the packages install them.
#pragma once

#include <filesystem>
#include <optional>

namespace queuectl {

// `name` beside this process's executable, else `installed` (relative to its directory);
// nullopt when neither is an executable file.
std::optional<std::filesystem::path> find_helper(const char* name, const char* installed);
// Where the installed helper should be, for messages.
std::filesystem::path installed_helper(const char* installed);

} // namespace queuectl
