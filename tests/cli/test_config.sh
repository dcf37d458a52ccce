# config list/get/set/unset, both key spellings, refusals leave the file untouched.
. "$QUEUECTL_TEST_LIB"

new_spool
expect 0 q config list
assert_eq "$OUT" "max-retries 3
backoff-base 2
backoff-max 3600
timeout 0
priority 0"
expect 0 q config list --json
assert_eq "$OUT" '{"max-retries":3,"backoff-base":2,"backoff-max":3600,"timeout":0,"priority":0}'
expect 0 q config set max_retries 7
expect 0 q config get max-retries
assert_eq "$OUT" 7
expect 0 q config set backoff-base 1.5
assert_eq "$(q config get backoff_base)" 1.5
[ "$(stat -c %a "$S/config.json")" = 600 ] || fail "config.json mode"
cp "$S/config.json" "$T/cfg.before"
for bad in "colour 1" "max-retries -1" "max-retries x" "backoff-base 0.5" "timeout -2" "priority 1.5"; do
  # shellcheck disable=SC2086
  expect 2 q config set $bad
  assert_one_error_line
  cmp -s "$S/config.json" "$T/cfg.before" || fail "config.json changed by 'config set $bad'"
done
expect 2 q config get colour
assert_contains "$ERR" "unknown config key 'colour'"
expect 2 q config set max-retries
expect 0 q config unset max-retries
assert_eq "$(q config get max-retries)" 3
expect 0 q config unset max-retries
# A broken config file is reported, not silently replaced.
echo '{broken' >"$S/config.json"
expect 1 q config list
assert_one_error_line
assert_contains "$ERR" "config.json"
# Workers do not start on it: one error, not a worker dying at every start.
for n in 1 2; do
  expect 1 q worker start --count $n
  assert_one_error_line
  assert_contains "$ERR" "config.json"
  expect 1 q worker start --count $n --detach
  assert_one_error_line
  assert_contains "$ERR" "config.json"
done
expect 0 q worker status
assert_eq "$OUT" "no workers running"
echo "ok"
