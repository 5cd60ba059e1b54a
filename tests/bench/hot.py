#!/usr/bin/env python3
"""The audited request path under load, on chosen cores (issue 19): the 20 KiB material and the
case page of two materials, with wrk -t2 -c64, the portal pinned with taskset to 1, 2, … cores.

    python3 tests/bench/hot.py                       # 1 and 2 cores (or --cores 1,2,16)
    python3 tests/bench/hot.py --cores 2 --seconds 10 --perf target/hot.perf.data
    python3 tests/bench/hot.py --database-url postgres://postgres@127.0.0.1:5432/hot   # PostgreSQL

Embedded defaults (SQLite + a local directory), or PostgreSQL with --database-url (the database
is dropped and created afresh; the store stays a local directory), a demo data set with one served case of two
released materials, the demo party signed in. The portal runs on cores 0..n-1 (taskset); wrk
runs on the cores left, or shares them when there are none (said in the table). Each figure is
the median of --runs runs; the portal's peak RSS (VmHWM) is reset before each. Prints a table and
writes JSON beside run.py's results. Standard library only.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the shared helpers: Portal, Browser, wrk, …)

ROOT = run.ROOT
MIB = run.MIB


def prepare(binary, work, env_extra):
    files = os.path.join(work, "files")
    os.makedirs(files)
    small = os.path.join(files, "s00.jpg")
    pdf = os.path.join(files, "survey.pdf")
    with open(small, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        f.write(os.urandom(20 * 1024 - 20))
    with open(pdf, "wb") as f:
        f.write(b"%PDF-1.4\n" + os.urandom(64 * 1024))
    portal = run.Portal(binary, work)
    portal.env.update(env_extra)
    subprocess.run([binary, "demo"], env=portal.env, check=True, capture_output=True)
    portal.start()
    staff = run.Browser(portal.base, os.path.join(work, "staff.cookies"))
    staff.sign_in(run.STAFF)
    case_id = run.open_case(staff, "2026-9101")
    small_id, _ = run.upload(portal, staff, case_id, small, "scene_photo")
    run.release(staff, case_id, small_id)
    pdf_id, _ = run.upload(portal, staff, case_id, pdf, "survey_record")
    run.release(staff, case_id, pdf_id)
    run.serve_case(staff, case_id)
    party = run.Browser(portal.base, os.path.join(work, "party.cookies"))
    party.sign_in(run.PARTY)
    portal.stop()
    return portal, {
        "case_page": f"/cases/{case_id}",
        "material_20k": f"/cases/{case_id}/materials/{small_id}/download",
    }, party.cookie_header()


def pinned(cmd, cpus):
    return ["taskset", "-c", cpus] + cmd if cpus else cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", default="1,2", help="portal core counts to measure, e.g. 1,2,16")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--portal-bin", default=os.path.join(ROOT, "target/release/evidence-portal"))
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL database to use instead of SQLite (dropped and re-created)")
    ap.add_argument("--perf", default=None, help="record a perf profile of one 20 KiB run here")
    ap.add_argument("--json", default=os.path.join(ROOT, "tests/bench/results/hot.json"))
    args = ap.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run tests/bench/setup.sh")
    total = os.cpu_count()
    work = tempfile.mkdtemp(prefix="portal-hot-")
    results = {}
    portal = None
    try:
        env = {}
        if args.database_url:
            fresh_database(args.database_url)
            env["PORTAL_DATABASE_URL"] = args.database_url
        portal, paths, cookie = prepare(args.portal_bin, work, env)
        for n in [int(c) for c in args.cores.split(",")]:
            if n > total:
                print(f"skipping {n} cores: this machine has {total}", flush=True)
                continue
            cpus = f"0-{n - 1}"
            wrk_cpus = f"{n}-{total - 1}" if n < total else None
            proc_cmd = pinned([portal.binary], cpus)
            t0 = time.time()
            portal.proc = subprocess.Popen(proc_cmd, env=portal.env, stdout=subprocess.DEVNULL,
                                           stderr=open(os.path.join(work, "portal.log"), "ab"))
            run.wait_http(portal.base + "/healthz")
            # Warm up: statement caches, the page cache, the first thumbnails.
            run.wrk(portal.base + paths["case_page"], 2, cookie, wrk_cpus)
            run.wrk(portal.base + paths["material_20k"], 2, cookie, wrk_cpus)
            for name, path in paths.items():
                figures = []
                for i in range(args.runs):
                    run.reset_peak(portal.pid)
                    perf = None
                    if args.perf and name == "material_20k" and i == 0 and n == 2:
                        perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p",
                                                 str(portal.pid), "-o", args.perf],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    rps, p99, errors = run.wrk(portal.base + path, args.seconds, cookie, wrk_cpus)
                    if perf:
                        perf.send_signal(2)
                        perf.wait()
                    figures.append((rps, p99, errors, run.rss(portal.pid, "VmHWM:") / MIB))
                results.setdefault(name, {})[n] = {
                    "rps": statistics.median(f[0] for f in figures),
                    "p99_ms": statistics.median(f[1] for f in figures),
                    "errors": sum(f[2] for f in figures),
                    "peak_rss_mib": max(f[3] for f in figures),
                    "wrk_cores": wrk_cpus or f"shared {cpus}",
                }
                r = results[name][n]
                print(f"{name:>13} on {n:>2} core(s): {r['rps']:>9,.0f} req/s  p99 {r['p99_ms']:6.1f} ms"
                      f"  errors {r['errors']}  peak RSS {r['peak_rss_mib']:.1f} MiB  (wrk on {r['wrk_cores']})",
                      flush=True)
            portal.stop()
    finally:
        if portal is not None:
            portal.stop()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": total,
                   "database": "postgresql" if args.database_url else "sqlite",
                   "seconds": args.seconds, "runs": args.runs, "results": results}, f, indent=2)
    print(f"written to {args.json}")


def fresh_database(url):
    """Drops and creates the database named in `url` (psql on the same server's `postgres`)."""
    import urllib.parse
    u = urllib.parse.urlparse(url)
    name = u.path.lstrip("/")
    admin = u._replace(path="/postgres").geturl()
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True, capture_output=True)


if __name__ == "__main__":
    main()
