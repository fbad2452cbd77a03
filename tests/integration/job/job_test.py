"""Batch jobs through the real sluicectl (and sluiced for --send), checked from outside.

A retail-invoice-shaped CSV with malformed rows among valid ones goes through `sluicectl job run`:
every row is accounted for (data or reject), rejects name file, line, row, column and reason and
never a PII value, the encrypted data decrypts with the keys output through Python
cryptography's AES-SIV (not the project's code), the same group gives byte-identical output and a
new group new keys, wrong job files are refused before anything is read, too many rejects fail
after the report, SIGKILL at random moments followed by a re-run gives exactly one clean run's
outputs (and the re-run says it resumed), for output files and for a SQLite target alike, while
one interrupted before the machine (as its state says) restarted starts over, and --send puts every row into a running sluiced
exactly once across a daemon kill and restart.

usage: job_test.py SLUICED SLUICECTL    (SLUICE_JOB_KILLS, SLUICE_JOB_ROWS: the kill loop's size)
"""
import base64
import contextlib
import csv
import gzip
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from sluice_daemon import Daemon, check

SLUICED, SLUICECTL = sys.argv[1], sys.argv[2]
KILLS = int(os.environ.get("SLUICE_JOB_KILLS", "3"))
KILL_ROWS = int(os.environ.get("SLUICE_JOB_ROWS", "40000"))
failures = []

CONTRACT = {
    "ref": "retail/invoice_line/1.0.0",
    "key_field": "customer_id",
    "data_subject_field": "customer_id",
    "retention_days": 365,
    "fields": {
        "invoice_no": {"type": "string", "required": True},
        "stock_code": {"type": "string", "required": True},
        "description": {"type": "string"},
        "quantity": {"type": "integer", "required": True},
        "unit_price": {"type": "number", "required": True},
        "customer_id": {"type": "string", "required": True, "pii": 1},
        "email": {"type": "string", "pii": 2, "pattern": "^[^@]+@[^@]+$"},
        "country": {"type": "string", "required": True},
    },
}
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
          "Email", "Country", "Consent"]
PII_COLUMNS = {"CustomerID": "customer_id", "Email": "email"}


def sluicectl(*args, timeout=300):
    return subprocess.run([SLUICECTL, *args], capture_output=True, text=True, timeout=timeout)


def valid_row(i):
    day = 1 + i % 28
    return [f"5{i:05d}", f"850{i % 97}B", f"WHITE HANGING HEART, T-LIGHT \"{i % 5}\"", str(1 + i % 12),
            f"12/{day}/2010 {8 + i % 10}:{i % 60:02d}", f"{2 + (i % 300) / 100:.2f}", f"C{17850 + i % 400}",
            f"buyer{i % 400}@shop.example", "United Kingdom", ["yes", "no", "analytics", ""][i % 4]]


def csv_text(rows, header=HEADER, newline="\n", bom=False):
    out = io.StringIO()
    w = csv.writer(out, lineterminator=newline)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return ("\ufeff" if bom else "") + out.getvalue()


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


def job_file(directory, name, inputs, group=None, extra=None, outputs=None):
    j = {
        "id": name,
        "contract": "retail/invoice_line/1.0.0",
        "contracts": "contract.json",
        "master_key_file": "master.key",
        "input": {"files": inputs, "format": "csv",
                  "columns": {"InvoiceNo": "invoice_no", "StockCode": "stock_code", "Description": "description",
                              "Quantity": "quantity", "UnitPrice": "unit_price", "CustomerID": "customer_id",
                              "Email": "email", "Country": "country"}},
        "timestamp": {"field": "InvoiceDate", "format": "%m/%d/%Y %H:%M", "zone": "Europe/London"},
        "consent": {"field": "Consent", "values": {"yes": [0, 1, 2], "analytics": [0, 1], "no": []}, "default": [0]},
        "outputs": outputs if outputs is not None else {
            "encrypted": f"out-{name}/events.csv",
            "keys": {"csv": f"out-{name}/keys.csv", "tink": f"out-{name}/keys.jsonl"},
            "derived": [{"name": "analytics", "type": "granular", "purposes": [1], "path": f"out-{name}/analytics.csv",
                         "mask": {"fields": ["email"], "algorithm": "hmac-sha256"}}],
            "aggregations": [{"name": "sales_by_country", "window": "1d", "group_by": ["country"],
                              "metrics": ["count", "sum(unit_price)"], "min_group_size": 1,
                              "path": f"out-{name}/sales_by_country.csv"}],
            "rejects": f"out-{name}/rejects.csv",
        },
    }
    if group:
        j["group"] = group
    j.update(extra or {})
    path = os.path.join(directory, name + ".json")
    write(path, json.dumps(j, indent=2))
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tink_key(keyset_json):
    """The AES-SIV key bytes and key id of a one-key Tink keyset (the AesSivKey proto: 0x12 0x40 key)."""
    keyset = json.loads(keyset_json)
    key = keyset["key"][0]
    proto = base64.b64decode(key["keyData"]["value"])
    assert proto[:2] == b"\x12\x40" and len(proto) == 66, proto[:2]
    return proto[2:], key["keyId"]


