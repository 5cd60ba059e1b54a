#!/usr/bin/env python3
"""/verify on zips of many empty files (issue 30): the public page checks every entry of an
uploaded bundle against its SHA256SUMS, so its work must grow linearly with the entries. The
review's zip: N empty files, a SHA256SUMS listing them all, and a manifest.jws (here no
signature, so the answer is a verdict with every file listed). For each N, the time from
sending the zip to the last byte of the JSON answer and the server's CPU time for it
(/proc/<pid>/stat), median of 5 runs. Passes when 30,000 entries take at most 5 × the time
of 10,000: linear work gives 3 ×, work that grows with the square of the entries 9 ×.

    python3 tests/bench/verify.py [--portal-bin target/release/evidence-portal] [--entries 10000,30000] [--runs 5]

Run by tests/bench/run.py as one of its phases; standalone it needs only a release build.
"""
import argparse
import hashlib
import http.cookiejar
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time of the process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def zip_of_empty_files(n):
    empty = hashlib.sha256(b"").hexdigest()
    names = [f"f/{i:05d}" for i in range(n)]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("SHA256SUMS", "".join(f"{empty}  {name}\n" for name in names))
        z.writestr("manifest.jws", "not.a.signature")
        for name in names:
            z.writestr(name, b"")
    return out.getvalue()


def multipart(field, filename, data):
    boundary = "----verify-bench-" + hashlib.sha256(data[:64]).hexdigest()[:16]
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/zip\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def check(base, opener, zip_bytes, pid):
    page = opener.open(base + "/verify", timeout=30).read().decode()
    csrf = re.search(r'action="/verify\?csrf_token=([^"]+)"', page).group(1)
    body, content_type = multipart("bundle", "bundle.zip", zip_bytes)
    req = urllib.request.Request(f"{base}/verify?csrf_token={csrf}", data=body, headers={
        "Content-Type": content_type, "Accept": "application/json"})
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    try:
        with opener.open(req, timeout=600) as res:
            answer = json.loads(res.read())
    except urllib.error.HTTPError as e:  # a refusal (over the entry cap, say): said, not timed
        answer = {"refused": e.code, "body": e.read().decode(errors="replace")[:300]}
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    return wall, cpu, answer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portal-bin", default=os.path.join(ROOT, "target/release/evidence-portal"))
    ap.add_argument("--entries", default="10000,30000", help="comma-separated entry counts")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(args.portal_bin):
        sys.exit(f"{args.portal_bin} is missing: cargo build --release")
    counts = [int(n) for n in args.entries.split(",")]
    work = tempfile.mkdtemp(prefix="portal-verify-")
    port = free_port()
    env = dict(os.environ, PORTAL_DATA_DIR=os.path.join(work, "data"), PORTAL_BIND=f"127.0.0.1:{port}",
               RUST_LOG="warn")
    proc = subprocess.Popen([args.portal_bin], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, "portal.log"), "w"))
    base = f"http://127.0.0.1:{port}"
    ok = True
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        medians = {}
        for n in counts:
            zip_bytes = zip_of_empty_files(n)
            walls, cpus = [], []
            for _ in range(args.runs):
                wall, cpu, answer = check(base, opener, zip_bytes, proc.pid)
                files = answer.get("files") or []
                if len(files) != n or not all(f["ok"] for f in files):
                    print(f"{n} entries: wrong answer ({len(files)} files listed; {answer.get('refused')} "
                          f"{answer.get('body', '')})")
                    ok = False
                walls.append(wall)
                cpus.append(cpu)
            medians[n] = (statistics.median(walls), statistics.median(cpus))
            print(f"verify {n} entries: {medians[n][0]:.3f} s (server CPU {medians[n][1]:.3f} s; "
                  f"runs {', '.join(f'{w:.3f}' for w in walls)}; zip {len(zip_bytes) / 1e6:.1f} MB)", flush=True)
        if 10000 in medians and 30000 in medians:
            ratio = medians[30000][0] / medians[10000][0]
            print(f"30,000 / 10,000 entries: {ratio:.2f} × the time (linear: 3, quadratic: 9)")
            ok = ok and ratio <= 5.0
        print("PASS" if ok else "FAIL")
        sys.exit(0 if ok else 1)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
