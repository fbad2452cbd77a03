#!/bin/sh
# Runs the worked examples of docs/aggregation.md section 5 (Lambda and Kappa, the session and
# sliding queries) as written, against a database a real sluiced filled, so that the docs cannot
# drift from what sluice does: every ```sh block (with this build's sluicectl and the test's
# configuration) and every ```sql block of the section. The aggregations the examples name are
# configured as the docs describe them: revenue_by_country (1m windows by country),
# revenue_by_country_v2 (the same, added by a reload and backfilled), visits (sessions, 30m gap,
# by session_id and device), revenue_last_hour (1h windows every 5m by country).
#   $1: sluiced   $2: sluicectl   $3: docs/aggregation.md
set -eu
sluiced="$1"
sluicectl="$2"
doc="$3"
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed" >&2; exit 77; }
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

aggregation() {  # name, window, group_by
  printf '{"name": "%s", "window": %s, "group_by": %s, "metrics": ["count", "sum(total)", "distinct(customer_id)"], "allowed_lateness": "30s", "min_group_size": 1}' "$1" "$2" "$3"
}
write_pipeline() {  # the aggregations, comma-separated
  mkdir -p "$dir/pipelines"
  printf '{"contract": "acme/checkout/1.0.0", "aggregations": [%s]}\n' "$1" > "$dir/pipelines/acme.json.tmp"
  mv "$dir/pipelines/acme.json.tmp" "$dir/pipelines/acme.json"
}
first=$(aggregation revenue_by_country '"1m"' '["country"]'),$(aggregation visits '{"type": "session", "gap": "30m"}' '["session_id", "device"]'),$(aggregation revenue_last_hour '{"type": "sliding", "size": "1h", "slide": "5m"}' '["country"]')
write_pipeline "$first"
PIPELINES="$dir/pipelines"
. "$(dirname "$0")/daemon.sh"
start_daemon "$sluiced" "$dir" "[batch]" "max_events = 500"
conf="$dir/sluiced.conf"

# Yesterday's events (the Lambda example recomputes yesterday): 4000 over the two hours before
# midnight UTC, 80 sessions of 50 events each a minute apart (so that sessions end), then one
# event at now whose watermark makes every window of yesterday final.
midnight=$(( $(date -u +%s) / 86400 * 86400 ))000
now=$(date +%s)000
awk -v midnight="$midnight" -v now="$now" 'BEGIN {
  split("NL DE FR BE GB", c, " "); split("ios android web kiosk", d, " ");
  for (i = 0; i < 4000; i++) {
    s = i % 80; k = int(i / 80);
    t = midnight - 7200000 + s * 30000 + k * 60000;
    printf "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":[0,1,2],\"event_id\":\"d-%d\",\"event_time\":%.0f},\"session_id\":\"s-%d\",\"customer_id\":\"cust-%d\",\"email\":\"u%d@example.com\",\"ip\":\"10.0.0.%d\",\"country\":\"%s\",\"device\":\"%s\",\"total\":%d.25,\"items\":%d}\n",
      i, t, s, i % 41, i % 41, i % 250, c[s % 5 + 1], d[s % 4 + 1], i % 90, i % 5 + 1
  }
  printf "{\"meta\":{\"contract\":\"acme/checkout/1.0.0\",\"consent\":[0,1,2],\"event_id\":\"d-now\",\"event_time\":%.0f},\"session_id\":\"s-now\",\"customer_id\":\"cust-0\",\"country\":\"NL\",\"device\":\"web\",\"total\":1}\n", now
}' > "$dir/events.jsonl"
"$sluicectl" send --endpoint "$endpoint" --quiet --fail-on-reject "$dir/events.jsonl"

# Kappa: a fixed definition added under a new name by reload, then backfilled (the docs' first
# command).
write_pipeline "$first,$(aggregation revenue_by_country_v2 '"1m"' '["country"]')"
kill -HUP $pid
db="$dir/state/sluice.db"
# The next batch carries the new table: send an event at now until one has.
for i in $(seq 1 100); do
  sleep 0.1
  printf '{"meta":{"contract":"acme/checkout/1.0.0","consent":[0],"event_id":"d-reload-%d"},"session_id":"s-now","country":"NL","device":"web","total":1}\n' "$i" > "$dir/one.jsonl"
  "$sluicectl" send --endpoint "$endpoint" --quiet --fail-on-reject "$dir/one.jsonl"
  [ "$(sqlite3 "$db" "select count(*) from aggregations where name = 'revenue_by_country_v2'")" = 1 ] && break
done

# The section's blocks, in order.
awk '/^## 5\./{on=1} on && /^```sh$/{b=1; n++; file=sprintf("%s/b%02d.sh", dir, n); next}
     on && /^```sql$/{b=1; n++; file=sprintf("%s/b%02d.sql", dir, n); next}
     /^```$/{b=0} b {print > file}' dir="$dir" "$doc"
shells=0
queries=0
for block in "$dir"/b*; do
  case "$block" in
  *.sh)
    shells=$((shells + 1))
    # This build's sluicectl with the test's configuration; the rest as written.
    sed -e "s#--config /etc/sluice/sluiced.conf ##" -e "s#^sluicectl \([a-z]*\) #\"$sluicectl\" \1 --config \"$conf\" #" "$block" > "$block.run"
    if ! out=$(sh -eu "$block.run" 2>&1); then
      echo "block $(basename "$block") failed:" >&2
      cat "$block" >&2
      echo "$out" >&2
      exit 1
    fi
    echo "$out" | grep -q "^reprocessed " || { echo "$(basename "$block"): $out" >&2; exit 1; }
    ;;
  *.sql)
    queries=$((queries + 1))
    if ! out=$(sqlite3 -bail "$db" < "$block" 2>&1) || echo "$out" | grep -q "^Error\|^Parse error\|^Runtime error"; then
      echo "query $(basename "$block") failed:" >&2
      cat "$block" >&2
      echo "$out" >&2
      exit 1
    fi
    # What each example must show on this data.
    if grep -q "revenue_by_country_v2" "$block"; then
      [ -z "$out" ] || { echo "the backfilled v2 differs from v1:" >&2; echo "$out" >&2; exit 1; }
    elif grep -q "exact_windows" "$block"; then
      # yesterday's windows were recomputed completely
      echo "$out" | awk -F'|' '$3 > 0 {ok = 1} END {exit !ok}' || { echo "no exact window: $out" >&2; exit 1; }
    else
      [ -n "$out" ] || { echo "query $(basename "$block") returned nothing:" >&2; cat "$block" >&2; exit 1; }
    fi
    ;;
  esac
done
test "$shells" -ge 2
test "$queries" -ge 4
# The v2 backfill made every final window of v1 (yesterday's, 2 hours by 5 countries).
test "$(sqlite3 "$db" 'select count(*) from agg_revenue_by_country_v2 where final = 1')" -ge 120
kill -TERM $pid
wait $pid
echo "ok: $shells commands and $queries queries of docs/aggregation.md section 5 ran"