def decrypt(keys, key_link, text):
    key, key_id = keys[key_link]
    raw = base64.b64decode(text)
    assert raw[0] == 1 and int.from_bytes(raw[1:5], "big") == key_id, "Tink prefix"
    return AESSIV(key).decrypt(raw[5:], [b""]).decode()


def setup(directory):
    write(os.path.join(directory, "contract.json"), json.dumps(CONTRACT))
    with open(os.path.join(directory, "master.key"), "wb") as f:
        f.write(os.urandom(32))
    os.chmod(os.path.join(directory, "master.key"), 0o600)


def test_outputs(d):
    """Valid rows among malformed ones; outputs decrypt independently; groups and keys."""
    rows = [valid_row(i) for i in range(200)]
    bad = {  # row number (1-based data row) -> (row, the column the reject may name: input or field name)
        20: (["X1", "S", "D", "1", "12/1/2010 8:26", "2.5", "C9", "bad-email-leak", "United Kingdom", "yes"],
             {"Email", "email"}),
        40: (["X2", "S", "D", "many", "12/1/2010 8:26", "2.5", "C9", "x@y.z", "United Kingdom", "yes"],
             {"Quantity", "quantity"}),
        60: (["X3", "S", "D", "1", "31/12/2010 8:26", "2.5", "C9", "x@y.z", "United Kingdom", "yes"],
             {"InvoiceDate"}),
        80: (["X4", "S", "D", "1", "12/1/2010 8:26", "2.5", "", "x@y.z", "United Kingdom", "yes"],
             {"CustomerID", "customer_id"}),
        100: (["X5", "S", "D", "1", "12/1/2010 8:26", "2.5", "C9", "x@y.z", "United Kingdom", "[0, 99]"],
              {"Consent"}),
        120: (["X6", "S", "BADUTF8", "1", "12/1/2010 8:26", "2.5", "C9", "x@y.z", "United Kingdom", "yes"],
              {"Description"}),
    }
    for n, (row, _) in bad.items():
        rows.insert(n - 1, row)
    text = csv_text(rows, newline="\r\n", bom=True)
    # A row with one cell too many, as the last line of the file (unquoted, so it parses as a row).
    text += "X7,S,D,1,12/1/2010 8:26,2.5,C9,x@y.z,United Kingdom,yes,surplus\r\n"
    write(os.path.join(d, "invoices.csv"), text.encode().replace(b"BADUTF8", b"caf\xe9"), "wb")
    total = len(rows) + 1
    job = job_file(d, "invoices", "invoices.csv", group="g1")
    r = sluicectl("job", "run", job, "--json")
    check(r.returncode == 0, f"job run exits 0: {r.returncode} {r.stderr}", failures)
    summary = json.loads(r.stdout)
    check(summary["rows"] == total, f"rows {summary['rows']} == {total}", failures)
    check(summary["rejected"] == len(bad) + 1, f"rejected {summary['rejected']} == {len(bad) + 1}", failures)
    out = os.path.join(d, "out-invoices")
    events = read_csv(os.path.join(out, "events.csv"))
    rejects = read_csv(os.path.join(out, "rejects.csv"))
    check(len(events) + len(rejects) == total, "every row is data or a reject, once", failures)
    by_row = {int(x["row"]): x for x in rejects}
    for n, (_, column) in bad.items():
        x = by_row.get(n)
        check(x is not None and x["column"] in column and x["reason"] and x["file"].endswith("invoices.csv")
              and int(x["line"]) == n + 1, f"reject of row {n}: {x}", failures)
    check(total in by_row and by_row[total]["reason"], f"the row with a surplus cell is rejected: {rejects}", failures)
    reject_text = open(os.path.join(out, "rejects.csv")).read()
    for leak in ("bad-email-leak", "99", "C9", "x@y.z", "caf"):
        check(leak not in reject_text, f"no value of a row in the rejects ({leak})", failures)
    encrypted_text = open(os.path.join(out, "events.csv")).read()
    check("@shop.example" not in encrypted_text and "C17850" not in encrypted_text,
          "no PII in clear in the encrypted data", failures)

    # Decrypt with the keys CSV (and the Tink JSON lines give the same keys).
    keys = {k["keyLink"]: tink_key(k["encryptionKey"]) for k in read_csv(os.path.join(out, "keys.csv"))}
    with open(os.path.join(out, "keys.jsonl")) as f:
        tink_lines = [json.loads(line) for line in f if line.strip()]
    check(len(tink_lines) == len(keys), f"keys.jsonl has {len(tink_lines)} keys, keys.csv {len(keys)}", failures)
    valid_by_invoice = {r[0]: r for r in rows if not r[0].startswith("X")}
    decrypted = 0
    for e in events:
        src = valid_by_invoice[e["invoice_no"]]
        check(e["key_link"] in keys, f"key {e['key_link']} is in the keys output", failures)
        if e["key_link"] not in keys:
            continue
        check(decrypt(keys, e["key_link"], e["customer_id"]) == src[6], "customer_id decrypts", failures)
        check(decrypt(keys, e["key_link"], e["email"]) == src[7], "email decrypts", failures)
        decrypted += 2
    check(decrypted == 2 * len(valid_by_invoice), f"decrypted {decrypted} values", failures)
    # One key per customer and UTC day.
    days = {(r[6], r[4].split(" ")[0]) for r in valid_by_invoice.values()}
    check(len(keys) == len(days), f"{len(keys)} keys for {len(days)} customer-days", failures)
    sales = read_csv(os.path.join(out, "sales_by_country.csv"))
    check(sum(int(x["count"]) for x in sales) == len(valid_by_invoice), f"the aggregation counts every row: {sales}",
          failures)
    check(abs(sum(float(x["sum_unit_price"]) for x in sales) - sum(float(r[5]) for r in valid_by_invoice.values()))
          < 1e-6, "the aggregation sums unit_price", failures)
    check(sales and all(x["final"] == "1" and x["complete"] == "1" for x in sales),
          f"a job's windows are final and complete: {sales}", failures)
    analytics = read_csv(os.path.join(out, "analytics.csv"))
    consented = [r for r in valid_by_invoice.values() if r[9] in ("yes", "analytics")]
    check(len(analytics) == len(consented), f"derived rows {len(analytics)} == consented {len(consented)}", failures)
    check(all("@" not in a["email"] for a in analytics), "the derived output masks email", failures)
    check(all(a["customer_id"].startswith("C") for a in analytics), "level-1 PII in clear where consent allows",
          failures)

    # The same input in the same group: byte-identical encrypted data. An existing output is refused.
    first = open(os.path.join(out, "events.csv"), "rb").read()
    first_keys = open(os.path.join(out, "keys.csv"), "rb").read()
    mtime = os.stat(os.path.join(out, "events.csv")).st_mtime_ns
    r = sluicectl("job", "run", job)
    check(r.returncode == 78 and "exist" in r.stderr and "--force" in r.stderr, f"existing output refused: {r.returncode} {r.stderr}", failures)
    check(os.stat(os.path.join(out, "events.csv")).st_mtime_ns == mtime, "the refused run left the output", failures)
    r = sluicectl("job", "run", job, "--force")
    check(r.returncode == 0, f"re-run with --force: {r.stderr}", failures)
    check(open(os.path.join(out, "events.csv"), "rb").read() == first, "same group: byte-identical", failures)
    check(open(os.path.join(out, "keys.csv"), "rb").read() == first_keys,
          "same group: the keys output byte-identical (keys reused, not made)", failures)
    # The same file gzip-compressed reads the same.
    with open(os.path.join(d, "invoices.csv"), "rb") as f:
        write(os.path.join(d, "invoices.csv.gz"), gzip.compress(f.read()), "wb")
    r = sluicectl("job", "run", job_file(d, "invoices-gz", "invoices.csv.gz", group="g1"))
    check(r.returncode == 0, f"gzip input: {r.stderr}", failures)
    check(open(os.path.join(d, "out-invoices-gz", "events.csv"), "rb").read() == first, "gzip: the same output",
          failures)
    job2 = job_file(d, "invoices-g2", "invoices.csv", group="g2")
    r = sluicectl("job", "run", job2)
    check(r.returncode == 0, f"new group: {r.stderr}", failures)
    keys2 = {k["keyLink"] for k in read_csv(os.path.join(d, "out-invoices-g2", "keys.csv"))}
    check(not (keys2 & set(keys)), "a new group gets new keys", failures)
    events2 = read_csv(os.path.join(d, "out-invoices-g2", "events.csv"))
    check(len(events2) == len(events) and all(a["email"] != b["email"] for a, b in zip(events, events2)),
          "a new group encrypts differently", failures)


