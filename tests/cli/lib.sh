# Helpers for the end-to-end tests: each test gets its own spool in a fresh temp dir,
# runs the real binary ($QUEUECTL), and checks exit codes, output and files on disk.
set -eEu
# A command that fails outside a check ends the test under set -e; say which and where,
# or the failure is a blank line in the CI log.
on_err() { # STATUS: the command that failed and the calls that led to it
  [[ $- == *e* ]] || return 0
  local i where="line ${BASH_LINENO[0]} of ${BASH_SOURCE[1]##*/}"
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    where+=", in ${FUNCNAME[i]} called from line ${BASH_LINENO[i]} of ${BASH_SOURCE[i + 1]##*/}"
  done
  echo "FAIL: \"$BASH_COMMAND\" exited $1 ($where)" >&2
}
trap 'on_err $?' ERR

: "${QUEUECTL:?set QUEUECTL to the queuectl binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/queuectl-cli.XXXXXX")
S="$T/spool"
export QUEUECTL_SPOOL="$S"
unset NOTIFY_SOCKET

ON_EXIT="" # extra commands a test needs at exit (e.g. stopping a server it started)
cleanup() {
  if [ -n "$ON_EXIT" ]; then
    eval "$ON_EXIT" || true
  fi
  # Stop whatever workers a test left running, then remove its files.
  if [ -d "$S/workers" ]; then
    timeout 30 "$QUEUECTL" --spool "$S" worker stop --now >/dev/null 2>&1 || true
  fi
  if [ -z "${QUEUECTL_KEEP_TEST_DIRS:-}" ]; then
    rm -rf "$T"
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

q() { "$QUEUECTL" "$@"; }

# new_spool: creates the test's spool, settings untouched (read-only commands create none).
new_spool() {
  q config set max-retries 3 >/dev/null
  q config unset max-retries >/dev/null
}

# run CMD...: runs it, keeping stdout in $OUT, stderr in $ERR and the status in $RC.
run() {
  set +e
  "$@" >"$T/out" 2>"$T/err"
  RC=$?
  set -e
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}

# expect RC CMD...: runs CMD and fails the test unless it exits with RC.
expect() {
  local want=$1
  shift
  run "$@"
  if [ "$RC" != "$want" ]; then
    fail "'$*' exited $RC, expected $want; stdout: $OUT; stderr: $ERR"
  fi
}

assert_eq() { # actual expected [what]
  [ "$1" = "$2" ] || fail "${3:-value}: got '$1', expected '$2'"
}

assert_contains() { # haystack needle [what]
  case "$1" in
  *"$2"*) ;;
  *) fail "${3:-text} does not contain '$2': $1" ;;
  esac
}

# One line on stderr, starting "queuectl: error:".
assert_one_error_line() {
  [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] || fail "expected one line on stderr, got: $ERR"
  assert_contains "$ERR" "queuectl: error:" "stderr"
}

# How much slower this build runs than a release build: deadlines are multiplied by it
# (a sanitizer build sets it; a deadline is a bound on a hang, never the measure of a test).
SLOW=${QUEUECTL_TEST_SLOW:-1}

# wait_until SECONDS CMD...: polls CMD until it succeeds; fails the test at the deadline.
# Polling a condition with a deadline, not sleeping and hoping.
wait_until() {
  local limit=$(($1 * SLOW))
  shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for: $*"
    sleep 0.02
  done
}

# json FILTER: reads JSON on stdin and prints the result of a Python expression on it (j).
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

count() { q status --json | json "j['$1']"; }
state_of() { q show "$1" | json "j['state']"; }
is_state() { [ "$(state_of "$1")" = "$2" ]; }
count_is() { [ "$(count "$1")" = "$2" ]; }

# Files in a spool directory (no dotfiles).
files() { ls -1 "$S/$1" 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'; }

start_workers() { # [COUNT]
  q worker start --detach --count "${1:-1}" >"$T/pids"
}

# alive PID: the process exists and is not a zombie (an exited detached process waits
# for PID 1 to reap it, and some containers' PID 1 never does).
alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$st" in Z*) return 1 ;; *) return 0 ;; esac
}
not_alive() { ! alive "$1"; }
