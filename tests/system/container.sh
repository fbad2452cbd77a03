# shellcheck shell=bash
# A real systemd (the host's /lib/systemd/systemd, v252 on Debian 12) booted as PID 1 of private
# pid, mount, cgroup, uts, ipc and net namespaces, on a throw-away overlay of the host's root file
# system: units run under it as they run on a host (Type=notify, WatchdogSec=, DynamicUser=,
# LoadCredential=, SystemCallFilter=, ProtectSystem=, ...). Sourced by run.sh; the method is the
# one of /work/shared/recipes/real-systemd.md (docs/systemd-notes.md, "The system suite").
#
# Set before sourcing:
#   CT_DIR   a directory of ours: scripts, pid files, console log (created; removed by ct_down)
#   CT_NAME  the name of the container: its cgroup directory, hostname and container= value
#
# What it touches on the host, and nothing else:
#   * $CT_DIR;
#   * one cgroup v2 directory, $CT_CGROUP (<cgroup2 root>/$CT_NAME): the root of the
#     container's cgroup namespace. ct_down removes it.
# Every mount is made inside the new mount namespace and goes away with it; the overlay's upper
# layer is a tmpfs, so whatever the container writes is thrown away. /proc/sys and /sys are
# read-only inside, and the capabilities that reach kernel-global state (modules, clock, raw
# I/O, ...) are dropped from the bounding set. Only processes this file started are ever killed,
# by the pids it recorded.

ct_cgroup2_root() {
    if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        echo /sys/fs/cgroup                 # a pure cgroup v2 host
    elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
        echo /sys/fs/cgroup/unified         # a hybrid host (v1 controllers + v2 for systemd)
    fi
}

# Prints why this machine cannot boot systemd this way, or nothing if it can.
ct_cannot_boot() {
    [ "$(id -u)" -eq 0 ] || { echo "not root (needs CAP_SYS_ADMIN for namespaces and mounts)"; return; }
    [ -x /lib/systemd/systemd ] || { echo "no /lib/systemd/systemd (package systemd)"; return; }
    local tool
    for tool in unshare nsenter setpriv systemctl journalctl; do
        command -v "$tool" >/dev/null 2>&1 || { echo "no $tool (util-linux / systemd)"; return; }
    done
    [ -n "$(ct_cgroup2_root)" ] || { echo "no cgroup2 hierarchy mounted (systemd needs one)"; return; }
    grep -qw overlay /proc/filesystems || { echo "the kernel has no overlay file system"; return; }
    unshare --mount --pid --fork --cgroup --uts --ipc --net --propagation private true 2>/dev/null ||
        { echo "cannot create pid/mount/cgroup/net namespaces here (a restricted container?)"; return; }
}

ct_pid1() { cat "$CT_DIR/pid" 2>/dev/null; }

# True while the systemd we booted is alive: the recorded pid is still a child of the recorded
# unshare, is called systemd and lives in another mount namespace (a recycled pid is never taken
# for ours).
ct_alive() {
    local u p
    u=$(cat "$CT_DIR/unshare.pid" 2>/dev/null) || return 1
    p=$(ct_pid1) || return 1
    [ -n "$u" ] && [ -n "$p" ] || return 1
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] || return 1
    grep -qw "$p" "/proc/$u/task/$u/children" 2>/dev/null || return 1
    [ "$(readlink "/proc/$p/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]
}

# The start time (clock ticks after boot) of process $1, read with builtins only.
ct_start_time() {
    local stat
    read -r -a stat <"/proc/$1/stat" 2>/dev/null || return 1
    echo "${stat[21]}"
}

# Checks once (ct_alive) that the container runs and remembers its PID 1 and that process's
# start time; ct_exec then only compares the start time, which is cheap.
ct_attach() {
    CT_P1="" CT_P1_START=""
    ct_alive || return 1
    CT_P1=$(ct_pid1)
    CT_P1_START=$(ct_start_time "$CT_P1")
}

# Runs a command inside the container (every namespace of its PID 1). Refuses unless ct_attach
# found our systemd and that very process still runs: a stale pid must never lead a command into
# the host's namespaces.
ct_exec() {
    local stat
    if [ -z "${CT_P1:-}" ] || ! read -r -a stat <"/proc/$CT_P1/stat" 2>/dev/null ||
        [ "${stat[21]}" != "$CT_P1_START" ]; then
        echo "ct_exec: the container $CT_NAME is not running" >&2
        return 125
    fi
    nsenter -t "$CT_P1" -a -- "$@"
}