def test_refusals(d):
    """Wrong job files are refused before any row is read; too many rejects fail after the report."""
    write(os.path.join(d, "small.csv"), csv_text([valid_row(i) for i in range(10)]))
    cases = {
        "unknown key": {"extra": {"colour": "blue"}},
        "missing contract": {"extra": {"contract": "retail/nothing/1.0.0"}},
        "unknown output": {"outputs": {"encrypted": "x.csv", "sideways": "y.csv"}},
    }
    for name, kw in cases.items():
        job = job_file(d, "refused", "small.csv", **kw)
        r = sluicectl("job", "run", job)
        check(r.returncode == 78, f"{name}: exit {r.returncode} {r.stderr}", failures)
        check(not os.path.exists(os.path.join(d, "out-refused")) and not os.path.exists(os.path.join(d, "x.csv")),
              f"{name}: nothing written", failures)
        check(not os.path.exists(os.path.join(d, ".refused.sluice-job")), f"{name}: no work directory", failures)
    r = sluicectl("job", "check", job_file(d, "checked", "small.csv"))
    check(r.returncode == 0 and not os.path.exists(os.path.join(d, "out-checked")), f"check: {r.stderr}", failures)

    rows = [valid_row(i) for i in range(50)]
    for i in range(0, 50, 5):
        rows[i][3] = "NaN-ish"
    write(os.path.join(d, "dirty.csv"), csv_text(rows))
    job = job_file(d, "dirty", "dirty.csv", extra={"max_reject_share": 0.1})
    r = sluicectl("job", "run", job)
    check(r.returncode == 65 and "reject" in r.stderr, f"20% rejects fail the job: {r.returncode} {r.stderr}",
          failures)
    out = os.path.join(d, "out-dirty")
    check(os.path.exists(os.path.join(out, "rejects.csv")) and len(read_csv(os.path.join(out, "rejects.csv"))) == 10,
          "the rejects report is written", failures)
    check(not os.path.exists(os.path.join(out, "events.csv")), "no data output when the job fails", failures)


