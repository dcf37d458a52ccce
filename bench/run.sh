#!/bin/bash
# Builds release binaries (the default static link, and the other link choices for
# comparison) and runs the benchmarks.
# Usage: [BENCH_BEFORE_REV=<commit>] bench/run.sh [--quick] [--only enqueue|dispatch|engine|million|workflow|cluster]
# Needs: hyperfine, nq, task-spooler (Debian packages), a C compiler, python3; nats-server and strace for
# --only cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build-bench
launcher=""
if command -v ccache >/dev/null; then
  launcher=-DCMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
# The default link (static) in $B; the other two choices beside it when the enqueue
# figures, which compare them, are asked for.
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=static $launcher >/dev/null
cmake --build $B -j2 --target queuectl >/dev/null
case " $* " in
*" --only cluster "*) cmake --build $B -j2 --target queuectl-cluster >/dev/null ;;
esac
case " $* " in
*" --only dispatch "* | *" --only engine "* | *" --only million "* | *" --only workflow "* | *" --only cluster "*) ;;
*)
  for link in static-runtime dynamic; do
    cmake -S . -B $B/$link -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=$link $launcher >/dev/null
    cmake --build $B/$link -j2 --target queuectl >/dev/null
  done
  ;;
esac
# `--only engine` compares this build with the same build of an earlier commit.
if [ -n "${BENCH_BEFORE_REV:-}" ]; then
  src=$(mktemp -d /var/tmp/queuectl-before.XXXXXX)
  git archive "$BENCH_BEFORE_REV" | tar -x -C "$src"
  rm -rf $B/before
  cmake -S "$src" -B $B/before -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DQUEUECTL_LINK=static $launcher >/dev/null
  cmake --build $B/before -j2 --target queuectl >/dev/null
  rm -rf "$src"
fi
exec python3 bench/run.py "$@" $B
