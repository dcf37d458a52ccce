# Bad input: one error line, the right exit code, and no job created or changed.
. "$QUEUECTL_TEST_LIB"

q enqueue --command true --id keep >/dev/null
cp "$S/pending/keep.json" "$T/keep.before"
check_nothing_changed() {
  assert_eq "$(files pending)" "keep.json" "pending/"
  assert_eq "$(files tmp)" "" "tmp/"
  cmp -s "$S/pending/keep.json" "$T/keep.before" || fail "an existing job changed"
}

for input in '{' '[]' '"x"' '{}' '{"command":""}' '{"command":true}' '{"command":"x","id":"a b"}' \
  '{"command":"x","id":".hidden"}' '{"command":"x","priority":"high"}' '{"command":"x","max_retries":-1}' \
  '{"command":"x","timeout":-1}' '{"command":"x","run_at":"tomorrow"}' '{"command":"x","env":{"A":1}}' \
  '{"command":"x","priority":18446744073709551615}' '{"command":"x","timeout":1e400}'; do
  expect 2 q enqueue "$input"
  assert_one_error_line
  check_nothing_changed
done
expect 1 q enqueue '{"command":"x","id":"keep"}'
assert_one_error_line
assert_contains "$ERR" "already exists"
check_nothing_changed
expect 2 q enqueue --command x --id "$(printf 'x%.0s' $(seq 129))"
expect 2 q enqueue --command x --priority abc
assert_one_error_line
assert_contains "$ERR" "--priority: expected an integer, got 'abc'"
for opt in '--delay -1' '--delay nan' '--timeout -0.5' '--max-retries 1.5' '--delay 1e300' '--delay 5x' '--delay 30m2h' \
  '--delay 999999999999d'; do
  expect 2 q enqueue --command x $opt
  assert_one_error_line
  check_nothing_changed
done
assert_contains "$ERR" "too far in the future"
expect 2 q list --limit -1
assert_one_error_line
assert_contains "$ERR" "--limit: expected an integer >= 0, got '-1'"
expect 2 q purge --state dead --older-than soon
assert_one_error_line
expect 2 q enqueue --command x --run-at yesterday
assert_one_error_line
expect 2 q enqueue --command x --run-at 2030-01-01T00:00:00Z --delay 5
assert_one_error_line
expect 2 q enqueue
assert_one_error_line
expect 2 q frobnicate
assert_one_error_line
assert_contains "$ERR" "unknown command 'frobnicate'"
expect 2 q
assert_one_error_line
expect 2 q list --bogus-flag
assert_one_error_line
expect 2 q dlq
assert_one_error_line
assert_contains "$ERR" "missing command for 'queuectl dlq' (see 'queuectl dlq --help')"
# Messages in words, pointing where to look.
expect 2 q worker strat
assert_one_error_line
assert_contains "$ERR" "unknown command 'strat' for 'queuectl worker'; did you mean 'start'? (see 'queuectl worker --help')"
expect 2 q enqueue --command x --retries 5
assert_one_error_line
assert_contains "$ERR" "unknown option '--retries' for 'queuectl enqueue'; did you mean '--max-retries'?"
expect 2 q enqueue 'echo hi'
assert_one_error_line
assert_contains "$ERR" "to enqueue a shell command, use: queuectl enqueue --command 'echo hi'"
expect 2 q dlq retry a --all
assert_one_error_line
assert_contains "$ERR" "ids and --all cannot be used together"
expect 2 q --spool a list --spool b
assert_contains "$ERR" "--spool is given more than once"
expect 0 q worker start --help
assert_contains "$OUT" "(default 1)"
check_nothing_changed

# Help and version are not errors.
expect 0 q --help
assert_contains "$OUT" "enqueue"
for c in enqueue status list show logs cancel purge dlq config worker; do
  expect 0 q "$c" --help
  assert_contains "$OUT" "Usage"