def outputs_of(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))}


def kill_at_random(job, seconds, seed, checkpoint_db):
    """Runs `sluicectl job run JOB --force` KILLS times, each killed (SIGKILL) at a random moment
    of a run that takes `seconds`, the last once `checkpoint_db` holds a checkpoint (so that the
    next run resumes, however slowly the killed runs started on a busy machine); how many of them
    said they resumed."""
    rng = random.Random(seed)
    resumed = 0
    for k in range(KILLS - 1):
        p = subprocess.Popen([SLUICECTL, "job", "run", job, "--force", "--progress", "lines"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.1, 1.0) * seconds + 0.02)
        p.send_signal(signal.SIGKILL)
        resumed += "resum" in p.communicate()[1]
    killed_after_checkpoint(job, checkpoint_db)
    return resumed


def test_kill9(d):
    """SIGKILL at random moments, then a run to the end: exactly one clean run's outputs."""
    write(os.path.join(d, "big.csv"), csv_text([valid_row(i) for i in range(KILL_ROWS)]))
    extra = {"chunk_rows": 500}
    # A third of the keys first, in the same group (the rows repeat their customer and day every
    # 2800 rows): the clean run below then makes two keys in three and reuses the third within
    # every chunk; the killed runs reuse them all. The keys output must still be the same bytes.
    write(os.path.join(d, "third.csv"), csv_text([valid_row(i) for i in range(0, 2800, 3)]))
    r = sluicectl("job", "run", job_file(d, "third", "third.csv", group="kill", extra=extra))
    check(r.returncode == 0, f"a third of the rows: {r.stderr}", failures)
    clean = job_file(d, "clean", "big.csv", group="kill", extra=extra)
    r = sluicectl("job", "run", clean, "--json")
    check(r.returncode == 0, f"clean run: {r.stderr}", failures)
    seconds = max(json.loads(r.stdout)["seconds"], 0.05)
    expected = outputs_of(os.path.join(d, "out-clean"))
    # The killed job writes elsewhere but uses the same group: its outputs must be the same bytes.
    killed = job_file(d, "killed", "big.csv", group="kill", extra=extra)
    resumed = kill_at_random(killed, seconds, 12, os.path.join(d, ".killed.sluice-job", "work.db"))
    r = sluicectl("job", "run", killed, "--force", "--json")
    check(r.returncode == 0, f"run after kills: {r.stderr}", failures)
    resumed += json.loads(r.stdout)["resumed"]
    got = outputs_of(os.path.join(d, "out-killed"))
    check(got.keys() == expected.keys(), f"the same outputs: {list(got)} vs {list(expected)}", failures)
    for name in expected:
        check(got.get(name) == expected[name], f"{name} is byte for byte the clean run's", failures)
    check(resumed > 0, "a run after a kill resumed from a checkpoint and said so", failures)
    check(not [n for n in os.listdir(os.path.join(d, "out-killed")) if n not in expected],
          "no partial file left beside the outputs", failures)


