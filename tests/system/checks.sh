# shellcheck shell=bash
# The checks of the system suite (run.sh runs one per meson test) and their helpers. Every
# command in the container goes through ct_exec (container.sh). A check counts what it finds
# wrong in $failures and goes on, so one run reports every broken expectation.

SVC=sluiced.service
RESTART_SEC=5          # the unit's RestartSec=
EVENTS_TABLE=events_acme_checkout_1_0_0

# --- expectations ------------------------------------------------------------------------------

expect() {
    local what=$1
    shift
    if "$@"; then
        echo "ok   - $what"
    else
        echo "FAIL - $what"
        failures=$((failures + 1))
    fi
}
eq() { [ "$1" = "$2" ] || { echo "       got '$1', expected '$2'"; return 1; }; }
ge() { [ "$1" -ge "$2" ] 2>/dev/null || { echo "       got '$1', expected at least '$2'"; return 1; }; }
has() { printf '%s\n' "$1" | grep -qF -- "$2" || { echo "       no '$2' in:"; printf '%s\n' "$1" | sed 's/^/         /' | tail -n 20; return 1; }; }
hasnt() { ! printf '%s\n' "$1" | grep -qF -- "$2" || { echo "       unexpected '$2' in:"; printf '%s\n' "$1" | grep -F -- "$2" | sed 's/^/         /'; return 1; }; }
lines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }

