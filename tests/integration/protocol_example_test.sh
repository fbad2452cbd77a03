#!/bin/sh
# Runs the Python producer of docs/protocol.md, exactly as printed there, against a real sluiced:
# the documentation's example must work.
#   $1: sluiced binary   $2: docs/protocol.md
set -eu
sluiced="$1"
doc="$2"
python=/usr/bin/python3
if ! "$python" -c "import zmq" 2>/dev/null; then
  echo "python3-zmq is not installed (scripts/install-deps installs it)" >&2
  exit 77
fi
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

awk '/^```python$/{on=1; next} /^```$/{on=0} on' "$doc" > "$dir/producer.py"
test -s "$dir/producer.py"

. "$(dirname "$0")/daemon.sh"
start_daemon "$sluiced" "$dir"

i=0
: > "$dir/events.jsonl"
while [ $i -lt 250 ]; do
  printf '{"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1,2],"event_id":"py-%d"},"session_id":"s-%d","customer_id":"c-%d","country":"NL","total":%d.5}\n' $i $((i % 7)) $((i % 5)) $i >> "$dir/events.jsonl"
  i=$((i + 1))
done
echo '{"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":"s-x","country":"nl","total":1}' >> "$dir/events.jsonl"

out=$(timeout 60 "$python" "$dir/producer.py" "$dir/events.jsonl" "$endpoint" 2>"$dir/producer.err")
echo "$out"
cat "$dir/producer.err"
test "$out" = "accepted 250, rejected 1"
grep -q "pattern_mismatch" "$dir/producer.err"

kill -TERM $pid
wait $pid
count=$(sqlite3 "$dir/state/sluice.db" "select count(*) from acme_checkout_1_0_0 where event_id like 'py-%'")
test "$count" = 250
echo "ok: the documented producer works"