def database_rows(path):
    """What a job's SQLite target holds, without what differs between runs (received_at: the
    run's start)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
        table = c.execute("SELECT table_name FROM contracts").fetchone()[0]
        columns = [r[1] for r in c.execute(f'PRAGMA table_info("{table}")') if r[1] != "received_at"]
        return {
            "events": c.execute(f'SELECT {", ".join(columns)} FROM "{table}" ORDER BY seq').fetchall(),
            "keys": c.execute("SELECT key_link, key_id, wrapped, expires_at FROM keys ORDER BY key_link").fetchall(),
            "subjects": c.execute("SELECT subject, key_link FROM key_subjects ORDER BY subject, key_link").fetchall(),
            "journal_mode": c.execute("PRAGMA journal_mode").fetchone()[0],
            "integrity": c.execute("PRAGMA integrity_check").fetchone()[0],
        }


def test_database(d):
    """A SQLite target (written with a rollback journal while the job runs, published in WAL
    mode): killed at random moments and run again, it holds exactly one clean run's rows and keys."""
    write(os.path.join(d, "db.csv"), csv_text([valid_row(i) for i in range(KILL_ROWS)]))
    extra = {"chunk_rows": 500}
    r = sluicectl("job", "run", job_file(d, "dbclean", "db.csv", group="db", extra=extra,
                                         outputs={"database": "out-dbclean/target.db"}), "--json")
    check(r.returncode == 0, f"clean run: {r.stderr}", failures)
    seconds = max(json.loads(r.stdout)["seconds"], 0.05)
    expected = database_rows(os.path.join(d, "out-dbclean", "target.db"))
    check(len(expected["events"]) == KILL_ROWS, f"every row is in the target: {len(expected['events'])}", failures)
    check(expected["keys"] and expected["subjects"], "the target has the keys and their subjects", failures)
    check(expected["journal_mode"] == "wal", f"published in WAL mode: {expected['journal_mode']}", failures)
    check(expected["integrity"] == "ok", f"integrity_check: {expected['integrity']}", failures)
    killed = job_file(d, "dbkilled", "db.csv", group="db", extra=extra, outputs={"database": "out-dbkilled/target.db"})
    resumed = kill_at_random(killed, seconds, 13, os.path.join(d, "out-dbkilled", ".target.db.sluice-partial"))
    r = sluicectl("job", "run", killed, "--force", "--json")
    check(r.returncode == 0, f"run after kills: {r.stderr}", failures)
    resumed += r.returncode == 0 and json.loads(r.stdout)["resumed"]
    leftover = sorted(os.listdir(os.path.join(d, "out-dbkilled")))  # before reading it makes -wal and -shm
    got = database_rows(os.path.join(d, "out-dbkilled", "target.db"))
    for part in expected:
        check(got[part] == expected[part], f"the target's {part} are the clean run's", failures)
    check(resumed > 0, "a run after a kill resumed from a checkpoint", failures)
    check(leftover == ["target.db"],
          f"nothing beside the target: {leftover}", failures)


