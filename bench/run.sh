#!/bin/bash
# Builds release binaries (static, and dynamic for comparison) and runs the benchmarks.
# Usage: bench/run.sh [--quick] [--only enqueue|dispatch]
# Needs: hyperfine, nq, task-spooler (Debian packages), a C compiler, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build $B -j2 --target queuectl >/dev/null
cmake -S . -B $B/dynamic -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_STATIC=OFF >/dev/null
cmake --build $B/dynamic -j2 --target queuectl >/dev/null
exec python3 bench/run.py "$@" $B
