#!/bin/sh
# Runs every query of docs/sql.md's cookbook against a database a real sluiced filled: events
# over ten minutes of event time, some late, some invalid. A query that fails to run fails the
# test; the conservation-law query must return no row.
#   $1: sluiced   $2: sluicectl   $3: docs/sql.md
set -eu
sluiced="$1"
sluicectl="$2"
doc="$3"
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed" >&2; exit 77; }
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

. "$(dirname "$0")/daemon.sh"
start_daemon "$sluiced" "$dir" "[batch]" "max_events = 500"

# 3000 events over the last ten minutes, in order; then a few late ones (20 minutes old,
# beyond the 30 s allowed lateness) and a few invalid ones.
now=$(date +%s)000
awk -v now="$now" 'BEGIN {
  split("NL DE FR BE GB", c, " "); split("ios android web kiosk", d, " ");
  for (i = 0; i < 3000; i++) {
    t = now - 600000 + i * 200;
    printf "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":%s,\"event_id\":\"c-%d\",\"event_time\":%.0f},\"session_id\":\"s-%d\",\"customer_id\":\"cust-%d\",\"email\":\"u%d@example.com\",\"ip\":\"10.0.0.%d\",\"country\":\"%s\",\"device\":\"%s\",\"total\":%d.25,\"items\":%d}\n",
      (i % 3 == 0 ? "[0,1,2]" : (i % 3 == 1 ? "[0,1]" : "[]")), i, t, i % 97, i % 41, i % 41, i % 250, c[i % 5 + 1], d[i % 4 + 1], i % 90, i % 5 + 1
  }
  for (i = 0; i < 5; i++)
    printf "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":[0],\"event_time\":%.0f},\"session_id\":\"late-%d\",\"country\":\"NL\",\"total\":1}\n", now - 1200000, i
  print "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":[0]},\"session_id\":\"x\",\"country\":\"Holland\",\"total\":1}"
  print "not json"
}' > "$dir/events.jsonl"
"$sluicectl" send --endpoint "$endpoint" --quiet "$dir/events.jsonl"

db="$dir/state/sluice.db"
awk '/^```sql$/{on=1; n++; file=sprintf("%s/q%02d.sql", dir, n); next} /^```$/{on=0} on {print > file}' dir="$dir" "$doc"
count=0
for q in "$dir"/q*.sql; do
  count=$((count + 1))
  if ! out=$(sqlite3 -bail "$db" < "$q" 2>&1) || echo "$out" | grep -q "^Error\|^Parse error\|^Runtime error"; then
    echo "query $(basename "$q") failed:" >&2
    cat "$q" >&2
    echo "$out" >&2
    exit 1
  fi
  if grep -q "The conservation law\|WHERE b.received != " "$q" && [ -n "$out" ]; then
    echo "the conservation law does not hold:" >&2
    echo "$out" >&2
    exit 1
  fi
done
test "$count" -ge 10
test "$(sqlite3 "$db" 'select sum(events) from late_events')" = 5
test "$(sqlite3 "$db" 'select count(*) from revenue_by_country where final = 1')" -gt 0
kill -TERM $pid
wait $pid
echo "ok: $count cookbook queries ran"
