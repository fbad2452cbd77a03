#!/usr/bin/python3
"""The Kafka exporter resumes exactly once from topics written before its records carried the one
`sluice` header ("<batch>,<seq>,<source>"; three headers sluice-batch, sluice-seq and
sluice-source before). sluiced exports three sends to a mock cluster and stops; the records of
its first batches are copied, with the old headers, to the same partitions of a second cluster
(what an older sluiced left there); sluiced starts against the second cluster with its cursor
back at 0, as after a crash that lost the cursor's progress. Every event must then be in the
second cluster exactly once: the copied records are skipped (read back from the old headers),
the others produced with the new header. Read by python3-confluent-kafka.

usage: kafka_headers_test.py SLUICED SLUICECTL KAFKA_MOCK_CLUSTER"""
import json
import sqlite3
import subprocess
import sys
import tempfile

from confluent_kafka import Producer

from sluice_daemon import Daemon, check, read_topic

sluiced, sluicectl, mock = sys.argv[1:4]
TOPIC = "sluice.acme_checkout_1_0_0"
PARTITIONS = 2
failures = []


def start_cluster():
    proc = subprocess.Popen([mock, f"{TOPIC}:{PARTITIONS}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def read_all(bootstrap):
    return read_topic(bootstrap, TOPIC, PARTITIONS)


def exporter(bootstrap):
    return json.dumps({"name": "central", "type": "kafka", "contracts": ["acme/checkout/1.0.0"],
                       "properties": {"bootstrap.servers": bootstrap, "linger.ms": "5"}})


with tempfile.TemporaryDirectory(prefix="sluice-kafka-headers-") as tmp:
    first, bootstrap1 = start_cluster()
    daemon = Daemon(sluiced, tmp, {"central.json": exporter(bootstrap1)})
    daemon.start()
    for seed in (1, 2, 3):
        subprocess.run([sluicectl, "send", "--generate", "150", "--seed", str(seed), "-e", daemon.endpoint,
                        "-n", "25", "--quiet"], check=True, timeout=120)
        daemon.wait_exported("central")
    check(daemon.stop() == 0, "sluiced did not stop cleanly", failures)
    written = read_all(bootstrap1)
    first.stdin.close()
    first.wait(timeout=30)
    batches = sorted({int(h["sluice"].split(",")[0]) for _, _, _, h in written})
    check(len(batches) >= 2, f"the events went out in {len(batches)} batch(es); the test needs several", failures)
    cut = batches[(len(batches) - 1) // 2]  # batches up to this one are in the topic already

    # What an older sluiced left in the topic: the same records, the old headers.
    second, bootstrap2 = start_cluster()
    producer = Producer({"bootstrap.servers": bootstrap2, "enable.idempotence": True})
    copied = 0
    for partition, key, value, headers in written:
        batch, seq, source = headers["sluice"].split(",", 2)
        if int(batch) <= cut:
            producer.produce(TOPIC, value=value, key=key, partition=partition,
                             headers=[("sluice-batch", batch), ("sluice-seq", seq), ("sluice-source", source)])
            copied += 1
    check(producer.flush(30) == 0, "the copies were not all acknowledged", failures)
    with open(f"{tmp}/exporters/central.json", "w") as f:
        f.write(exporter(bootstrap2))
    db = sqlite3.connect(daemon.database)
    db.execute("UPDATE export_cursors SET batch_id = 0 WHERE exporter = 'central'")
    db.commit()
    db.close()
    daemon.start()
    daemon.wait_exported("central")
    check(daemon.stop() == 0, "sluiced did not stop cleanly the second time", failures)
    check(f"the topics hold records up to batch {cut}" in daemon.log(),
          f"the exporter did not say it found batch {cut} in the topic", failures)

    events = {r[0] for r in daemon.query("SELECT seq FROM events_acme_checkout_1_0_0")}
    seqs, old, new = {}, 0, 0
    for partition, key, value, headers in read_all(bootstrap2):
        if "sluice" in headers:
            seq = int(headers["sluice"].split(",")[1])
            new += 1
        else:
            seq = int(headers["sluice-seq"])
            old += 1
        check(json.loads(value)["meta"]["seq"] == seq, f"record {seq}: its value is another event's", failures)
        seqs[seq] = seqs.get(seq, 0) + 1
    second.stdin.close()
    second.wait(timeout=30)
    repeated = sum(1 for n in seqs.values() if n > 1)
    missing = len(events - set(seqs))
    extra = len(set(seqs) - events)
    check(repeated == 0 and missing == 0 and extra == 0,
          f"{repeated} repeated, {missing} missing, {extra} extra of {len(events)} events", failures)
    check(old == copied and copied > 0 and new > 0,
          f"{old} records with the old headers ({copied} copied), {new} with the new one", failures)
    print(f"kafka headers: {len(events)} events in {len(batches)} batches; {copied} with the old headers up to "
          f"batch {cut} skipped, {new} produced with the new one")
    if failures:
        print(daemon.log())

print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
