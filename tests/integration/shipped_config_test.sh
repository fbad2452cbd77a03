#!/bin/sh
# The shipped /etc/sluice/sluiced.conf says of itself "every line documented": this keeps it so.
# Every key sluiced knows (its --help lists them as --section.key) must appear in that file,
# set or commented out (`key =` or `#key =`) inside its [section]; every key the file sets must
# be one sluiced knows; and sluiced must accept the file as shipped.
#   $1: sluiced   $2: etc/sluice/sluiced.conf
set -eu
sluiced="$1"
conf="$2"

known=$("$sluiced" --help | sed -n 's/^  --\([a-z_]*\.[a-z_]*\) .*/\1/p' | sort -u)
[ -n "$known" ] || { echo "sluiced --help listed no --section.key options" >&2; exit 1; }
# section.key for every `key =` or `#key =` line, under the [section] it stands in.
in_file=$(awk '/^\[[a-z_]+\]/ { s = substr($0, 2, length($0) - 2); next }
               /^#?[a-z_]+ *=/ { k = $0; sub(/^#/, "", k); sub(/ *=.*/, "", k); print s "." k }' "$conf" | sort -u)
set_in_file=$(awk '/^\[[a-z_]+\]/ { s = substr($0, 2, length($0) - 2); next }
                   /^[a-z_]+ *=/ { k = $0; sub(/ *=.*/, "", k); print s "." k }' "$conf" | sort -u)

status=0
for key in $known; do
    case "$key" in testing.*) continue ;; esac   # test-only hooks stay out of the shipped file
    echo "$in_file" | grep -qx "$key" || { echo "$conf: $key is not described" >&2; status=1; }
done
for key in $set_in_file; do
    echo "$known" | grep -qx "$key" || { echo "$conf: $key is not a key sluiced knows" >&2; status=1; }
done
[ $status -eq 0 ] || exit 1

# As shipped it names paths of an installed host (/var/lib/sluice, credentials); check its syntax
# and values with the directories it names moved to a scratch place.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp -r "$(dirname "$conf")"/. "$dir"/
"$sluiced" --check-config --config "$dir/sluiced.conf" --service.state_dir="$dir/state" >/dev/null
echo "$(echo "$known" | wc -l) keys, all described in $conf"