# Polls CMD... every 0.2 s for up to SECONDS.
wait_until() {
    local seconds=$1
    shift
    local end=$(($(date +%s%N) + seconds * 1000000000))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# --- the installed build -----------------------------------------------------------------------

# Installs this build into the container as an operator would (meson install, here with DESTDIR
# and then unpacked into the container's root), with a fresh master key.
install_build() {
    local stage=$work/stage
    rm -rf "$stage"
    mkdir -p "$work"
    if ! meson install -C "$build" --destdir "$stage" --no-rebuild >"$work/install.log" 2>&1; then
        echo "meson install failed:"
        cat "$work/install.log"
        return 1
    fi
    # Whatever the host's own root holds of sluice (the container's lower layer) must not mix
    # with this build: state, a unit or a config of another install.
    ct_exec sh -c 'rm -rf /var/lib/private/sluice /var/lib/sluice /etc/systemd/system/sluiced.service.d' || return 1
    (cd "$stage" && tar -cf - -- *) | ct_exec tar -C / --no-overwrite-dir -xf - || return 1
    load_paths || return 1
    ct_exec systemctl daemon-reload || return 1
    if [ -z "$(ct_exec systemctl show -P FragmentPath "$SVC")" ]; then
        # A prefix whose unit directory systemd does not search: link the unit in.
        ct_exec systemctl link "$UNIT_FILE" || return 1
    fi
    ct_exec sh -c "mkdir -p /root/system-test && umask 077 && head -c 32 /dev/urandom > /root/system-test/master.key" ||
        return 1
    restore_key || return 1
    build_stamp >"$work/installed"
}

# This container and the build's programs and unit, as they are now.
build_stamp() {
    echo "$(ct_pid1) $(stat -c %Y "$build/src/sluiced" "$build/src/sluicectl" "$build/systemd/sluiced.service" 2>/dev/null | tr '\n' ' ')"
}

# The container we talk to holds what this build made.
installed_is_current() { [ "$(cat "$work/installed" 2>/dev/null)" = "$(build_stamp)" ]; }

# Paths of the installation, as the installed unit names them.
load_paths() {
    local stage=$work/stage unit
    unit=$(find "$stage" -path '*/systemd/system/sluiced.service' | head -n 1)
    [ -n "$unit" ] || { echo "no sluiced.service under $stage"; return 1; }
    UNIT_FILE=${unit#"$stage"}
    SLUICED=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
    CONF=$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' "$unit")
    KEY=$(sed -n 's/^LoadCredential=master\.key:\(.*\)/\1/p' "$unit")
    SLUICECTL=$(dirname "$SLUICED")/sluicectl
    ETC=$(dirname "$CONF")
    DB=/var/lib/sluice/sluice.db
    [ -n "$SLUICED" ] && [ -n "$CONF" ] && [ -n "$KEY" ] || { echo "cannot read the paths from $unit"; return 1; }
}

restore_key() { ct_exec install -m 0600 -o root -g root /root/system-test/master.key "$KEY"; }

# --- the service -------------------------------------------------------------------------------

prop() { ct_exec systemctl show -P "$1" "$SVC"; }
main_pid() { prop MainPID; }
is_active() { [ "$(prop ActiveState)" = active ]; }
active_state_is() { [ "$(prop ActiveState)" = "$1" ]; }
# Running again, as another process than PID.
restarted_since() { [ "$(prop SubState)" = running ] && [ "$(main_pid)" != "$1" ] && [ "$(main_pid)" != 0 ]; }

# Stops the service and puts everything a check may have changed back: no drop-ins, the
# installed configuration, the right master key, an empty state directory.
svc_reset() {
    ct_exec systemctl stop "$SVC" 2>/dev/null
    ct_exec systemctl reset-failed "$SVC" 2>/dev/null
    if ct_exec test -d "/etc/systemd/system/$SVC.d"; then
        ct_exec rm -rf "/etc/systemd/system/$SVC.d"
        ct_exec systemctl daemon-reload
    fi
    ct_exec sh -c "rm -rf /var/lib/private/sluice $ETC/system-test-* $ETC/contracts/system-test-* $ETC/pipelines/system-test-*"
    restore_key
}

svc_start() { ct_exec systemctl start "$SVC"; }

# A drop-in for this check only (svc_reset removes it).
drop_in() {
    ct_exec sh -c "mkdir -p /etc/systemd/system/$SVC.d && cat > /etc/systemd/system/$SVC.d/system-test.conf" &&
        ct_exec systemctl daemon-reload
}

# --- the journal -------------------------------------------------------------------------------

jmark() { ct_exec journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }
# Everything about the unit (systemd's lines and the daemon's) after a mark.
unit_log_since() { ct_exec journalctl -q -o cat --no-pager -u "$SVC" --after-cursor="$1"; }
# The daemon's own lines of one invocation, at PRIORITY or more urgent.
daemon_log() { ct_exec journalctl -q -o cat --no-pager "_SYSTEMD_INVOCATION_ID=$1" -p "${2:-debug}"; }
invocation() { prop InvocationID; }
unit_log_has() { unit_log_since "$1" | grep -qF -- "$2"; }
daemon_log_has() { daemon_log "$1" | grep -qF -- "$2"; }

# --- events ------------------------------------------------------------------------------------

# sluicectl send --generate N as PRODUCER, acknowledged; prints the JSON report.
send_generated() {
    local producer=$1 n=$2
    shift 2
    ct_exec "$SLUICECTL" send --generate "$n" --producer-id "$producer" --json "$@"
}
# A number from sluicectl's one-line --json report.
json_field() { sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p"; }
sql() { ct_exec sqlite3 "$DB" "$1"; }
stored() { sql "SELECT count(*) FROM $EVENTS_TABLE"; }

# =================================================================================================
# The checks
# =================================================================================================

# Type=notify READY, active, STATUS=, DynamicUser owning the state directory, the master key
# through LoadCredential=; and it stays up.
check_start() {
    svc_reset
    local rc=0
    svc_start || rc=$?
    expect "systemctl start returns 0 (Type=notify: after READY=1)" eq "$rc" 0
    expect "ActiveState=active" eq "$(prop ActiveState)" active
    expect "SubState=running" eq "$(prop SubState)" running
    local status pid user uid
    status=$(prop StatusText)
    expect "a STATUS= line is shown ('$status')" test -n "$status"
    pid=$(main_pid)
    expect "MainPID is set" ge "$pid" 2
    user=$(ct_exec ps -o user= -p "$pid" | tr -d ' ')
    uid=$(ct_exec ps -o uid= -p "$pid" | tr -d ' ')
    expect "DynamicUser: runs as the transient user 'sluiced'" eq "$user" sluiced
    expect "DynamicUser: uid $uid is in systemd's dynamic range 61184-65519" \
        test "$uid" -ge 61184 -a "$uid" -le 65519
    expect "/var/lib/sluice is systemd's link to private/sluice" \
        eq "$(ct_exec readlink /var/lib/sluice)" private/sluice
    expect "StateDirectory owned by that uid, mode 0700" \
        eq "$(ct_exec stat -c '%u %a' /var/lib/private/sluice)" "$uid 700"
    expect "the database is there, owned by that uid, owner-only (UMask=0077)" \
        eq "$(ct_exec stat -c '%u %a' /var/lib/private/sluice/sluice.db)" "$uid 600"
    expect "LimitNOFILE=16384 applies" has "$(ct_exec cat "/proc/$pid/limits")" "Max open files            16384"
    local creds
    creds=$(ct_exec sh -c "tr '\\0' '\\n' < /proc/$pid/environ" | sed -n 's/^CREDENTIALS_DIRECTORY=//p')
    expect "LoadCredential: \$CREDENTIALS_DIRECTORY is set ($creds)" test -n "$creds"
    expect "LoadCredential: the credential is the master key" ct_exec cmp -s "$creds/master.key" "$KEY"
    expect "LoadCredential: the credential is readable by the service's user only" \
        eq "$(ct_exec stat -c '%u %a' "$creds/master.key")" "$uid 400"
    expect "the key file itself stays root-only (0600)" eq "$(ct_exec stat -c '%U %a' "$KEY")" "root 600"
    local report
    report=$(send_generated start-check 10 --give-up 20s)
    expect "READY meant ready: events sent right away are acknowledged" eq "$(json_field accepted <<<"$report")" 10
    sleep 1
    expect "stays up: same MainPID a second later" eq "$(main_pid)" "$pid"
    expect "no restarts" eq "$(prop NRestarts)" 0
}

# Starts the service expecting a refusal: systemctl start fails, the main process exits STATUS,
# and the daemon logs exactly one err line, left in $err. Exit 78 must leave the unit failed
# (RestartPreventExitStatus=); another status gets a restart scheduled.
refused_start() {
    local status=$1 rc=0 inv
    svc_start 2>/dev/null || rc=$?
    expect "systemctl start fails" test "$rc" -ne 0
    expect "exit status $status, shown by systemd" eq "$(prop ExecMainStatus)" "$status"
    if [ "$status" = 78 ]; then
        expect "failed for good: no restart pending (ActiveState=failed, NRestarts=0)" \
            eq "$(prop ActiveState) $(prop NRestarts)" "failed 0"
    else
        expect "a restart is scheduled (SubState=auto-restart)" eq "$(prop SubState)" auto-restart
    fi
    inv=$(invocation)
    wait_until 5 has_err_line "$inv"
    err=$(daemon_log "$inv" err)
    echo "       the err line: $err"
    expect "exactly one err line from sluiced" eq "$(lines "$err")" 1
}
has_err_line() { [ -n "$(daemon_log "$1" err)" ]; }

# Without the master key: exit 78, one err line that says what to do, no restart.
check_no_key() {
    svc_reset
    ct_exec rm -f "$KEY"
    local err
    refused_start 78
    expect "it says the master key is missing" has "$err" "no master key"
    expect "it names the file to create" has "$err" "$KEY"
    sleep 1
    expect "still no restart a second later" eq "$(prop NRestarts)" 0
    restore_key
}

# A different master key than the database was written with: exit 78, one err line, no restart.
check_wrong_key() {
    svc_reset
    svc_start || { expect "starts with the right key" false; return; }
    ct_exec systemctl stop "$SVC"
    ct_exec sh -c "umask 077; head -c 32 /dev/urandom > $KEY"
    local err rc=0
    refused_start 78
    expect "it says the key does not match" has "$err" "does not match"
    restore_key
    ct_exec systemctl reset-failed "$SVC"
    svc_start || rc=$?
    expect "with the right key back, it starts on the same database" eq "$rc" 0
}

# A broken pipeline file at start: exit 78, one err line naming the file, no restart.
check_broken_config() {
    svc_reset
    printf '{"contract": "acme/checkout/1.0.0", "outputs": [' |
        ct_exec sh -c "cat > $ETC/pipelines/system-test-broken.json"
    local err
    refused_start 78
    expect "it names the broken file" has "$err" "system-test-broken.json"
    ct_exec rm -f "$ETC/pipelines/system-test-broken.json"
}

# A full disk at start: exit 74 with one err line; this one is retried (space may come back).
check_full_disk() {
    svc_reset
    # A 1 MiB file system for the state directory, filled up (inside the container only).
    ct_exec sh -c 'mkdir -p /var/lib/private && mount -t tmpfs -o size=1m,mode=0700 system-test-full /var/lib/private &&
                   dd if=/dev/zero of=/var/lib/private/filler bs=64k 2>/dev/null; true'
    local err
    refused_start 74
    expect "it says the disk is full" has "$(printf '%s' "$err" | tr 'A-Z' 'a-z')" "full"
    ct_exec systemctl stop "$SVC"
    ct_exec umount /var/lib/private
    ct_exec systemctl reset-failed "$SVC" 2>/dev/null
}

# Acknowledged events from sluicectl send are stored and readable with sqlite3 by root.
check_send() {
    svc_reset
    svc_start || { expect "starts" false; return; }
    local report accepted
    report=$(send_generated send-check 1000 --give-up 30s)
    accepted=$(json_field accepted <<<"$report")
    echo "       sluicectl: $report"
    expect "sluicectl send: every request answered" eq "$(json_field unanswered <<<"$report")" 0
    expect "most of 1000 generated events accepted" ge "${accepted:-0}" 900
    expect "sqlite3 as root: the acknowledged events are stored" eq "$(stored)" "$accepted"
    # A JSONL file on stdin, as in the README.
    printf '%s\n' \
        '{"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1,2]},"session_id":"sys-1","customer_id":"c-1","email":"ann@example.com","country":"NL","total":42.5}' \
        '{"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":"sys-2","country":"Netherlands","total":1}' |
        ct_exec "$SLUICECTL" send --producer-id send-file --json - >"$work/send-file.json"
    expect "a JSONL file: one accepted, one rejected" \
        eq "$(json_field accepted <"$work/send-file.json") $(json_field rejected <"$work/send-file.json")" "1 1"
    expect "sqlite3: the view shows it" \
        eq "$(sql "SELECT count(*) FROM acme_checkout_1_0_0 WHERE country = 'NL' AND total = 42.5")" 1
    expect "sqlite3: its dead letter is there" ge "$(sql "SELECT count(*) FROM dead_letters")" 1
    # Root's sqlite3 must not leave files the daemon cannot use.
    report=$(send_generated send-check-2 100 --give-up 30s)
    expect "the daemon still commits after root read the database" \
        eq "$(stored)" "$((accepted + 1 + $(json_field accepted <<<"$report")))"
}

# systemctl reload: a new contract is taken; a broken pipeline file is refused and the old
# configuration keeps serving.
check_reload() {
    svc_reset
    svc_start || { expect "starts" false; return; }
    local pid mark log
    pid=$(main_pid)
    ct_exec sh -c "sed 's|acme/checkout/1.0.0|acme/checkout/1.1.0|' $ETC/contracts/acme-checkout-1.0.0.json > $ETC/contracts/system-test-1.1.0.json"
    local event='{"meta":{"contract":"acme/checkout/1.1.0","consent":[0]},"session_id":"r-1","country":"NL","total":3}'
    mark=$(jmark)
    expect "systemctl reload returns 0" ct_exec systemctl reload "$SVC"
    wait_until 10 unit_log_has "$mark" "reload accepted"
    log=$(unit_log_since "$mark")
    expect "the journal says the reload was accepted" has "$log" "reload accepted: 2 contract(s)"
    expect "same process (no restart)" eq "$(main_pid)" "$pid"
    expect "the new contract takes events" \
        eq "$(printf '%s\n' "$event" | ct_exec "$SLUICECTL" send --producer-id reload-1 --json - | json_field accepted)" 1
    printf '{"contract": "acme/checkout/1.1.0", "outputs": [{"name": ' |
        ct_exec sh -c "cat > $ETC/pipelines/system-test-broken.json"
    mark=$(jmark)
    expect "systemctl reload of a broken pipeline returns 0 (the refusal is the daemon's)" \
        ct_exec systemctl reload "$SVC"
    wait_until 10 unit_log_has "$mark" "reload refused"
    log=$(unit_log_since "$mark")
    expect "the journal says the reload was refused, naming the file" has "$log" "system-test-broken.json"
    expect "... and that the running configuration stays" has "$log" "reload refused, the running configuration stays"
    expect "still active, same process" eq "$(prop ActiveState) $(main_pid)" "active $pid"
    expect "the old configuration still serves both contracts" \
        eq "$(printf '%s\n' "$event" | ct_exec "$SLUICECTL" send --producer-id reload-2 --json - | json_field accepted)" 1
    expect "both events stored" eq "$(sql "SELECT count(*) FROM events_acme_checkout_1_1_0")" 2
}

# systemctl stop drains: Result=success, and what was received before the stop is committed and
# acknowledged. The stall switch holds the producer's batch in its commit, so the SIGTERM finds
# acknowledged-mode requests received and not yet committed.
check_stop() {
    svc_reset
    drop_in <<EOF
[Service]
ExecStart=
ExecStart=$SLUICED --config $CONF --testing.stall_writer_file=stall
EOF
    svc_start || { expect "starts" false; return; }
    ct_exec touch /var/lib/private/sluice/stall
    # 200 requests, all in flight at once.
    send_generated stop-check 2000 --events-per-message 10 --window 200 --give-up 5s >"$work/stop.json" 2>/dev/null &
    local sender=$!
    sleep 1
    local mark log
    mark=$(jmark)
    ct_exec systemctl stop --no-block "$SVC"
    expect "SIGTERM: the daemon drains" wait_until 10 unit_log_has "$mark" "SIGTERM: draining"
    expect "nothing was committed yet" eq "$(stored)" 0
    ct_exec rm -f /var/lib/private/sluice/stall
    expect "it stops within 10 s" wait_until 10 active_state_is inactive
    wait "$sender"
    local acked stored_now
    acked=$(json_field accepted <"$work/stop.json")
    echo "       sluicectl: $(cat "$work/stop.json")"
    expect "Result=success" eq "$(prop Result)" success
    expect "exit status 0" eq "$(prop ExecMainStatus)" 0
    log=$(unit_log_since "$mark")
    expect "the journal says it drained, and what" has "$log" "stopped after draining"
    expect "the producer's events were acknowledged during the drain" eq "${acked:-0}" 2000
    stored_now=$(stored)
    expect "every acknowledged event is stored (stored $stored_now, acknowledged $acked)" eq "$stored_now" "${acked:-0}"
}

# kill -9 of the main process: systemd restarts it after RestartSec, and no acknowledged event
# is lost or stored twice, while a producer keeps sending through the restart.
check_kill9() {
    svc_reset
    svc_start || { expect "starts" false; return; }
    local before pid report
    before=$(send_generated kill9-before 500 --give-up 30s)
    pid=$(main_pid)
    # About 1.5 s of sending at 8 requests of 10 events per batch (max_delay 200 ms).
    send_generated kill9-during 600 --events-per-message 10 --window 8 --timeout 1s --give-up 40s \
        >"$work/kill9.json" 2>/dev/null &
    local sender=$!
    sleep 0.5
    local mark
    mark=$(jmark)
    ct_exec systemctl kill --kill-who=main --signal=KILL "$SVC"
    expect "systemd restarts it within RestartSec + 5 s" wait_until $((RESTART_SEC + 5)) restarted_since "$pid"
    expect "a new process" test "$(main_pid)" != "$pid"
    expect "NRestarts=1" eq "$(prop NRestarts)" 1
    expect "the journal shows the kill" has "$(unit_log_since "$mark")" "status=9/KILL"
    wait "$sender"
    report=$(cat "$work/kill9.json")
    echo "       sluicectl during the kill: $report"
    expect "the producer got every request answered across the restart" eq "$(json_field unanswered <<<"$report")" 0
    expect "it was sending when the kill came (it had to retry)" ge "$(json_field retries <<<"$report")" 1
    local total
    total=$(($(json_field accepted <<<"$before") + $(json_field accepted <<<"$report")))
    expect "every acknowledged event stored exactly once" eq "$(stored)" "$total"
}

# A writer stalled on purpose (testing.stall_writer_file) stops the watchdog pings: systemd kills
# the daemon (Result=watchdog) and restarts it; the stalled request is committed after it.
check_watchdog() {
    svc_reset
    # Shorter than the shipped 30 s so the check takes seconds; the mechanism is the same.
    drop_in <<EOF
[Service]
WatchdogSec=2s
RestartSec=1s
ExecStart=
ExecStart=$SLUICED --config $CONF --testing.stall_writer_file=stall
EOF
    svc_start || { expect "starts" false; return; }
    local pid mark
    pid=$(main_pid)
    expect "the watchdog is armed (WatchdogUSec=2s)" eq "$(prop WatchdogUSec)" 2s
    ct_exec touch /var/lib/private/sluice/stall
    mark=$(jmark)
    send_generated watchdog-check 10 --timeout 1s --give-up 40s >"$work/watchdog.json" 2>/dev/null &
    local sender=$!
    expect "systemd kills it on the watchdog" wait_until 20 unit_log_has "$mark" "Watchdog timeout"
    ct_exec rm -f /var/lib/private/sluice/stall
    local log
    log=$(unit_log_since "$mark")
    expect "the daemon said which stage stalled" has "$log" "writer stalled: busy in commit"
    expect "Result=watchdog" has "$log" "Failed with result 'watchdog'"
    expect "and restarts it" wait_until 15 restarted_since "$pid"
    expect "a new process" test "$(main_pid)" != "$pid"
    expect "NRestarts=1" eq "$(prop NRestarts)" 1
    wait "$sender"
    echo "       sluicectl: $(cat "$work/watchdog.json")"
    expect "the stalled request is acknowledged after the restart, stored once" \
        eq "$(stored)" "$(json_field accepted <"$work/watchdog.json")"
    expect "... and it was all of them" ge "$(stored)" 9
}

# journalctl -p warning shows the daemon's warnings and errors and nothing less urgent: the
# <N> prefixes become journal priorities. The warning is a real one: a producer with a CURVE key
# that is not on the list.
check_journal() {
    svc_reset
    local server_pub listed_pub
    server_pub=$(ct_exec sh -c "rm -f $ETC/system-test-curve.key /root/system-test/*.curve; $SLUICECTL curve-keygen $ETC/system-test-curve.key" | tail -n 1)
    listed_pub=$(ct_exec "$SLUICECTL" curve-keygen /root/system-test/listed.curve | tail -n 1)
    ct_exec "$SLUICECTL" curve-keygen /root/system-test/stranger.curve >/dev/null
    printf '%s\n' "$listed_pub" | ct_exec sh -c "cat > $ETC/system-test-curve-clients"
    drop_in <<EOF
[Service]
LoadCredential=curve.key:$ETC/system-test-curve.key
ExecStart=
ExecStart=$SLUICED --config $CONF --ingest.curve_secret_key_file=/run/credentials/$SVC/curve.key --ingest.curve_clients_file=$ETC/system-test-curve-clients
EOF
    svc_start || { expect "starts with CURVE on" false; return; }
    local inv
    inv=$(invocation)
    local event='{"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":"j-1","country":"NL","total":3}'
    expect "a listed producer gets in" eq "$(printf '%s\n' "$event" | ct_exec "$SLUICECTL" send --producer-id listed \
        --curve-server-key "$server_pub" --curve-secret-key-file /root/system-test/listed.curve --json - | json_field accepted)" 1
    printf '%s\n' "$event" | ct_exec "$SLUICECTL" send --producer-id stranger --timeout 1s --give-up 1s \
        --curve-server-key "$server_pub" --curve-secret-key-file /root/system-test/stranger.curve - >/dev/null 2>&1
    printf '{"contract": "acme/checkout/1.0.0", "outputs": [' | ct_exec sh -c "cat > $ETC/pipelines/system-test-broken.json"
    ct_exec systemctl reload "$SVC"
    wait_until 10 daemon_log_has "$inv" "reload refused"
    local warnings all
    warnings=$(daemon_log "$inv" warning)
    all=$(daemon_log "$inv" debug)
    echo "       journalctl -p warning for this run of sluiced:"
    printf '%s\n' "$warnings" | sed 's/^/         /'
    expect "-p warning shows the refused producer (a warning)" has "$warnings" "refused a producer"
    expect "-p warning shows the refused reload (an error)" has "$warnings" "reload refused"
    expect "-p warning does not show the notice 'ready'" hasnt "$warnings" " ready: "
    expect "-p warning does not show the info lines" hasnt "$warnings" "metrics: serving"
    expect "without -p, the notice and info lines are there" has "$all" " ready: "
    expect "no <N> prefix is left in any message" hasnt "$(printf '%s\n' "$all" | grep -E '^<[0-7]>')" "<"
    # The priorities themselves, as journald stored them.
    local prios
    prios=$(ct_exec journalctl -q -o verbose --output-fields=PRIORITY,MESSAGE "_SYSTEMD_INVOCATION_ID=$inv" |
        awk '/^ +PRIORITY=/ { p = substr($1, 10) }
             /^ +MESSAGE=/ {
                 if (index($0, "refused a producer")) print "warning " p
                 if (index($0, "reload refused")) print "err " p
                 if (index($0, " ready: ")) print "notice " p
                 if (index($0, "metrics: serving")) print "info " p
             }' | sort -u | tr '\n' ' ')
    expect "PRIORITY: err 3, info 6, notice 5, warning 4" eq "$prios" "err 3 info 6 notice 5 warning 4 "
    ct_exec rm -f "$ETC/system-test-curve.key" "$ETC/system-test-curve-clients"
}

# The sandbox holds: a process of the service (ExecStartPost=, same user and sandbox) can write
# in its state and runtime directories and its private /tmp only; the daemon itself has no
# capabilities, no new privileges, a seccomp filter.
check_sandbox() {
    svc_reset
    ct_exec sh -c 'mkdir -p /usr/local/libexec/sluice-system-test && cat > /usr/local/libexec/sluice-system-test/probe && chmod 755 /usr/local/libexec/sluice-system-test/probe' <<'EOF'
#!/bin/sh
# Tries to create a file in each directory; prints "DIR allowed" or "DIR denied".
out=$RUNTIME_DIRECTORY/probe.txt
: > "$out"
for d in "$STATE_DIRECTORY" "$RUNTIME_DIRECTORY" /tmp /var/tmp / /etc /etc/sluice /usr /usr/local /usr/local/etc \
         /usr/local/etc/sluice /var /var/lib /var/lib/private /var/log /var/cache /var/spool /home /root /run \
         /run/systemd /run/user /srv /opt /mnt /boot /dev /dev/shm /dev/mqueue /sys/fs/cgroup /proc/sys; do
    [ -d "$d" ] || continue
    if (: > "$d/.sluice-probe") 2>/dev/null; then echo "$d allowed" >> "$out"; rm -f "$d/.sluice-probe"
    else echo "$d denied" >> "$out"; fi
done
: > /tmp/sluice-probe-private
echo "pid1 $( [ -e /proc/1/status ] && echo visible || echo invisible)" >> "$out"
echo "uid $(id -u)" >> "$out"
EOF
    drop_in <<'EOF'
[Service]
ExecStartPost=/usr/local/libexec/sluice-system-test/probe
EOF
    svc_start || { expect "starts with the probe" false; return; }
    local probe pid d
    probe=$(ct_exec cat /run/sluice/probe.txt)
    echo "       what the probe could write:"
    printf '%s\n' "$probe" | grep allowed | sed 's/^/         /'
    for d in /var/lib/sluice /run/sluice /tmp /var/tmp; do
        expect "writable: $d" has "$probe" "$d allowed"
    done
    local unexpected
    unexpected=$(printf '%s\n' "$probe" | grep ' allowed$' | grep -vE '^(/var/lib/sluice|/run/sluice|/tmp|/var/tmp) ')
    expect "nothing else is writable" eq "$unexpected" ""
    expect "at least 20 places tried and refused" ge "$(printf '%s\n' "$probe" | grep -c ' denied$')" 20
    expect "/tmp is private: the probe's file is not in the real /tmp" ct_exec test ! -e /tmp/sluice-probe-private
    expect "other users' processes are invisible (ProtectProc=invisible)" has "$probe" "pid1 invisible"
    pid=$(main_pid)
    local status
    status=$(ct_exec cat "/proc/$pid/status")
    expect "the daemon has no capabilities (CapEff)" has "$status" "CapEff:	0000000000000000"
    expect "... and none to gain (CapBnd)" has "$status" "CapBnd:	0000000000000000"
    expect "NoNewPrivs" has "$status" "NoNewPrivs:	1"
    expect "a seccomp filter (SystemCallFilter=)" has "$status" "Seccomp:	2"
    expect "the daemon still runs" is_active
}

# IPAddressDeny=any + IPAddressAllow=localhost: a producer on another address is refused, until
# the drop-in docs/operations.md gives for LAN producers allows its subnet. A second address on
# the container's loopback interface stands in for the LAN.
check_network() {
    svc_reset
    ct_exec sh -c 'ip -4 addr show dev lo | grep -q 10.9.9.1 || ip addr add 10.9.9.1/32 dev lo' ||
        { expect "a second address on lo" false; return; }
    drop_in <<EOF
[Service]
ExecStart=
ExecStart=$SLUICED --config $CONF --ingest.router=tcp://127.0.0.1:7401 --ingest.router=tcp://10.9.9.1:7401
EOF
    svc_start || { expect "starts with an endpoint on 10.9.9.1" false; return; }
    local inv
    inv=$(invocation)
    expect "it listens on both addresses" has "$(daemon_log "$inv")" "tcp://10.9.9.1:7401"
    local report
    report=$(send_generated net-local 10 --endpoint tcp://127.0.0.1:7401 --give-up 10s)
    expect "loopback: events acknowledged" eq "$(json_field accepted <<<"$report")" 10
    report=$(send_generated net-lan 10 --endpoint tcp://10.9.9.1:7401 --timeout 1s --give-up 2s 2>/dev/null)
    expect "10.9.9.1: refused by IPAddressDeny= (nothing answered)" eq "$(json_field unanswered <<<"$report")" 1
    expect "... and nothing stored from it" eq "$(stored)" 10
    ct_exec sh -c "cat >> /etc/systemd/system/$SVC.d/system-test.conf" <<'EOF'
IPAddressAllow=10.9.9.0/24
EOF
    ct_exec systemctl daemon-reload
    ct_exec systemctl restart "$SVC"
    report=$(send_generated net-lan-allowed 10 --endpoint tcp://10.9.9.1:7401 --give-up 10s)
    expect "with IPAddressAllow=10.9.9.0/24 in a drop-in: acknowledged" eq "$(json_field accepted <<<"$report")" 10
    ct_exec ip addr del 10.9.9.1/32 dev lo
}

# The Debian package, in a fresh container: apt install, the master key, enabled and started,
# the start and send checks, apt remove, apt purge.
check_package() {
    local deb_dir=${SLUICE_DEB_DIR:-$source_root/build-deb}
    local deb
    deb=$(ls -t "$deb_dir"/sluice_*_amd64.deb 2>/dev/null | head -n 1)
    if [ -z "$deb" ]; then
        if [ "${SLUICE_REQUIRE_PACKAGE:-0}" = 1 ]; then
            echo "FAIL: no sluice_*_amd64.deb in $deb_dir"
            failures=$((failures + 1))
            return 1
        fi
        echo "SKIP: no sluice_*_amd64.deb in $deb_dir: build it with scripts/package (scripts/test does)"
        exit 77
    fi
    echo "package: $deb ($(date -r "$deb" '+%F %T'))"
    CT_NAME=$CT_NAME-pkg
    CT_DIR=$work/ct-pkg
    ct_up || { expect "a fresh container for the package boots" false; return; }
    echo "       booted ($(elapsed))"
    trap 'ct_down' EXIT
    # A fresh root: nothing of sluice from the host's own root (the container's lower layer), and
    # no policy-rc.d: build machines and container images often have one that forbids starting
    # services (exit 101), which is the host's business; an operator's host has none. Without
    # man-db's auto-update flag apt skips re-indexing every manual page, and without the host's
    # package lists it resolves the dependencies against what is installed only (the container
    # has no network to fetch anything anyway): seconds less per apt run.
    ct_exec sh -c 'rm -rf /usr/local/bin/sluice* /usr/local/lib/systemd/system/sluiced.service /usr/local/etc/sluice /var/lib/private/sluice /var/lib/sluice /etc/sluice /usr/sbin/policy-rc.d /var/lib/man-db/auto-update /var/lib/apt/lists/* /var/cache/apt/*.bin'
    expect "sluice is not installed in the fresh root" test -z "$(ct_exec dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep ' installed')"
    local name
    name=$(basename "$deb")
    ct_exec mkdir -p /root/pkg
    ct_exec sh -c "cat > /root/pkg/$name" <"$deb"
    local out rc=0
    out=$(ct_exec env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "/root/pkg/$name" 2>&1) || rc=$?
    printf '%s\n' "$out" | grep -vE '^(Reading|Building|Selecting|Preparing|Unpacking|\(Reading)' | sed 's/^/       apt: /' | tail -n 25
    expect "apt-get install ./$name succeeds, dependencies resolved ($(elapsed))" eq "$rc" 0
    expect "postinst says where the new master key is" has "$out" "/etc/sluice/master.key"
    expect "the master key: root-only, 0600, 32 bytes" \
        eq "$(ct_exec stat -c '%U %G %a %s' /etc/sluice/master.key)" "root root 600 32"
    local conffiles
    conffiles=$(ct_exec dpkg-query -W -f='${Conffiles}\n' sluice)
    expect "sluiced.conf is a conffile" has "$conffiles" "/etc/sluice/sluiced.conf"
    expect "the example contract is a conffile" has "$conffiles" "/etc/sluice/contracts/acme-checkout-1.0.0.json"
    expect "the example pipeline is a conffile" has "$conffiles" "/etc/sluice/pipelines/acme-checkout.json"
    expect "the master key is not a conffile (made on the host, never shipped)" hasnt "$conffiles" "master.key"
    expect "enabled" eq "$(ct_exec systemctl is-enabled "$SVC")" enabled
    expect "started: active (running)" eq "$(prop ActiveState) $(prop SubState)" "active running"
    expect "a STATUS= line" test -n "$(prop StatusText)"
    local pid uid
    pid=$(main_pid)
    uid=$(ct_exec ps -o uid= -p "$pid" | tr -d ' ')
    expect "DynamicUser: state directory owned by the service's uid" \
        eq "$(ct_exec stat -c '%u %a' /var/lib/private/sluice)" "$uid 700"
    expect "LoadCredential: the master key is the service's credential" \
        ct_exec cmp -s "/run/credentials/$SVC/master.key" /etc/sluice/master.key
    local key_sum
    key_sum=$(ct_exec sha256sum /etc/sluice/master.key)
    local report
    report=$(ct_exec /usr/bin/sluicectl send --generate 300 --producer-id package-check --json --give-up 10s)
    echo "       sluicectl: $report"
    expect "sluicectl send: acknowledged events stored, read with sqlite3" \
        eq "$(ct_exec sqlite3 /var/lib/sluice/sluice.db "SELECT count(*) FROM $EVENTS_TABLE")" "$(json_field accepted <<<"$report")"
    # What an upgrade or a reinstall runs: the postinst again, with a key in place.
    out=$(ct_exec env DEBIAN_FRONTEND=noninteractive /var/lib/dpkg/info/sluice.postinst configure 0.1.0 2>&1)
    expect "postinst again keeps the master key" eq "$(ct_exec sha256sum /etc/sluice/master.key)" "$key_sum"
    expect "... says nothing about a new one" hasnt "$out" "created a new master key"
    expect "... and the service runs on" is_active
    out=$(ct_exec env DEBIAN_FRONTEND=noninteractive apt-get remove -y sluice 2>&1)
    echo "       apt-get remove done ($(elapsed))"
    expect "apt remove: the service is stopped" test "$(ct_exec systemctl is-active "$SVC" 2>/dev/null)" != active
    expect "apt remove: the database is kept" ct_exec test -s /var/lib/private/sluice/sluice.db
    expect "apt remove: the configuration and the key are kept" ct_exec test -f /etc/sluice/sluiced.conf -a -f /etc/sluice/master.key
    out=$(ct_exec env DEBIAN_FRONTEND=noninteractive apt-get purge -y sluice 2>&1)
    echo "       apt-get purge done ($(elapsed))"
    printf '%s\n' "$out" | grep -i sluice | sed 's/^/       apt purge: /' | tail -n 8
    expect "apt purge: the configuration is gone" ct_exec test ! -e /etc/sluice/sluiced.conf -a ! -e /etc/sluice/contracts
    expect "apt purge: the database stays" ct_exec test -s /var/lib/private/sluice/sluice.db
    expect "apt purge: the master key stays (the database is unreadable without it)" ct_exec test -f /etc/sluice/master.key
    expect "apt purge: a note says so" has "$out" "/var/lib/sluice"
}