def test_key_directory(d):
    """A key directory far smaller than the job's keys: days of keys leave it and are read back,
    every customer-day still has one key, and the output is the bytes of a run with room for all."""
    rows = [valid_row(i) for i in range(5600)]  # 2800 customer-days, each twice; the days interleave
    write(os.path.join(d, "days.csv"), csv_text(rows))
    extra = {"chunk_rows": 700}
    small = job_file(d, "days-small", "days.csv", group="days", extra={**extra, "key_directory_entries": 1000})
    r = sluicectl("job", "run", small, "--json")
    check(r.returncode == 0, f"small key directory: {r.stderr}", failures)
    s = json.loads(r.stdout)
    check(s["key_days_dropped"] > 0 and s["key_days_read"] > s["key_days_dropped"],
          f"days of keys were dropped and read again: {s['key_days_read']} read, {s['key_days_dropped']} dropped",
          failures)
    out = os.path.join(d, "out-days-small")
    by_invoice = {r[0]: r for r in rows}
    link_of = {}
    for e in read_csv(os.path.join(out, "events.csv")):
        src = by_invoice[e["invoice_no"]]
        pair = (src[6], src[4].split(" ")[0])
        check(link_of.setdefault(pair, e["key_link"]) == e["key_link"], f"one key for {pair}", failures)
    keys = read_csv(os.path.join(out, "keys.csv"))
    check(len(link_of) == 2800 and len(keys) == 2800 and s["keys_created"] == 2800,
          f"{len(keys)} keys ({s['keys_created']} made) for {len(link_of)} customer-days", failures)
    check({k["keyLink"] for k in keys} == set(link_of.values()), "the keys output has the data's keys", failures)

    big = job_file(d, "days-big", "days.csv", group="days", extra=extra)
    r = sluicectl("job", "run", big, "--json")
    check(r.returncode == 0, f"default key directory: {r.stderr}", failures)
    s = json.loads(r.stdout)
    check(s["key_days_dropped"] == 0 and s["keys_created"] == 0, f"nothing dropped, nothing made: {s}", failures)
    for name in ("events.csv", "keys.csv", "analytics.csv"):
        check(open(os.path.join(out, name), "rb").read() ==
              open(os.path.join(d, "out-days-big", name), "rb").read(), f"{name}: the same bytes", failures)


