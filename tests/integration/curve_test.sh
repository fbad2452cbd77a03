#!/bin/sh
# CURVE on the ingest sockets: a producer whose key is on ingest.curve_clients_file is
# acknowledged; one with another key, or without CURVE, gets nothing in and nothing committed;
# the refusal is logged once with the public key, never a secret.
#   curve_test.sh SLUICED SLUICECTL
set -eu
sluiced="$1"
sluicectl="$2"
dir=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
. "$(dirname "$0")/daemon.sh"

mkdir -p "$dir/state"
server_public=$("$sluicectl" curve-keygen "$dir/state/curve.key")
client_public=$("$sluicectl" curve-keygen "$dir/client.key")
other_public=$("$sluicectl" curve-keygen "$dir/other.key")
[ "$(stat -c %a "$dir/state/curve.key")" = 600 ] || { echo "curve-keygen: secret key file is not 0600"; exit 1; }
printf '# producers let in\n%s\n' "$client_public" > "$dir/clients"

start_daemon "$sluiced" "$dir" '[ingest]' "curve_secret_key_file = curve.key" "curve_clients_file = $dir/clients" \
  '[batch]' 'max_delay = 20ms'

"$sluicectl" send --generate 200 -e "$endpoint" --curve-server-key "$server_public" \
  --curve-secret-key-file "$dir/client.key" --give-up 10s --quiet
if "$sluicectl" send --generate 50 --seed 2 -e "$endpoint" --curve-server-key "$server_public" \
  --curve-secret-key-file "$dir/other.key" --timeout 300ms --give-up 2s --quiet 2>/dev/null; then
  echo "a producer with a key not on the list was acknowledged"; exit 1
fi
if "$sluicectl" send --generate 50 --seed 3 -e "$endpoint" --timeout 300ms --give-up 2s --quiet 2>/dev/null; then
  echo "a producer without CURVE was acknowledged"; exit 1
fi
kill -TERM "$pid"
wait "$pid" || { echo "sluiced did not exit 0"; cat "$dir/log"; exit 1; }

committed=$(sqlite3 "$dir/state/sluice.db" "select count(*) from acme_checkout_1_0_0")
[ "$committed" = 200 ] || { echo "expected 200 committed events, found $committed"; exit 1; }
grep -qF "CURVE key $other_public is not in ingest.curve_clients_file" "$dir/log" \
  || { echo "the refusal of the other key is not logged"; cat "$dir/log"; exit 1; }
secret_hex=$(cat "$dir/state/curve.key")
if grep -qF "$secret_hex" "$dir/log"; then echo "the daemon's secret key is in its log"; exit 1; fi
echo "CURVE: 200 events from the allowed producer, none from the others"
