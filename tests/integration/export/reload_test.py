#!/usr/bin/python3
"""An exporter changed by a reload (SIGHUP) goes on from where the one it replaces stopped: a file
exporter whose directory changes writes to the new directory only what the old one had not made
durable. The old exporter's last position is still on its way to the database (the writer writes
cursors with its next commit) when the new one starts.

usage: reload_test.py SLUICED SLUICECTL"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from sluice_daemon import Daemon, check


def exporter(directory, interval):
    return json.dumps({"name": "lake", "type": "file", "contracts": ["acme/checkout/1.0.0"],
                       "directory": directory, "interval": interval})


def records(directory):
    seqs = []
    for path in glob.glob(os.path.join(directory, "lake-*.jsonl")):
        with open(path) as f:
            seqs += [json.loads(line)["meta"]["seq"] for line in f]
    return seqs


sluiced, sluicectl = sys.argv[1], sys.argv[2]
failures = []
with tempfile.TemporaryDirectory(prefix="sluice-reload-") as tmp:
    daemon = Daemon(sluiced, tmp, {"lake.json": exporter("export/a", "60s")})
    daemon.start()
    send = [sluicectl, "send", "--generate", "200", "-e", daemon.endpoint, "-n", "25", "--quiet"]
    check(subprocess.run(send + ["--seed", "1"], timeout=120).returncode == 0, "sluicectl send failed", failures)
    time.sleep(0.5)  # the exporter has read the batches; its file stays open (60 s interval)

    # Changed: the old exporter closes its file (durable: its position moves only now) and stops,
    # the new one starts at once.
    with open(os.path.join(tmp, "exporters", "lake.json"), "w") as f:
        f.write(exporter("export/b", "200ms"))
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 30
    while time.time() < daemon.log().count("exporter 'lake' (file) starts") < 2 and time.time() < deadline:
        time.sleep(0.1)
    check(subprocess.run(send + ["--seed", "2"], timeout=120).returncode == 0, "sluicectl send failed", failures)
    daemon.wait_exported("lake")
    check(daemon.stop() == 0, "sluiced did not stop cleanly", failures)

    events = sorted(row[0] for row in daemon.query("SELECT seq FROM events_acme_checkout_1_0_0"))
    a = records(os.path.join(daemon.state, "export", "a"))
    b = records(os.path.join(daemon.state, "export", "b"))
    print(f"{len(events)} events; {len(a)} records in export/a, {len(b)} in export/b")
    check(len(events) == 400, f"{len(events)} events committed, not 400", failures)
    check(len(a) == 200, f"export/a holds {len(a)} records, not the first 200", failures)
    check(sorted(a + b) == events, "export/a and export/b together do not hold every event exactly once "
          f"({len(a) + len(b)} records, {len(set(a) & set(b))} in both)", failures)
    starts = [line for line in daemon.log().splitlines() if "exporter 'lake' (file) starts after batch" in line]
    check(len(starts) == 2 and not starts[1].endswith("starts after batch 0"),
          "the changed exporter did not start after the old one's last batch: " + " | ".join(starts), failures)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("ok")
