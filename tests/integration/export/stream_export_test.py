#!/usr/bin/python3
"""The stream exporter against the real sluiced, read by a ZeroMQ SUB in Python (pyzmq, not
sluice's code): every committed event arrives once with its batch/index header, only after its
batch is visible in the database; `sluicectl tap` prints the same records.

usage: stream_export_test.py SLUICED SLUICECTL"""
import json
import os
import subprocess
import sys
import tempfile
import time

import zmq

from sluice_daemon import Daemon, check

sluiced, sluicectl = sys.argv[1], sys.argv[2]
failures = []
with tempfile.TemporaryDirectory(prefix="sluice-stream-") as tmp:
    endpoint = "ipc://" + os.path.join(tmp, "stream.sock")
    daemon = Daemon(sluiced, tmp, {"live.json": json.dumps({
        "name": "live", "type": "stream", "endpoint": endpoint,
        "contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"],
        "topics": {"analytics": "analytics-live"}})})
    daemon.start()
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    time.sleep(0.5)  # the subscription reaches the PUB before anything is published
    tap = subprocess.Popen([sluicectl, "tap", "--config", daemon.config, "--output", "analytics", "--limit", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    sent = subprocess.run([sluicectl, "send", "--generate", "3000", "--seed", "5", "-e", daemon.endpoint, "--quiet"])
    check(sent.returncode == 0, "sluicectl send failed", failures)
    db_events = {row[0] for row in daemon.query("SELECT seq FROM events_acme_checkout_1_0_0")}
    db_derived = {row[0] for row in daemon.query("SELECT seq FROM derived_analytics")}

    seen = {"sluice.acme_checkout_1_0_0": {}, "analytics-live": {}}
    expected = {}
    gaps = 0
    not_visible = 0
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    deadline = time.time() + 60
    while time.time() < deadline and (len(seen["sluice.acme_checkout_1_0_0"]) < len(db_events)
                                      or len(seen["analytics-live"]) < len(db_derived)):
        if not poller.poll(1000):
            continue
        topic, header, value = sub.recv_multipart()
        topic = topic.decode()
        h = json.loads(header)
        record = json.loads(value)
        seq = record["meta"]["seq"]
        seen[topic][seq] = seen[topic].get(seq, 0) + 1
        check(h["batch"] == record["meta"]["batch_id"], "header batch differs from the record's", failures)
        check(h["seq"] == seq and h["key"] == record["meta"]["key_link"], "header seq/key differ", failures)
        # Gap detection as a subscriber does it: index runs 0..count-1 within a batch.
        prev = expected.get(topic)
        if prev is not None and h["index"] != (0 if prev[1] == prev[2] else prev[1]):
            gaps += 1
        expected[topic] = (h["batch"], h["index"] + 1, h["count"])
        # Published after commit: the row is already in the database.
        table = "events_acme_checkout_1_0_0" if topic.startswith("sluice.") else "derived_analytics"
        if seq not in (db_events if table.startswith("events") else db_derived):
            if not daemon.query(f"SELECT 1 FROM {table} WHERE seq = {seq}"):
                not_visible += 1
    check(gaps == 0, f"{gaps} gaps in the batch/index sequence", failures)
    check(not_visible == 0, f"{not_visible} records published before their rows were visible", failures)
    events = seen["sluice.acme_checkout_1_0_0"]
    derived = seen["analytics-live"]
    check(set(events) == db_events, f"events: {len(events)} received, {len(db_events)} committed", failures)
    check(all(n == 1 for n in events.values()), "an event arrived twice", failures)
    check(set(derived) == db_derived, f"derived: {len(derived)} received, {len(db_derived)} committed", failures)
    try:
        out, err = tap.communicate(timeout=30)
        lines = [json.loads(line) for line in out.splitlines()]
        check(tap.returncode == 0, "sluicectl tap failed: " + err, failures)
        check(len(lines) == 5 and all(line["meta"]["output"] == "analytics" for line in lines),
              "sluicectl tap did not print 5 analytics records: " + out[:500], failures)
    except subprocess.TimeoutExpired:
        tap.kill()
        failures.append("sluicectl tap did not stop after --limit 5")
    check(daemon.stop() == 0, "sluiced did not stop cleanly: " + daemon.log(), failures)
    sub.close(0)
    ctx.term()
    print(f"stream exporter: {len(events)} events and {len(derived)} derived records received once, in order")
print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
