#!/usr/bin/python3
"""The Kafka exporter refuses a topic whose partition count changed since it last wrote to it: a
record's partition follows from its key and the count, and so does resuming from the topics'
record headers. sluiced exports to a mock cluster whose topic has 2 partitions, stops, and starts
again against one whose topic has 3: the exporter stops with an error naming the topic and both
counts, sluice_export_refused is 1 (and sluicectl status says REFUSED), nothing reaches the new
topic, and the cursor stays.

usage: kafka_partitions_test.py SLUICED SLUICECTL KAFKA_MOCK_CLUSTER"""
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from sluice_daemon import Daemon, check, read_topic

sluiced, sluicectl, mock = sys.argv[1:4]
TOPIC = "sluice.acme_checkout_1_0_0"
failures = []


def start_cluster(partitions):
    proc = subprocess.Popen([mock, f"{TOPIC}:{partitions}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def count_records(bootstrap, partitions):
    return len(read_topic(bootstrap, TOPIC, partitions))


def exporter(bootstrap):
    return json.dumps({"name": "central", "type": "kafka", "contracts": ["acme/checkout/1.0.0"],
                       "properties": {"bootstrap.servers": bootstrap, "linger.ms": "5"}})


def send(daemon, count, seed):
    subprocess.run([sluicectl, "send", "--generate", str(count), "--seed", str(seed), "-e", daemon.endpoint,
                    "-n", "25", "--quiet"], check=True, timeout=120)


with tempfile.TemporaryDirectory(prefix="sluice-kafka-partitions-") as tmp:
    first, bootstrap1 = start_cluster(2)
    daemon = Daemon(sluiced, tmp, {"central.json": exporter(bootstrap1)})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics = f"127.0.0.1:{s.getsockname()[1]}"
    with open(daemon.config, "a") as f:
        f.write(f"[metrics]\nlisten = {metrics}\n")
    daemon.start()
    send(daemon, 300, 1)
    daemon.wait_exported("central")
    check(daemon.stop() == 0, "sluiced did not stop cleanly", failures)
    exported = count_records(bootstrap1, 2)
    state = daemon.query("SELECT state FROM export_cursors WHERE exporter = 'central'")[0][0]
    check(f"{TOPIC}=2" in state.split("\n"), f"the cursor does not record the partition count: {state!r}", failures)
    cursor = daemon.query("SELECT batch_id FROM export_cursors WHERE exporter = 'central'")[0][0]
    first.stdin.close()
    first.wait(timeout=30)

    # The same topic name, 3 partitions now.
    second, bootstrap2 = start_cluster(3)
    with open(f"{tmp}/exporters/central.json", "w") as f:
        f.write(exporter(bootstrap2))
    daemon.start()
    send(daemon, 100, 2)
    refused, deadline = None, time.time() + 30
    while time.time() < deadline:
        body = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=5).read().decode()
        refused = [l for l in body.splitlines() if l.startswith('sluice_export_refused{exporter="central"')]
        if refused and refused[0].endswith(" 1"):
            break
        time.sleep(0.2)
    check(refused and refused[0].endswith(" 1"), f"sluice_export_refused is not 1: {refused}", failures)
    check(f"topic {TOPIC} has 3 partitions, 2 when the exporter last wrote to it" in daemon.log(),
          "no error naming the topic and both counts in the log", failures)
    time.sleep(1.5)  # a retry would have come by now (the first backoff is 1 s)
    check(daemon.log().count("' stops: topic") == 1, "the refusal is not logged once", failures)
    status = subprocess.run([sluicectl, "status", "--metrics", f"http://{metrics}/metrics"], capture_output=True,
                            text=True, timeout=30)
    check("central (kafka): REFUSED" in status.stdout, "sluicectl status does not show the refusal: " + status.stdout,
          failures)
    check(daemon.stop() == 0, "sluiced did not stop cleanly", failures)
    check(count_records(bootstrap2, 3) == 0, "records reached the topic with the new partition count", failures)
    check(daemon.query("SELECT batch_id FROM export_cursors WHERE exporter = 'central'")[0][0] == cursor,
          "the cursor moved", failures)
    second.stdin.close()
    second.wait(timeout=30)
    print(f"kafka partitions: {exported} records to 2 partitions, then refused against 3")
    if failures:
        print(daemon.log())

print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
