#!/bin/bash
# Peak resident memory and time of one `enqueue -` of N `{"command":"true"}` lines.
#   bench/enqueue_memory.sh [N] [QUEUECTL...]   e.g. bench/enqueue_memory.sh 1000000 build/queuectl
set -eu
n=${1:-1000000}
shift || true
[ $# -gt 0 ] || set -- build/queuectl
input=$(mktemp)
yes '{"command":"true"}' | head -n "$n" >"$input"
for q in "$@"; do
  sp=$(mktemp -d)
  /usr/bin/time -f "$q: $n lines in %e s, peak %M KB resident" "$q" --spool "$sp" enqueue - <"$input" >/dev/null
  rm -rf "$sp"
done
rm -f "$input"
