"""A real sluiced in a temporary directory, for the exporter tests written in Python."""
import os
import re
import signal
import sqlite3
import subprocess
import time


class Daemon:
    def __init__(self, sluiced, directory, exporters):
        """`exporters`: {file name: JSON text} written into DIR/exporters."""
        self.sluiced = sluiced
        self.dir = directory
        self.state = os.path.join(directory, "state")
        os.makedirs(self.state, exist_ok=True)
        os.makedirs(os.path.join(directory, "exporters"), exist_ok=True)
        with open(os.path.join(self.state, "master.key"), "wb") as f:
            f.write(os.urandom(32))
        os.chmod(os.path.join(self.state, "master.key"), 0o600)
        self.endpoint = "ipc://" + os.path.join(directory, "router.sock")
        self.config = os.path.join(directory, "sluiced.conf")
        with open(self.config, "w") as f:
            f.write(f"[service]\nstate_dir = {self.state}\nworkers = 2\n"
                    f"[ingest]\nrouter = {self.endpoint}\n"
                    "[batch]\nmax_delay = 20ms\n"
                    "[privacy]\nmaster_key_file = master.key\n"
                    f"[pipeline]\ncontracts = builtin:\npipelines = builtin:\n"
                    f"exporters = {os.path.join(directory, 'exporters')}\n"
                    # Batches in pieces of 7 rowids: kills and checks meet a batch half handed over.
                    "[testing]\nexport_piece_rows = 7\n")
        for name, text in exporters.items():
            with open(os.path.join(directory, "exporters", name), "w") as f:
                f.write(text)
        self.log_path = os.path.join(directory, "sluiced.log")
        self.proc = None
        self.database = os.path.join(self.state, "sluice.db")

    def start(self, timeout=30):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.sluiced, "--config", self.config], stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b" ready: " in f.read():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("sluiced exited: " + self.log())
            time.sleep(0.05)
        raise RuntimeError("sluiced did not get ready: " + self.log())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()[-6000:]

    def query(self, sql):
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def wait_exported(self, exporter, timeout=60):
        """Until the exporter's cursor reached the last committed batch."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            last = self.query("SELECT max(id) FROM batches")[0][0] or 0
            cur = self.query(f"SELECT batch_id FROM export_cursors WHERE exporter = '{exporter}'")
            if cur and cur[0][0] >= last:
                return
            time.sleep(0.1)
        raise RuntimeError(f"exporter {exporter} did not catch up: " + self.log())


def check(condition, message, failures):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def read_topic(bootstrap, topic, partitions, timeout=60):
    """Every record of a Kafka topic from the beginning, read by python3-confluent-kafka (a client
    that is not sluice's) until the end of each partition: (partition, key, value, {header:
    text}), each partition's records in order."""
    import random
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING, KafkaError
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{random.random()}",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records, done, deadline = [], set(), time.time() + timeout
    while len(done) < partitions and time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                done.add(m.partition())
                continue
            raise RuntimeError(str(m.error()))
        headers = {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}
        records.append((m.partition(), m.key(), m.value(), headers))
    c.close()
    return records
