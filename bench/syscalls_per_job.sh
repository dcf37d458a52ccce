#!/bin/bash
# System calls per job of one worker (every thread, the jobs' processes excluded), counted
# with strace -c while `enqueue -` feeds it N `true` jobs. Deterministic enough to compare
# two builds in any hour, unlike CPU time.
#   bench/syscalls_per_job.sh [N] [QUEUECTL...]   e.g. bench/syscalls_per_job.sh 2000 old/queuectl build/queuectl
set -eu
n=${1:-2000}
shift || true
[ $# -gt 0 ] || set -- build/queuectl
for q in "$@"; do
  sp=$(mktemp -d)
  "$q" --spool "$sp" worker start --detach --count 1 >/dev/null
  rec=$(ls "$sp/workers" | grep -o '^worker-[0-9]*\.json$' | head -1)
  w=${rec//[^0-9]/}
  args=()
  for t in /proc/"$w"/task/*; do args+=(-p "${t##*/}"); done
  out=$(mktemp)
  strace -c -o "$out" "${args[@]}" 2>/dev/null &
  st=$!
  sleep 1 # strace attached (it prints nothing to wait on)
  yes '{"command":"true"}' | head -n "$n" | "$q" --spool "$sp" enqueue - >/dev/null
  until [ "$(find "$sp/done" -name '*.json' | wc -l)" -ge "$n" ]; do sleep 0.1; done
  kill "$st"; wait "$st" 2>/dev/null || true
  "$q" --spool "$sp" worker stop >/dev/null
  awk -v n="$n" -v q="$q" '/total/ {printf "%s: %.1f system calls per job\n", q, $(NF-2)/n}' "$out"
  rm -rf "$sp" "$out"
done
