// cli: the `queuectl` command line: parses arguments, calls the library, prints results.
#pragma once

namespace queuectl::cli {

// Runs queuectl with the given arguments and returns the process exit status (0, 1, 2).
int run(int argc, char** argv);

} // namespace queuectl::cli
