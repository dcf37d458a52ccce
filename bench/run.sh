#!/bin/bash
# Builds release binaries (the default static link, and the other link choices for
# comparison) and runs the benchmarks.
# Usage: bench/run.sh [--quick] [--only enqueue|dispatch]
# Needs: hyperfine, nq, task-spooler (Debian packages), a C compiler, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
# The default link (static) in $B, the other two choices beside it.
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=static >/dev/null
cmake --build $B -j2 --target queuectl >/dev/null
for link in static-runtime dynamic; do
  cmake -S . -B $B/$link -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=$link >/dev/null
  cmake --build $B/$link -j2 --target queuectl >/dev/null
done
exec python3 bench/run.py "$@" $B
