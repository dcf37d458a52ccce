// completion: shell completion computed by queuectl itself. The scripts for bash, zsh and
// fish (`queuectl completion SHELL`) are thin: at each Tab they run
// `queuectl __complete WORD... CURRENT` and show what it prints, so the candidates come
// from the same command table as the parser and cannot drift from it.
//
// What `__complete` prints, one per line:
//   candidate<TAB>description     subcommands and options (the description may be empty)
//   candidate                     job ids, states, queue names, settings
//   :dirs  or  :files             let the shell complete a path
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace queuectl::cli {

// The candidates for the last of `words` (the words after the program's name; the last
// one is the word being completed, maybe empty), given the wired parser `app`.
std::string complete_words(const CLI::App& app, const std::vector<std::string>& words);

// The completion script for `shell` (bash, zsh or fish). Error(usage) for another.
std::string completion_script(const std::string& shell);

} // namespace queuectl::cli
