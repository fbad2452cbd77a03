#!/usr/bin/python3
"""The Kafka exporter against librdkafka's mock cluster (a fixture process), read by
python3-confluent-kafka (a client that is not sluice's): every committed event, derived row and
final window is in its topic exactly once, across kill -9 of sluiced at random moments and a
broker that goes away and comes back; each record's key is its key link; the keys topic holds
each data key and, after `sluicectl forget`, a tombstone for each shredded key link.

usage: kafka_export_test.py SLUICED SLUICECTL KAFKA_MOCK_CLUSTER
SLUICE_KAFKA_KILLS and SLUICE_KAFKA_EVENTS size the run (the slow suite runs a long one)."""
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING, KafkaError

from sluice_daemon import Daemon, check

sluiced, sluicectl, mock = sys.argv[1:4]
kills = int(os.environ.get("SLUICE_KAFKA_KILLS", "4"))
total = int(os.environ.get("SLUICE_KAFKA_EVENTS", "8000"))
# librdkafka's mock cluster keeps at most 5 MiB per partition and drops the oldest records beyond
# that: a long run spreads over more partitions so that every record stays (~4 MiB at most each).
scale = max(1, -(-total // 15000))
TOPICS = {"sluice.acme_checkout_1_0_0": 3 * scale, "analytics": 2 * scale, "sluice.revenue_by_country": 1,
          "sluice.keys": 2 * scale}
# Event times 45 ms apart (6 minutes for 8,000 events), the last one when sending starts: the
# 1-minute windows of revenue_by_country (allowed_lateness 30 s) become final while the run goes.
span_ms = total * 45
failures = []

cluster = subprocess.Popen([mock] + [f"{t}:{n}" for t, n in TOPICS.items()], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
bootstrap = cluster.stdout.readline().strip()


def broker(command):
    cluster.stdin.write(command + "\n")
    cluster.stdin.flush()
    cluster.stdout.readline()


def consume_all():
    """Every record of every topic, from the beginning, read until the end of each partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{random.random()}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t, n in TOPICS.items() for p in range(n)]
    c.assign(parts)
    records = {t: [] for t in TOPICS}
    done = set()
    deadline = time.time() + 120
    while len(done) < len(parts) and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                done.add((m.topic(), m.partition()))
                continue
            raise RuntimeError(str(m.error()))
        headers = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        records[m.topic()].append((m.partition(), m.key().decode() if m.key() else None, m.value(), headers))
    c.close()
    return records


with tempfile.TemporaryDirectory(prefix="sluice-kafka-") as tmp:
    exporter = {
        "name": "central", "type": "kafka",
        "contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"], "aggregations": ["revenue_by_country"],
        "keys": True, "topics": {"analytics": "analytics"},
        "properties": {"bootstrap.servers": bootstrap, "linger.ms": "20"}}
    daemon = Daemon(sluiced, tmp, {"central.json": json.dumps(exporter)})
    daemon.start()
    sender = subprocess.Popen([sluicectl, "send", "--generate", str(total), "--seed", "9", "-e", daemon.endpoint,
                               "-n", "25", "--window", "8", "--timeout", "500ms", "--producer-id", "kafka-test",
                               "--event-time-span", f"{span_ms}ms", "--quiet"])
    kills_done = 0
    broker_bounced = False
    while sender.poll() is None and (kills_done < kills or not broker_bounced):
        time.sleep(random.uniform(0.3, 0.9))
        if not broker_bounced and kills_done == kills // 2:
            broker("down")  # the broker goes away while records are in flight, and comes back
            time.sleep(2.5)
            broker("up")
            broker_bounced = True
            continue
        if kills_done < kills:
            daemon.kill9()
            kills_done += 1
            daemon.start()
    check(sender.wait(timeout=300) == 0, "sluicectl send did not get every request acknowledged", failures)
    check(kills_done >= min(kills, 2), f"only {kills_done} kills happened while sending", failures)
    daemon.wait_exported("central")

    # Forget a subject while the exporter runs: tombstones for its key links.
    victims = [r[0] for r in daemon.query("SELECT key_link FROM keys WHERE kind = 'data' ORDER BY id LIMIT 3")]
    forget = subprocess.run([sluicectl, "forget", "--config", daemon.config] +
                            [a for link in victims for a in ("--key-link", link)], capture_output=True, text=True)
    shredded = set()
    for (links,) in daemon.query("SELECT key_links FROM shred_log"):
        shredded.update(l for l in links.split("\n") if l)
    deadline = time.time() + 30
    while time.time() < deadline:
        cur = daemon.query("SELECT shred_id FROM export_cursors WHERE exporter = 'central'")
        last = daemon.query("SELECT coalesce(max(id), 0) FROM shred_log")[0][0]
        if cur and cur[0][0] >= last:
            break
        time.sleep(0.1)
    check(daemon.stop() == 0, "sluiced did not stop cleanly", failures)

    records = consume_all()
    db_events = {r[0]: r[1] for r in daemon.query("SELECT seq, key_link FROM events_acme_checkout_1_0_0")}
    db_derived = {r[0] for r in daemon.query("SELECT seq FROM derived_analytics")}
    db = sqlite3.connect(f"file:{daemon.database}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    db_windows = {(r["window_start_ms"], r["country"]): dict(r)
                  for r in db.execute("SELECT * FROM revenue_by_country WHERE final = 1")}
    db.close()
    db_keys = {r[0] for r in daemon.query("SELECT key_link FROM keys WHERE kind = 'data'")}

    def position(headers, source):
        """(batch, seq) from a record's `sluice` header, "<batch>,<seq>,<source>"."""
        batch, seq, named = headers["sluice"].split(",", 2)
        check(named == source, f"a record of {source} has the header {headers['sluice']!r}", failures)
        return int(batch), int(seq)

    def once(topic, expected, source):
        seqs = {}
        for partition, key, value, headers in records[topic]:
            if key in shredded and topic == "analytics":
                continue  # exported before forget deleted the derived row (forget reaches Kafka as tombstones)
            batch, seq = position(headers, source)
            meta = json.loads(value)["meta"]
            if (batch, seq) != (meta["batch_id"], meta["seq"]):
                failures.append(f"{topic}: header {headers['sluice']!r}, meta {meta}")
                break
            seqs[seq] = seqs.get(seq, 0) + 1
        repeated = sum(1 for n in seqs.values() if n > 1)
        missing = len(set(expected) - set(seqs))
        extra = len(set(seqs) - set(expected))
        check(repeated == 0 and missing == 0 and extra == 0,
              f"{topic}: {repeated} repeated, {missing} missing, {extra} extra of {len(expected)}", failures)
        return seqs

    once("sluice.acme_checkout_1_0_0", db_events, "acme/checkout/1.0.0")
    once("analytics", db_derived, "analytics")
    for partition, key, value, headers in records["sluice.acme_checkout_1_0_0"]:
        event = json.loads(value)
        if key != event["meta"]["key_link"] or db_events.get(event["meta"]["seq"]) != key:
            failures.append("an event's message key is not its key link")
            break
    # Final windows: every row of the aggregation's view with final = 1 is in the topic once, with
    # the same values, keyed by its group values; no other window is. All but the last ~2 minutes
    # of event time must be final, so the comparison is never of nothing with nothing.
    check(len({start for start, country in db_windows}) >= span_ms // 60000 - 2,
          f"only {len(db_windows)} final windows in the database for {span_ms // 60000} minutes of events", failures)
    windows = {}
    for partition, key, value, headers in records["sluice.revenue_by_country"]:
        w = json.loads(value)
        meta = w.pop("meta")
        k = (w["window_start_ms"], w["country"])
        windows[k] = windows.get(k, 0) + 1
        check(meta.get("aggregation") == "revenue_by_country" and isinstance(meta.get("batch_id"), int),
              f"window {k}: meta {meta} does not name the aggregation and a batch", failures)
        check(position(headers, "revenue_by_country") == (meta.get("batch_id"), w["window_start_ms"]),
              f"window {k}: header {headers['sluice']!r}, meta {meta}", failures)
        check(k not in db_windows or w == db_windows[k],
              f"window {k}: {w} in the topic, {db_windows.get(k)} in the database", failures)
        check(key == json.dumps([w["country"]]), f"window {k}: message key {key!r} is not its group values", failures)
    repeated = sum(1 for n in windows.values() if n > 1)
    missing = len(set(db_windows) - set(windows))
    extra = len(set(windows) - set(db_windows))
    check(repeated == 0 and missing == 0 and extra == 0,
          f"sluice.revenue_by_country: {repeated} repeated, {missing} missing, {extra} extra of "
          f"{len(db_windows)} final windows", failures)

    key_records = [(key, value, headers) for partition, key, value, headers in records["sluice.keys"]]
    data_keys = {}
    for key, value, headers in key_records:
        if value is not None:
            position(headers, "keys")
            keyset = json.loads(value)
            check(keyset["key"][0]["keyData"]["typeUrl"].endswith("AesSivKey"), "not a Tink keyset", failures)
            data_keys[key] = data_keys.get(key, 0) + 1
    check(set(data_keys) >= db_keys, f"keys topic: {len(set(db_keys) - set(data_keys))} data keys missing", failures)
    check(all(n == 1 for n in data_keys.values()), "a key was produced twice to the keys topic", failures)
    check(forget.returncode == 0, "sluicectl forget failed: " + forget.stderr, failures)
    check(len(shredded) > 0, "forget shredded nothing", failures)
    tombstones = {key: i for i, (key, value, headers) in enumerate(key_records) if value is None}
    for link in shredded:
        positions = [i for i, (key, value, headers) in enumerate(key_records) if key == link and value is not None]
        check(link in tombstones, f"no tombstone for shredded key link {link}", failures)
        if link in tombstones and positions:
            check(tombstones[link] > max(positions), f"the tombstone of {link} comes before its key", failures)
    print(f"kafka exporter: {len(db_events)} events, {len(db_derived)} derived rows, {len(windows)} windows, "
          f"{len(data_keys)} keys, {len(tombstones)} tombstones; {kills_done} kills and a broker outage")
    if failures:
        print(daemon.log())

cluster.stdin.close()
cluster.wait(timeout=30)
print(f"{1 if not failures else 0} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
