#!/usr/bin/python3
"""CPU per record of exporters catching up (docs/performance.md, "With exporters").

    sluicectl bench --duration 4 --warmup 1 --keep      # prints nothing about it: the database is
                                                        # the newest /tmp/sluice-bench-* directory
    export_catchup.py --db DIR --sluiced A/sluiced --sluiced B/sluiced --rounds 3 \\
        --mock-cluster build/tests/integration/export/kafka_mock_cluster [--exporters kafka]

Per run: a copy of DIR/state (the bench's database and master key), a daemon on it with no ingest
and only the exporters named (each with a new cursor, from the beginning; Kafka to a
kafka_mock_cluster process of its own with the bench's topics), until every exporter's
sluice_export_lag_batches is 0. Prints the CPU of the exporter threads (export-*) and of
librdkafka's (rdk:*) per record handed to the sinks, the wall time, the daemon's peak RSS and the
load average. The binaries alternate (A B A B ...), so each is measured in the same minutes;
medians at the end."""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOPICS = ["sluice.acme_checkout_1_0_0:4", "sluice.analytics:4", "sluice.revenue_by_country:4"]
SOURCES = '"contracts": ["acme/checkout/1.0.0"], "outputs": ["analytics"], "aggregations": ["revenue_by_country"]'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exporter_json(kind, bootstrap):
    if kind == "kafka":
        return f'{{"name": "kafka", "type": "kafka", {SOURCES}, "properties": {{"bootstrap.servers": "{bootstrap}"}}}}'
    if kind == "file":
        return (f'{{"name": "files", "type": "file", {SOURCES}, "directory": "export", "compression": "zstd", '
                f'"interval": "500ms"}}')
    return f'{{"name": "stream", "type": "stream", {SOURCES}, "endpoint": "tcp://127.0.0.1:{free_port()}"}}'


def thread_cpu(pid):
    """{tid: (name, CPU seconds)} of the process's threads."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def metric_values(text, name):
    return [float(v) for v in re.findall(r"^" + name + r"\{[^}]*\} (\S+)", text, re.M)]


def run_once(sluiced, args):
    run = tempfile.mkdtemp(prefix="sluice-catchup-")
    cluster = None
    try:
        os.makedirs(f"{run}/state")
        os.makedirs(f"{run}/exporters")
        for name in ("sluice.db", "master.key"):
            shutil.copy(f"{args.db}/state/{name}", f"{run}/state/{name}")
        os.chmod(f"{run}/state/master.key", 0o600)
        bootstrap = ""
        if "kafka" in args.exporters:
            cluster = subprocess.Popen([args.mock_cluster] + TOPICS, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True)
            bootstrap = cluster.stdout.readline().strip()
        for kind in args.exporters:
            with open(f"{run}/exporters/{kind}.json", "w") as f:
                f.write(exporter_json(kind, bootstrap))
        metrics = f"127.0.0.1:{free_port()}"
        with open(f"{run}/sluiced.conf", "w") as f:
            f.write(f"[service]\nstate_dir = {run}/state\n[ingest]\npull = tcp://127.0.0.1:{free_port()}\n"
                    f"router = tcp://127.0.0.1:{free_port()}\n[privacy]\nmaster_key_file = master.key\n"
                    f"[pipeline]\ncontracts = builtin:\npipelines = builtin:\nexporters = exporters\n"
                    f"[metrics]\nlisten = {metrics}\n")
        load = os.getloadavg()[0]
        start = time.time()
        daemon = subprocess.Popen([sluiced, "--config", f"{run}/sluiced.conf"], stdout=subprocess.DEVNULL,
                                  stderr=open(f"{run}/sluiced.log", "w"))
        seen, peak, records = {}, 0, 0.0
        try:
            while True:
                time.sleep(0.2)
                if daemon.poll() is not None:
                    sys.exit(f"{sluiced} exited: " + open(f"{run}/sluiced.log").read()[-2000:])
                seen.update(thread_cpu(daemon.pid))
                try:
                    status = open(f"/proc/{daemon.pid}/status").read()
                    peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
                    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=2).read().decode()
                except (OSError, AttributeError):
                    continue
                lags = metric_values(text, "sluice_export_lag_batches")
                records = sum(metric_values(text, "sluice_export_records_total"))
                if len(lags) == len(args.exporters) and max(lags) == 0 and records > 0:
                    break
            wall = time.time() - start
            seen.update(thread_cpu(daemon.pid))
        finally:
            daemon.terminate()
            daemon.wait()
        exporters = sum(cpu for name, cpu in seen.values() if name.startswith("export-"))
        rdkafka = sum(cpu for name, cpu in seen.values() if name.startswith("rdk:"))
        return {"us": 1e6 * (exporters + rdkafka) / records, "rdk": 1e6 * rdkafka / records, "records": records,
                "wall": wall, "rss": peak / 1024, "load": (load, os.getloadavg()[0])}
    finally:
        if cluster:
            cluster.stdin.close()
            cluster.wait()
        shutil.rmtree(run, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="a directory kept by sluicectl bench --keep")
    p.add_argument("--sluiced", action="append", required=True, help="a daemon binary (repeatable: alternated)")
    p.add_argument("--mock-cluster", default="build/tests/integration/export/kafka_mock_cluster")
    p.add_argument("--exporters", default="kafka", help="kafka,file,stream (any of them)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    args.exporters = args.exporters.split(",")
    results = {s: [] for s in args.sluiced}
    for _ in range(args.rounds):
        for sluiced in args.sluiced:
            r = run_once(sluiced, args)
            results[sluiced].append(r)
            print(f"{sluiced}: {r['records']:.0f} records, {r['us']:.2f} us of CPU per record (rdk:* {r['rdk']:.2f}), "
                  f"wall {r['wall']:.1f} s, peak RSS {r['rss']:.1f} MiB, load {r['load'][0]:.1f}-{r['load'][1]:.1f}",
                  flush=True)
    for sluiced, rs in results.items():
        print(f"median {sluiced}: {statistics.median(r['us'] for r in rs):.2f} us per record "
              f"(rdk:* {statistics.median(r['rdk'] for r in rs):.2f}), wall {statistics.median(r['wall'] for r in rs):.1f} s")


if __name__ == "__main__":
    main()
