# metrics: valid Prometheus text, gauges match status, counters survive purge and restarts.
. "$QUEUECTL_TEST_LIB"
PROM="$(dirname "$QUEUECTL_TEST_LIB")/prom_check.py"
metric() { q metrics | python3 "$PROM" | json "j.get('$1')"; }

new_spool
expect 0 q metrics
printf '%s\n' "$OUT" | python3 "$PROM" >/dev/null || fail "invalid exposition on an empty spool"
assert_contains "$OUT" 'queuectl_jobs{state="pending"} 0'
assert_contains "$OUT" "queuectl_workers 0"

q config set backoff-base 1
q enqueue --command true --id ok1 >/dev/null
q enqueue --command 'sleep 0.2' --id ok2 >/dev/null
q enqueue --command false --id bad --max-retries 1 >/dev/null
q enqueue --command true --id waiting --delay 3600 >/dev/null
start_workers 1
wait_until 20 is_state bad dead
wait_until 20 is_state ok2 completed
assert_eq "$(metric 'queuectl_jobs{state="completed"}')" 2.0
assert_eq "$(metric 'queuectl_jobs{state="pending"}')" 1.0
assert_eq "$(metric 'queuectl_workers')" 1.0
assert_eq "$(metric 'queuectl_runs_completed_total')" 2.0
assert_eq "$(metric 'queuectl_runs_failed_total')" 2.0
assert_eq "$(metric 'queuectl_jobs_retried_total')" 1.0
assert_eq "$(metric 'queuectl_jobs_dead_total')" 1.0
assert_eq "$(metric 'queuectl_job_duration_seconds_count')" 2.0
python3 -c "import sys; sys.exit(0 if float('$(metric queuectl_job_duration_seconds_sum)') >= 0.2 else 1)" ||
  fail "duration sum below the 0.2 s job's run time"
[ "$(metric 'queuectl_job_duration_seconds_bucket{le="0.1"}')" != "$(metric 'queuectl_job_duration_seconds_bucket{le="+Inf"}')" ] ||
  fail "the 0.2 s run should be above the 0.1 bucket"
python3 -c "import sys; sys.exit(0 if float('$(metric queuectl_oldest_pending_age_seconds)') >= 0 else 1)"

# Counters survive purge and a worker restart; the gauges follow the files.
q worker stop >/dev/null
q purge --state completed >/dev/null
q dlq purge >/dev/null
assert_eq "$(metric 'queuectl_jobs{state="completed"}')" 0.0
assert_eq "$(metric 'queuectl_runs_completed_total')" 2.0
assert_eq "$(metric 'queuectl_jobs_dead_total')" 1.0
q cancel waiting >/dev/null
q dlq retry waiting >/dev/null
assert_eq "$(metric 'queuectl_jobs_dead_total')" 2.0 "after cancel"
assert_eq "$(metric 'queuectl_jobs_retried_total')" 2.0 "after dlq retry"

# Per queue: queuectl_queue_jobs, with queuectl_jobs the totals.
q enqueue --command true --id b1 --queue builds --hold >/dev/null
q enqueue --command true --id b2 --queue builds >/dev/null
assert_eq "$(metric 'queuectl_queue_jobs{queue="builds",state="held"}')" 1.0
assert_eq "$(metric 'queuectl_queue_jobs{queue="builds",state="pending"}')" 1.0
assert_eq "$(metric 'queuectl_queue_jobs{queue="default",state="pending"}')" 1.0
assert_eq "$(metric 'queuectl_jobs{state="pending"}')" 2.0
assert_eq "$(metric 'queuectl_jobs{state="held"}')" 1.0
echo "ok"