ct_write_files() {
    mkdir -p "$CT_DIR/units"
    : >"$CT_DIR/console.log"
    # The boot target: sysinit and basic (journald, tmpfiles, sysusers), none of the host's
    # enabled services.
    cat >"$CT_DIR/units/$CT_NAME.target" <<EOF
[Unit]
Description=sluice system tests: minimal boot target
Wants=basic.target systemd-journald.service
After=basic.target
AllowIsolate=yes
EOF
    # PID 1 of the new pid namespace: builds the root, pivots into it, execs systemd.
    cat >"$CT_DIR/inner.sh" <<'EOF'
#!/bin/sh
set -eu
B=$1; NAME=$2; R=$B/root
mkdir -p "$B/rw" "$B/lower" "$R"
mount -t tmpfs -o mode=755 "$NAME-rw" "$B/rw"                   # overlay upper + work: RAM
mkdir -p "$B/rw/upper" "$B/rw/work"
mount --bind / "$B/lower"                                        # the root fs only, no submounts
mount -o remount,bind,ro "$B/lower"
mount -t overlay "$NAME-root" -o "lowerdir=$B/lower,upperdir=$B/rw/upper,workdir=$B/rw/work" "$R"
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys" && mount -o remount,bind,ro "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 -o nsdelegate cgroup2 "$R/sys/fs/cgroup"       # our cgroup namespace's root
mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"
for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
touch "$R/dev/console"; mount --bind "$B/console.log" "$R/dev/console"   # never the host's console
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
cp "$B/units/"* "$R/etc/systemd/system/"
# No generators: they turn the host's own fstab, init.d scripts, gettys... into units, which have
# no business here, and they make every daemon-reload take a second instead of a few tenths.
mkdir -p "$R/etc/systemd/system-generators"
for g in "$R"/lib/systemd/system-generators/* "$R"/usr/lib/systemd/system-generators/*; do
    if [ -e "$g" ]; then ln -sf /dev/null "$R/etc/systemd/system-generators/${g##*/}"; fi
done
echo "$NAME" >"$R/etc/hostname"
cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
# systemd leaves propagation alone when container= is set, and unshare made everything
# private; LoadCredential='s mount (made in a child namespace) needs shared propagation.
mount --make-rshared /
exec setpriv --bounding-set -sys_module,-sys_time,-sys_rawio,-mac_admin,-mac_override,-syslog,-wake_alarm,-block_suspend,-sys_pacct,-audit_control,-audit_read \
  env -i container="$NAME" TERM=dumb /lib/systemd/systemd --unit="$NAME.target"
EOF
    chmod +x "$CT_DIR/inner.sh"
}

# Boots the container; returns once systemd reports "running" (or fails with the reason).
ct_up() {
    CT_CGROUP="$(ct_cgroup2_root)/$CT_NAME"
    if [ -e "$CT_DIR/unshare.pid" ]; then
        ct_down                                 # left over from an interrupted run of ours
    fi
    mkdir -p "$CT_DIR"
    ct_write_files
    mkdir -p "$CT_CGROUP"
    # A shell moves itself into the new cgroup, then unshares: the new cgroup namespace is
    # rooted there.
    setsid sh -c "echo \$\$ > '$CT_CGROUP/cgroup.procs' && exec unshare --mount --pid --fork --cgroup --uts --ipc --net --propagation private '$CT_DIR/inner.sh' '$CT_DIR' '$CT_NAME'" \
        >"$CT_DIR/outer.log" 2>&1 </dev/null &
    echo $! >"$CT_DIR/unshare.pid"
    local u=$! p="" i
    for i in $(seq 150); do
        p=$(awk '{print $1}' "/proc/$u/task/$u/children" 2>/dev/null || true)
        [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && break
        p=""
        kill -0 "$u" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$p" ]; then
        echo "systemd did not start:"; cat "$CT_DIR/outer.log"
        return 1
    fi
    echo "$p" >"$CT_DIR/pid"
    ct_attach || { echo "systemd ended right after it started:"; cat "$CT_DIR/outer.log"; return 1; }
    for i in $(seq 150); do ct_exec test -S /run/systemd/private 2>/dev/null && break; sleep 0.1; done
    local state
    state=$(ct_exec timeout 60 systemctl is-system-running --wait 2>&1 || true)
    if [ "$state" != running ]; then
        echo "container systemd state '$state' (wanted 'running'):"
        ct_exec systemctl --failed --no-pager 2>&1 || true
        return 1
    fi
    # A container left behind by an interrupted run powers itself off after 15 minutes.
    ct_exec systemd-run --quiet --on-active=15min --timer-property=AccuracySec=1s \
        systemctl poweroff --no-block >/dev/null 2>&1 || true
}

# Ends the container and removes what ct_up made on the host. Nothing in it is worth an orderly
# shutdown (its whole file system is thrown away), so its PID 1 gets SIGKILL, which ends every
# process of its pid namespace at once: 2-3 s quicker than `systemctl poweroff`.
ct_down() {
    CT_CGROUP="$(ct_cgroup2_root)/$CT_NAME"
    local u i
    u=$(cat "$CT_DIR/unshare.pid" 2>/dev/null || true)
    if [ -n "$u" ] && [ -e "/proc/$u" ] && grep -qF "$CT_DIR/inner.sh" "/proc/$u/cmdline" 2>/dev/null; then
        if ct_attach; then
            kill -KILL "$CT_P1" 2>/dev/null || true
        fi
        for i in $(seq 50); do kill -0 "$u" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$u" 2>/dev/null || true
        for i in $(seq 20); do kill -0 "$u" 2>/dev/null || break; sleep 0.1; done
    fi
    # Only empty cgroups can be removed: bottom-up.
    if [ -d "$CT_CGROUP" ]; then
        find "$CT_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ ! -d "$CT_CGROUP" ] || echo "warning: $CT_CGROUP is still there" >&2
    fi
    rm -f "$CT_DIR/unshare.pid" "$CT_DIR/pid"
}