done
expect 0 q --version
assert_contains "$OUT" "queuectl "
expect 0 q -V
assert_contains "$OUT" "queuectl "

# An unusable spool: a file where the spool should be, and an unreadable one.
touch "$T/notadir"
expect 1 q --spool "$T/notadir" status
assert_one_error_line
if [ "$(id -u)" = 0 ]; then
  # root ignores permissions; run as nobody when we can
  if command -v setpriv >/dev/null; then
    mkdir -p "$T/locked" && chmod 755 "$T" && chmod 700 "$T/locked"
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$QUEUECTL" --spool "$T/locked/spool" status
    assert_eq "$RC" 1 "exit code for an unwritable spool"
    assert_one_error_line
    assert_contains "$ERR" "Permission denied"
  fi
else
  mkdir -p "$T/locked" && chmod 500 "$T/locked"
  expect 1 q --spool "$T/locked/spool" status
  assert_one_error_line
fi

# Symlinks in the spool are not followed by show.
ln -s /etc/passwd "$S/pending/evil.json"
expect 1 q show evil
assert_one_error_line
assert_contains "$ERR" "symbolic link"

# A state directory replaced by a symlink: refused, with what to do instead; the spool
# root itself may be a symlink.
q --spool "$T/sub" config set max-retries 3
mkdir "$T/elsewhere"
rmdir "$T/sub/failed" && ln -s "$T/elsewhere" "$T/sub/failed"
expect 1 q --spool "$T/sub" enqueue --command true
assert_one_error_line
assert_contains "$ERR" "'$T/sub/failed' is a symbolic link"
assert_eq "$(ls "$T/sub/pending")" "" "nothing enqueued"
ln -s "$S" "$T/link"
expect 0 q --spool "$T/link" show keep
# Every usage error in the house's words, pointing at the command's own help; none of
# CLI11's phrases leak through.
usage_error() { # HINT EXPECTED-TEXT ARGS...
  local hint=$1 text=$2
  shift 2
  expect 2 q "$@"
  assert_one_error_line
  assert_contains "$ERR" "$text" "queuectl $*"
  assert_contains "$ERR" "(see 'queuectl${hint:+ $hint} --help')" "queuectl $*"
  case "$ERR" in
  *"is required"* | *"required"*"missing"* | *"Value "* | *"not in range"* | *"Could not convert"* | *" excludes "* | \
    *"At Most"* | *"The following argument"* | *"Expected"*)
    fail "CLI11's wording for 'queuectl $*': $ERR" ;;
  esac
}
usage_error "worker start" "--count: expected an integer from 1 to 1024, got 'abc'" worker start --count abc
usage_error "worker start" "--count: expected an integer from 1 to 1024, got '0'" worker start --count 0
usage_error show "'queuectl show' needs ID (job id)" show
usage_error wait "'queuectl wait' needs ID..." wait
usage_error "config set" "'queuectl config set' needs VALUE" config set timeout
usage_error "queue set" "'queuectl queue set' needs --concurrency N" queue set q
usage_error show "unexpected argument 'b'" show a b
usage_error list "--limit needs a value" list --limit
usage_error "dlq retry" "ids and --all cannot be used together" dlq retry a --all
usage_error list "--limit is given more than once" list --limit 5 --limit 6
usage_error enqueue "unknown option '--cmd' for 'queuectl enqueue'; did you mean '--command'?" enqueue --cmd x
usage_error list "did you mean '--json'?" list --jsn
usage_error "worker start" "unknown option '-x'" worker start -x
usage_error "" "unknown command 'wrker'; did you mean 'worker'?" wrker start
usage_error enqueue "--delay: expected a duration such as 90, 90s, 5m, 2h30m or 1d, got 'soon'" enqueue --command x --delay soon
usage_error enqueue "--run-at: expected a time such as 14:30" enqueue --command x --run-at 'next week'
echo "ok"