def killed_after_checkpoint(job, db):
    """Starts `sluicectl job run JOB --force`, kills it (SIGKILL) once its work database `db` holds
    a checkpoint; whether it was killed before finishing."""
    p = subprocess.Popen([SLUICECTL, "job", "run", job, "--force"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while p.poll() is None and time.time() < deadline:
        try:
            # Closed here, not left to the garbage collector (a sqlite3 connection's `with` does
            # not close it): a connection still open on a partial target already back in WAL mode
            # made the next run's switch to a rollback journal fail with "database is locked".
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as c:
                if c.execute("SELECT 1 FROM sluice_meta WHERE key = 'job_checkpoint'").fetchone():
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    return p.wait() == -signal.SIGKILL


def test_other_boot(d):
    """A run interrupted on an earlier boot of the machine is not resumed: its work files were
    written without fsync, so its checkpoint may not have reached the disk. The next run says so,
    starts over and gives one clean run's outputs; interrupted on this boot, it resumes."""
    write(os.path.join(d, "boot.csv"), csv_text([valid_row(i) for i in range(KILL_ROWS)]))
    extra = {"chunk_rows": 500}
    r = sluicectl("job", "run", job_file(d, "bootclean", "boot.csv", group="boot", extra=extra))
    check(r.returncode == 0, f"clean run: {r.stderr}", failures)
    expected = outputs_of(os.path.join(d, "out-bootclean"))
    job = job_file(d, "boot", "boot.csv", group="boot", extra=extra)
    workdir = os.path.join(d, ".boot.sluice-job")
    check(killed_after_checkpoint(job, os.path.join(workdir, "work.db")), "the run was killed after a checkpoint", failures)
    state_path = os.path.join(workdir, "state.json")
    state = json.load(open(state_path))
    with open("/proc/sys/kernel/random/boot_id") as f:
        check(state.get("boot_id") == f.read().strip(), "the state names this boot", failures)
    state["boot_id"] = "00000000-0000-0000-0000-000000000000"  # as if the machine had restarted
    write(state_path, json.dumps(state))
    r = sluicectl("job", "run", job, "--force", "--json")
    check(r.returncode == 0, f"run after the 'restart': {r.stderr}", failures)
    check("before the machine last started" in r.stderr and "starting over" in r.stderr,
          f"the run says why it starts over: {r.stderr}", failures)
    check(r.returncode == 0 and not json.loads(r.stdout)["resumed"], "it did not resume", failures)
    got = outputs_of(os.path.join(d, "out-boot"))
    check(got.keys() == expected.keys(), f"the same outputs: {list(got)} vs {list(expected)}", failures)
    for name in expected:
        check(got.get(name) == expected[name], f"{name} is byte for byte the clean run's", failures)
    check(killed_after_checkpoint(job, os.path.join(workdir, "work.db")), "killed after a checkpoint again", failures)
    r = sluicectl("job", "run", job, "--force", "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["resumed"], f"on this boot it resumes: {r.stderr}", failures)
    got = outputs_of(os.path.join(d, "out-boot"))
    for name in expected:
        check(got.get(name) == expected[name], f"{name} after the resumed run is the clean run's", failures)


def test_send(d):
    """--send: every row into the live daemon exactly once, across a daemon kill and restart."""
    daemon = Daemon(SLUICED, os.path.join(d, "daemon"), {})
    daemon.start()
    header = ["session_id", "customer_id", "email", "country", "total", "items", "ts", "consent"]
    n = 3000
    rows = [[f"s-{i}", f"c-{i % 50}", f"u{i % 50}@x.example", "GB", f"{i % 90}.5", str(i % 7),
             str(1_790_000_000_000 + i * 1000), "yes"] for i in range(n)]
    rows[10][3] = "england"  # the contract wants two capitals: rejected, by the job or the daemon
    write(os.path.join(d, "send.csv"), csv_text(rows, header))
    job = {
        "id": "send", "contract": "acme/checkout/1.0.0",
        "input": {"files": "send.csv", "format": "csv"},
        "timestamp": {"field": "ts", "format": "epoch_ms"},
        "consent": {"field": "consent", "values": {"yes": [0, 1, 2]}, "default": []},
        "outputs": {"rejects": "send-rejects.csv"},
    }
    write(os.path.join(d, "send.json"), json.dumps(job))
    endpoint = daemon.endpoint
    p = subprocess.Popen([SLUICECTL, "job", "run", os.path.join(d, "send.json"), "--send", endpoint,
                          "--events-per-message", "100", "--timeout", "1s", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    daemon.kill9()
    time.sleep(0.5)
    daemon.start()
    out, err = p.communicate(timeout=120)
    check(p.returncode in (0, 75), f"send across a restart: {p.returncode} {err}", failures)
    if p.returncode != 0:
        r = sluicectl("job", "run", os.path.join(d, "send.json"), "--send", endpoint, "--force", "--json")
        check(r.returncode == 0, f"send again: {r.stderr}", failures)
    r = sluicectl("job", "run", os.path.join(d, "send.json"), "--send", endpoint, "--force", "--json")
    check(r.returncode == 0, f"send once more: {r.stderr}", failures)
    again = json.loads(r.stdout) if r.returncode == 0 else {}
    check(again.get("duplicates") == n - 1, f"a repeated send: every row a duplicate, applied zero times: {again}",
          failures)
    count = daemon.query("SELECT count(*) FROM events_acme_checkout_1_0_0")[0]
    check(count[0] == n - 1, f"{count[0]} events in the daemon, {n - 1} valid rows", failures)
    daemon.stop()


def main():
    d = tempfile.mkdtemp(prefix="sluice-job-test-")
    try:
        setup(d)
        for test in (test_outputs, test_refusals, test_key_directory, test_kill9, test_database, test_other_boot,
                     test_send):
            start = time.time()
            before = len(failures)
            try:
                test(d)
            except Exception as e:  # a crash in a test is a failure of it, the others still run
                import traceback
                traceback.print_exc()
                failures.append(f"{test.__name__}: {e!r}")
            print(f"{test.__name__}: {'ok' if len(failures) == before else 'FAILED'} ({time.time() - start:.1f} s)")
    finally:
        if failures:
            print(f"kept {d} for inspection")
        else:
            shutil.rmtree(d, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)


main()
