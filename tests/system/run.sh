#!/bin/bash
# The system suite (meson suite 'system'): sluiced installed from this build and run by a real
# systemd, checked as systemd really runs it. One container (container.sh) is shared by the
# checks: the 'boot' test boots it and installs the build (meson install with DESTDIR, then a
# tar of that tree into the container), every check is its own meson test, and 'shutdown'
# powers it off. A check run on its own (meson test -C build system-send) boots and installs
# what it needs and shuts the container down again when it ends. The package check boots a
# second, fresh container (docs/systemd-notes.md, "The system suite").
#
# Usage: run.sh boot|shutdown|CHECK      (meson sets SLUICE_BUILD_ROOT, SLUICE_SOURCE_ROOT)
# Exit: 0 pass, 1 fail, 77 skip (this machine cannot boot systemd this way; the reason is printed).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${SLUICE_BUILD_ROOT:?run by meson test, which sets SLUICE_BUILD_ROOT}
source_root=${SLUICE_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
work=$build/tests/system
# One container per build directory, so that two build trees can run the suite side by side.
CT_NAME=sluice-sys-$(printf '%s' "$build" | sha256sum | cut -c1-8)
CT_DIR=$work/ct
. "$here/container.sh"
. "$here/checks.sh"

check=${1:?usage: run.sh boot|shutdown|CHECK}
# Interrupted (meson's timeout, Ctrl-C): still run the EXIT trap that powers our container off.
trap 'exit 130' INT TERM
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

skip() { echo "SKIP: $*"; exit 77; }

if [ "${SLUICE_SANITIZED:-0}" = 1 ]; then
    skip "sanitizer build: the system suite runs the release build (LeakSanitizer needs ptrace," \
         "which the unit's SystemCallFilter refuses)"
fi
why=$(ct_cannot_boot)
[ -z "$why" ] || skip "cannot boot a real systemd in private namespaces on this machine: $why"

case $check in
boot)
    # Always a fresh container: one left by an interrupted run of ours is powered off first.
    echo "booting $CT_NAME (a real systemd, $(systemctl --version | head -n 1))"
    ct_up || exit 1
    echo "systemd is running ($(elapsed)); installing the build"
    install_build || exit 1
    echo "installed ($(elapsed)): $(ct_exec "$SLUICED" --version)"
    exit 0
    ;;
shutdown)
    ct_down
    cg="$(ct_cgroup2_root)/$CT_NAME"
    if [ -d "$cg" ] || [ -e "$CT_DIR/unshare.pid" ]; then
        echo "FAIL: the container is not gone ($cg)"
        exit 1
    fi
    echo "container ended ($(elapsed))"
    exit 0
    ;;
esac

type "check_$check" >/dev/null 2>&1 || { echo "unknown check '$check'"; exit 1; }

# The shared container, or one of our own when this check runs alone.
own=0
if [ "$check" != package ]; then
    if ! ct_attach; then
        echo "no container up: booting one for this check alone"
        ct_up || exit 1
        own=1
        trap 'ct_down' EXIT
    fi
    if ! installed_is_current; then
        install_build || exit 1
    fi
    load_paths
fi

# A check counts what went wrong in $failures (its own exit status is that of its last cleanup
# command, which does not matter).
failures=0
"check_$check"
if [ "$failures" -ne 0 ]; then
    echo "--- the service's journal (last 60 lines) ---"
    ct_exec journalctl -q -u sluiced.service --no-pager -n 60 2>&1
    echo "FAILED: $failures expectation(s) of '$check' ($(elapsed))"
    exit 1
fi
echo "PASSED: $check ($(elapsed))"
exit 0
