#!/usr/bin/env python3
"""The portal measured against nginx and dufs, side by side, in one run (issue 10, DESIGN §7).

    bash tests/bench/setup.sh          # nginx, wrk, dufs, a release build of the portal
    python3 tests/bench/run.py         # full run (~20 min on 2 cores); --quick for a smoke run

Everything runs on 127.0.0.1 in a temporary directory that is removed at the end. The portal is
the release build with its embedded defaults (SQLite + a local object directory), loaded through
its own upload path; nginx (sendfile on, access_log off) and dufs serve the same files. Contenders
alternate (A B C A B C …); each figure is the median and min–max of the runs. The portal's peak
RSS during each measurement is VmHWM (reset through /proc/<pid>/clear_refs).
Prints one table with ratios and the DESIGN §7 targets, and writes it as JSON.
Standard library only; transfers are timed with curl, load with wrk.
"""

import argparse
import http.cookiejar
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1024 * 1024
STAFF = ("demo.wangli", "Demo-Staff-河桥-2026")
# The demo officer's authenticator key (src/demo.rs STAFF_TOTP_SECRET).
DEMO_TOTP_SECRET = b"demo-officer-totp-01"


def totp(secret, at=None):
    """RFC 6238 with SHA-1, 6 digits, 30-second steps: what an authenticator app shows."""
    import hashlib
    import hmac
    import struct
    step = int((time.time() if at is None else at) // 30)
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"
PARTY = ("110101199003070011", "Demo-Party-甲-2026")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# ---------------------------------------------------------------------------- data set

def make_data(base, quick):
    """Random (incompressible) files whose first bytes sniff as their type."""
    block = os.urandom(64 * MIB)
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    pdf = b"%PDF-1.4\n"
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    counter = [0]

    def write(path, head, size):
        with open(path, "wb") as f:
            f.write(head)
            left = size - len(head)
            off = (counter[0] * 7919 * 4096) % (len(block) - MIB)
            counter[0] += 1
            while left > 0:
                n = min(left, len(block) - off)
                f.write(block[off:off + n])
                left -= n
                off = 0
        return path

    scale = 8 if quick else 1
    os.makedirs(os.path.join(base, "case"), exist_ok=True)
    os.makedirs(os.path.join(base, "small"), exist_ok=True)
    big = write(os.path.join(base, "big.mp4"), mp4, 512 * MIB // scale)
    case = []
    for i in range(150):
        case.append(write(os.path.join(base, "case", f"photo{i:03}.jpg"), jpeg, 100_000 + i * 37))
    for i in range(40):
        case.append(write(os.path.join(base, "case", f"record{i:02}.pdf"), pdf, 2 * MIB // scale))
    for i in range(10):
        case.append(write(os.path.join(base, "case", f"video{i}.mp4"), mp4, (80 + 2 * i) * MIB // scale))
    small = [write(os.path.join(base, "small", f"s{i:02}.jpg"), jpeg, 20 * 1024) for i in range(50)]
    return big, case, small


# ---------------------------------------------------------------------------- the portal

class Browser:
    """A signed-in browser: cookies, CSRF tokens, forms, and a cookie file for curl."""

    def __init__(self, base, jar_path):
        self.base = base
        self.jar = http.cookiejar.MozillaCookieJar(jar_path)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())

    def request(self, path, data=None, headers=None):
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=120) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def csrf(self, path):
        _, _, body = self.request(path)
        m = re.search(rb'name="csrf_token" value="([^"]+)"', body)
        if not m:
            raise RuntimeError(f"no CSRF token on {path}")
        return m.group(1).decode()

    def post(self, path, fields, csrf_from):
        fields = dict(fields, csrf_token=self.csrf(csrf_from))
        data = urllib.parse.urlencode(fields).encode()
        return self.request(path, data, {"Content-Type": "application/x-www-form-urlencoded"})

    def sign_in(self, who):
        status, headers, _ = self.post("/login", {"identifier": who[0], "password": who[1]}, "/login")
        if status != 303:
            raise RuntimeError(f"sign-in of {who[0]} answered {status}")
        if headers.get("location", "").startswith("/staff"):
            # The demo officer's second factor: the code of the demo's authenticator key.
            status, _, _ = self.request("/login/second-factor")
            if status != 404:  # a portal from before the second factor (--portal-bin) has none
                status, _, _ = self.post("/login/second-factor",
                                         {"code": totp(DEMO_TOTP_SECRET), "next": ""},
                                         "/login/second-factor")
                if status != 303:
                    raise RuntimeError(f"the second factor of {who[0]} answered {status}")
        self.jar.save(ignore_discard=True, ignore_expires=True)

    def cookie_header(self):
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def settle():
    """Flush what the previous phase left dirty (2.5 GB of uploads, say) before the next one, so
    the kernel's write-back does not land in another measurement's fsyncs."""
    os.sync()
    time.sleep(1.0)


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


class Portal:
    def __init__(self, binary, work):
        self.binary = binary
        self.data = os.path.join(work, "portal-data")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, PORTAL_DATA_DIR=self.data, PORTAL_BIND=f"127.0.0.1:{self.port}",
                        RUST_LOG="warn")
        self.proc = None
        self.work = work

    def start(self):
        t0 = time.time()
        self.proc = subprocess.Popen([self.binary], env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.work, "portal.log"), "ab"))
        wait_http(self.base + "/healthz")
        return time.time() - t0

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def pid(self):
        return self.proc.pid


def upload(portal, staff, case_id, path, kind):
    csrf = staff.csrf(f"/staff/cases/{case_id}")
    out = subprocess.run(
        ["curl", "-sS", "-H", f"Cookie: {staff.cookie_header()}", "-H", f"X-CSRF-Token: {csrf}",
         "-H", "Accept: application/json", "-F", f"kind={kind}",
         "-F", f"title={os.path.basename(path)}", "-F", f"file=@{path}",
         "-o", "-", "-w", "\n%{http_code} %{time_total}",
         f"{portal.base}/staff/cases/{case_id}/materials"],
        capture_output=True, check=True)
    body, _, tail = out.stdout.rpartition(b"\n")
    code, secs = tail.decode().split()
    if code != "201":
        raise RuntimeError(f"upload of {path} answered {code}: {body[:300]!r}")
    return json.loads(body)["id"], float(secs)


def open_case(staff, number):
    status, headers, _ = staff.post("/staff/cases", {
        "case_number": number, "occurred_at": "2026-11-20T08:30", "place": "基准测试路口",
        "summary": "基准测试", "fatal": "on"}, "/staff/cases/new")
    if status != 303:
        raise RuntimeError(f"opening case {number}: {status}")
    case_id = headers["location"].rsplit("/", 1)[-1]
    staff.post(f"/staff/cases/{case_id}/parties", {
        "label": "甲", "name": "张伟", "id_kind": "citizen_id", "identifier": PARTY[0],
        "mobile": "13800138000", "role": "driver"}, f"/staff/cases/{case_id}")
    return case_id


def serve_case(staff, case_id):
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    status, _, body = staff.post(f"/staff/cases/{case_id}/status", {
        "to": "served", "service_kind": "determination", "served_on": today,
        "confirmed": "yes"},  # the confirmation page's answer (service starts the review clock)
        f"/staff/cases/{case_id}")
    if status != 303:
        raise RuntimeError(f"serving case: {status} {body[:200]!r}")


def release(staff, case_id, material_id):
    status, _, _ = staff.post(f"/staff/cases/{case_id}/materials/{material_id}/release", {},
                              f"/staff/cases/{case_id}")
    if status != 303:
        raise RuntimeError(f"release answered {status}")


# ---------------------------------------------------------------------------- peers

def nginx(work, name, http_body):
    """nginx on a free loopback port with `http_body` inside `http {}` (which must `listen` on
    `{port}`), its prefix, logs and temp paths under `work`; returns the process and its base URL."""
    port = free_port()
    prefix = os.path.join(work, name)
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 2;
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}/body;
  proxy_temp_path {prefix}/proxy; fastcgi_temp_path {prefix}/fcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;
{http_body.replace("{port}", str(port))}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", prefix, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    return proc, base


def start_nginx(work, root):
    os.makedirs(os.path.join(root, "upload"), exist_ok=True)
    proc, base = nginx(work, "nginx", f"""
  sendfile on;
  tcp_nopush on;
  client_max_body_size 4g;
  types {{ video/mp4 mp4; image/jpeg jpg; application/pdf pdf; }}
  server {{
    listen 127.0.0.1:{{port}};
    root {root};
    location /upload/ {{ dav_methods PUT; create_full_put_path on; }}
  }}
""")
    wait_http(base + "/")
    return proc, base


def start_dufs(binary, root):
    port = free_port()
    proc = subprocess.Popen([binary, "--allow-archive", "--allow-upload", "-b", "127.0.0.1",
                             "-p", str(port), root], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/")
    return proc, base


# ---------------------------------------------------------------------------- measuring

def curl_get(url, cookie=None):
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w",
           "%{http_code} %{size_download} %{time_total} %{time_starttransfer}"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(cmd + [url], capture_output=True, check=True).stdout.decode().split()
    code, size, total, ttfb = out[0], int(out[1]), float(out[2]), float(out[3])
    if code != "200":
        raise RuntimeError(f"GET {url} answered {code}")
    return size, total, ttfb


def curl_put(url, path):
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                          "-T", path, url], capture_output=True, check=True).stdout.decode().split()
    if out[0] not in ("200", "201", "204"):
        raise RuntimeError(f"PUT {url} answered {out[0]}")
    return float(out[1])


def wrk(url, seconds, cookie=None, cpus=None):
    """wrk -t2 -c64 on `url` (pinned to the cores `cpus` with taskset, if given): req/s, p99 in ms
    and the count of errors."""
    cmd = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency"]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    if cpus:
        cmd = ["taskset", "-c", cpus] + cmd
    out = subprocess.run(cmd + [url], capture_output=True, check=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    return rps, p99, errors


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1/8 of the data, 3 runs, 5 s of wrk")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--wrk-seconds", type=int, default=None)
    ap.add_argument("--portal-bin", default=os.path.join(ROOT, "target/release/evidence-portal"))
    ap.add_argument("--audit-bench-bin", default=os.path.join(ROOT, "target/release/audit-bench"))
    ap.add_argument("--dufs-bin", default=shutil.which("dufs") or os.path.join(ROOT, "target/bench-tools/bin/dufs"))
    ap.add_argument("--json", default=os.path.join(ROOT, "tests/bench/results/latest.json"))
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    wrk_s = args.wrk_seconds or (5 if args.quick else 15)
    for tool in ("nginx", "wrk", "curl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: run tests/bench/setup.sh")
    for b in (args.portal_bin, args.dufs_bin, args.audit_bench_bin):
        if not os.path.exists(b):
            sys.exit(f"{b} is missing: run tests/bench/setup.sh")

    work = tempfile.mkdtemp(prefix="portal-bench-")
    procs = []
    portal = None
    results = {}
    try:
        print(f"preparing data in {work} …", flush=True)
        files = os.path.join(work, "files")
        big, case_files, small = make_data(files, args.quick)
        case_bytes = sum(os.path.getsize(p) for p in case_files)

        portal = Portal(args.portal_bin, work)
        subprocess.run([args.portal_bin, "demo"], env=portal.env, check=True, capture_output=True)
        starts = []
        for _ in range(3):
            starts.append(portal.start())
            portal.stop()
        # A fresh data directory for the start-up with migrations.
        fresh = Portal(args.portal_bin, work)
        fresh.env["PORTAL_DATA_DIR"] = os.path.join(work, "fresh-data")
        fresh_start = fresh.start()
        fresh.stop()
        portal.start()
        time.sleep(1.0)
        idle = rss(portal.pid, "VmRSS:")
        results["startup"] = {"with_migrations_s": fresh_start, "warm_s": summary(starts),
                              "idle_rss_mib": idle / MIB}
        print(f"portal: start {fresh_start * 1000:.0f} ms (fresh, migrations), idle RSS {idle / MIB:.1f} MiB", flush=True)

        staff = Browser(portal.base, os.path.join(work, "staff.cookies"))
        staff.sign_in(STAFF)
        party = Browser(portal.base, os.path.join(work, "party.cookies"))
        case_id = open_case(staff, "2026-9001")
        other_id = open_case(staff, "2026-9002")
        print("loading 200 files through the portal's upload path …", flush=True)
        for path in case_files:
            kind = {"jpg": "scene_photo", "pdf": "survey_record", "mp4": "video"}[path.rsplit(".", 1)[1]]
            mid, _ = upload(portal, staff, case_id, path, kind)
            release(staff, case_id, mid)
        big_id, _ = upload(portal, staff, other_id, big, "video")
        release(staff, other_id, big_id)
        small_id, _ = upload(portal, staff, other_id, small[0], "scene_photo")
        release(staff, other_id, small_id)
        serve_case(staff, case_id)
        serve_case(staff, other_id)
        party.sign_in(PARTY)

        nginx, nginx_base = start_nginx(work, files)
        procs.append(nginx)
        dufs, dufs_base = start_dufs(args.dufs_bin, files)
        procs.append(dufs)
        pid = portal.pid

        # --- single-file download of the 512 MiB file
        settle()
        dl = {"portal": [], "nginx": [], "dufs": []}
        peak = []
        for _ in range(runs):
            reset_peak(pid)
            size, t, _ = curl_get(f"{portal.base}/cases/{other_id}/materials/{big_id}/download", party.cookie_header())
            peak.append(rss(pid, "VmHWM:") / MIB)
            dl["portal"].append(size / t / 1e6)
            size, t, _ = curl_get(f"{nginx_base}/big.mp4")
            dl["nginx"].append(size / t / 1e6)
            size, t, _ = curl_get(f"{dufs_base}/big.mp4")
            dl["dufs"].append(size / t / 1e6)
        results["download_MBps"] = {k: summary(v) for k, v in dl.items()}
        results["download_MBps"]["portal_peak_rss_mib"] = max(peak)
        print("download done", flush=True)

        # --- whole-case bundle vs dufs ?zip
        settle()
        bz = {"portal": [], "dufs": []}
        ttfb = {"portal": [], "dufs": []}
        sizes = {}
        peak = []
        for _ in range(runs):
            reset_peak(pid)
            size, t, first = curl_get(f"{portal.base}/cases/{case_id}/bundle.zip", party.cookie_header())
            peak.append(rss(pid, "VmHWM:") / MIB)
            bz["portal"].append(size / t / 1e6)
            ttfb["portal"].append(first * 1000)
            sizes["portal"] = size
            size, t, first = curl_get(f"{dufs_base}/case/?zip")
            bz["dufs"].append(size / t / 1e6)
            ttfb["dufs"].append(first * 1000)
            sizes["dufs"] = size
        results["bundle_MBps"] = {k: summary(v) for k, v in bz.items()}
        results["bundle_ttfb_ms"] = {k: summary(v) for k, v in ttfb.items()}
        results["bundle_bytes"] = sizes
        results["bundle_MBps"]["portal_peak_rss_mib"] = max(peak)
        results["case_bytes"] = case_bytes
        print("bundle done", flush=True)

        # --- upload of the 512 MiB file
        settle()
        up = {"portal": [], "dufs": [], "nginx": []}
        peak = []
        size = os.path.getsize(big)
        for i in range(runs):
            reset_peak(pid)
            _, t = upload(portal, staff, other_id, big, "video")
            peak.append(rss(pid, "VmHWM:") / MIB)
            up["portal"].append(size / t / 1e6)
            up["dufs"].append(size / curl_put(f"{dufs_base}/upload/big{i}.mp4", big) / 1e6)
            up["nginx"].append(size / curl_put(f"{nginx_base}/upload/big{i}.mp4", big) / 1e6)
        results["upload_MBps"] = {k: summary(v) for k, v in up.items()}
        results["upload_MBps"]["portal_peak_rss_mib"] = max(peak)
        print("upload done", flush=True)

        # --- wrk: the case page and a 20 KiB material vs the same file from nginx and dufs
        settle()
        load = {}
        targets = [
            ("portal_case_page", f"{portal.base}/cases/{case_id}", party.cookie_header()),
            # A case of two materials, as most are: the page's fixed cost without 200 rows.
            ("portal_small_case_page", f"{portal.base}/cases/{other_id}", party.cookie_header()),
            ("portal_20k", f"{portal.base}/cases/{other_id}/materials/{small_id}/download", party.cookie_header()),
            ("nginx_20k", f"{nginx_base}/small/s00.jpg", None),
            ("dufs_20k", f"{dufs_base}/small/s00.jpg", None),
        ]
        wrk_runs = max(1, runs // 2) if not args.quick else 1
        peak_page = []
        for _ in range(wrk_runs):
            for name, url, cookie in targets:
                if name.startswith("portal"):
                    reset_peak(pid)
                rps, p99, errors = wrk(url, wrk_s, cookie)
                if name.startswith("portal"):
                    peak_page.append(rss(pid, "VmHWM:") / MIB)
                load.setdefault(name, []).append((rps, p99, errors))
        results["wrk"] = {
            name: {"rps": summary([r[0] for r in v]), "p99_ms": summary([r[1] for r in v]),
                   "errors": sum(r[2] for r in v)} for name, v in load.items()}
        results["wrk"]["portal_peak_rss_mib"] = max(peak_page)
        print("wrk done", flush=True)

        # --- audit alone
        settle()
        out = subprocess.run([args.audit_bench_bin, "--writers", "64", "--events", "100000"],
                             capture_output=True, text=True, check=True).stdout
        m = re.search(r"([\d,.]+)\s*events/s", out)
        results["audit_events_per_s"] = float(m.group(1).replace(",", "")) if m else None
        results["audit_output"] = out.strip().splitlines()[-3:]

        # --- 200 parallel sign-ins: bounded password hashing keeps the peak RSS down
        settle()
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests/bench/signins.py"),
                              "--portal-bin", args.portal_bin], capture_output=True, text=True).stdout
        m = re.search(r"peak ([\d.]+) MiB", out)
        took = re.search(r"sign-ins in ([\d.]+) s", out)
        answers = re.search(r"answers: (\{.*\})", out)
        results["signins"] = {"peak_rss_mib": float(m.group(1)) if m else None,
                              "seconds": float(took.group(1)) if took else None,
                              "all_answered": bool(answers) and answers.group(1) == "{200: 200}",
                              "output": out.strip().splitlines()}
        print("sign-ins done", flush=True)

        # --- /verify on zips of 10,000 and 30,000 empty files: linear in the entries (issue 30)
        settle()
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests/bench/verify.py"),
                              "--portal-bin", args.portal_bin], capture_output=True, text=True).stdout
        results["verify"] = {m.group(1): {"seconds": float(m.group(2)), "server_cpu_s": float(m.group(3))}
                             for m in re.finditer(r"verify (\d+) entries: ([\d.]+) s \(server CPU ([\d.]+) s", out)}
        results["verify"]["output"] = out.strip().splitlines()
        print("verify done", flush=True)

        # --- showing without handing over (issue 32): rendered views beside pdftoppm alone
        settle()
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests/bench/render.py"),
                              "--portal-bin", args.portal_bin, "--runs", "3" if args.quick else "7"],
                             capture_output=True, text=True)
        results["render"] = {m.group(1): float(m.group(2))
                             for m in re.finditer(r"^render (\w+): ([\d.]+) ", out.stdout, re.M)}
        results["render"]["output"] = (out.stdout + out.stderr).strip().splitlines()
        print("render done", flush=True)
    finally:
        for p in procs:
            p.terminate()
        if portal:
            portal.stop()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    report(results, args, runs, wrk_s)


def report(r, args, runs, wrk_s):
    med = lambda d: d["median"]
    rows = []

    def row(what, portal, peer, peer_name, ratio, target, met):
        rows.append((what, portal, peer, peer_name, ratio, target, "met" if met else "MISSED"))

    d = r["download_MBps"]
    row("512 MiB download, MB/s", med(d["portal"]), med(d["nginx"]), "nginx",
        med(d["portal"]) / med(d["nginx"]), "≥ 0.9 × nginx", med(d["portal"]) >= 0.9 * med(d["nginx"]))
    row("512 MiB download, MB/s", med(d["portal"]), med(d["dufs"]), "dufs",
        med(d["portal"]) / med(d["dufs"]), "", True)
    row("download peak RSS, MiB", d["portal_peak_rss_mib"], None, "", None, "constant", True)
    b = r["bundle_MBps"]
    row("200-file bundle, MB/s", med(b["portal"]), med(b["dufs"]), "dufs ?zip",
        med(b["portal"]) / med(b["dufs"]), "≥ 4 × dufs", med(b["portal"]) >= 4 * med(b["dufs"]))
    row("bundle peak RSS, MiB", b["portal_peak_rss_mib"], None, "", None, "≤ 64 MiB",
        b["portal_peak_rss_mib"] <= 64)
    t = r["bundle_ttfb_ms"]
    row("bundle first byte, ms", med(t["portal"]), med(t["dufs"]), "dufs ?zip",
        med(t["portal"]) / max(med(t["dufs"]), 0.001), "< 50 ms", med(t["portal"]) < 50)
    u = r["upload_MBps"]
    row("512 MiB upload, MB/s", med(u["portal"]), med(u["dufs"]), "dufs PUT",
        med(u["portal"]) / med(u["dufs"]), "≥ 2 × dufs", med(u["portal"]) >= 2 * med(u["dufs"]))
    row("512 MiB upload, MB/s", med(u["portal"]), med(u["nginx"]), "nginx PUT",
        med(u["portal"]) / med(u["nginx"]), "", True)
    row("upload peak RSS, MiB", u["portal_peak_rss_mib"], None, "", None, "constant", True)
    w = r["wrk"]
    p20, n20, d20, page = w["portal_20k"], w["nginx_20k"], w["dufs_20k"], w["portal_case_page"]
    row("20 KiB material, req/s", med(p20["rps"]), med(n20["rps"]), "nginx",
        med(p20["rps"]) / med(n20["rps"]), "≥ 12k", med(p20["rps"]) >= 12000)
    row("20 KiB material, req/s", med(p20["rps"]), med(d20["rps"]), "dufs",
        med(p20["rps"]) / med(d20["rps"]), "", True)
    row("20 KiB material p99, ms", med(p20["p99_ms"]), med(n20["p99_ms"]), "nginx", None,
        "< 50 ms, 0 errors", med(p20["p99_ms"]) < 50 and p20["errors"] == 0)
    row("case page (200 files), req/s", med(page["rps"]), None, "", None, "≥ 5k", med(page["rps"]) >= 5000)
    row("case page (200 files) p99, ms", med(page["p99_ms"]), None, "", None, "< 50 ms, 0 errors",
        med(page["p99_ms"]) < 50 and page["errors"] == 0)
    small = w.get("portal_small_case_page")
    if small:
        row("case page (2 files), req/s", med(small["rps"]), None, "", None, "≥ 5k",
            med(small["rps"]) >= 5000)
        row("case page (2 files) p99, ms", med(small["p99_ms"]), None, "", None, "< 50 ms, 0 errors",
            med(small["p99_ms"]) < 50 and small["errors"] == 0)
    row("wrk peak RSS, MiB", w["portal_peak_rss_mib"], None, "", None, "", True)
    if r.get("audit_events_per_s"):
        row("audit events/s (SQLite)", r["audit_events_per_s"], None, "", None, "≥ 10k",
            r["audit_events_per_s"] >= 10000)
    si = r.get("signins") or {}
    if si.get("peak_rss_mib") is not None:
        row("200 parallel sign-ins, peak RSS, MiB", si["peak_rss_mib"], None, "", None, "< 256 MiB",
            si["peak_rss_mib"] < 256)
    if si.get("seconds") is not None:
        row("200 parallel sign-ins, s", si["seconds"], None, "", None, "≤ 5 s, none 503",
            si["seconds"] <= 5 and si.get("all_answered"))
    v = r.get("verify") or {}
    if "10000" in v and "30000" in v:
        row("/verify, 10,000-entry zip, s", v["10000"]["seconds"], None, "", None, "", True)
        row("/verify, 30,000-entry zip, s", v["30000"]["seconds"], None, "", None, "≤ 5 × 10,000 (linear)",
            v["30000"]["seconds"] <= 5 * v["10000"]["seconds"])
    rd = r.get("render") or {}
    if "cold_first_page" in rd:
        png = rd.get("pdftoppm_png")
        row("render: scanned PDF page, cold, ms", rd["cold_first_page"], png, "pdftoppm -png",
            rd["cold_first_page"] / png if png else None, "≤ 500 ms", rd["cold_first_page"] <= 500)
        row("render: cached page + mark, ms", rd["cached_page"], rd.get("pdftoppm_ppm"), "pdftoppm PPM",
            None, "≤ 30 ms", rd["cached_page"] <= 30)
        row("render: 12 MP photo, ms", rd["photo_12mp"], None, "", None, "≤ 300 ms", rd["photo_12mp"] <= 300)
        if "pdftoppm_peak_rss" in rd:
            row("render: pdftoppm peak RSS, MiB", rd["pdftoppm_peak_rss"], None, "", None, "≤ 512 MiB",
                rd["pdftoppm_peak_rss"] <= 512)
    s = r["startup"]
    row("idle RSS, MiB", s["idle_rss_mib"], None, "", None, "≤ 32 MiB", s["idle_rss_mib"] <= 32)
    row("start with migrations, ms", s["with_migrations_s"] * 1000, None, "", None, "≤ 1000 ms",
        s["with_migrations_s"] <= 1.0)

    fmt = lambda v: "—" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}")
    header = ("measure", "portal", "peer", "peer is", "ratio", "target", "")
    table = [header] + [(a, fmt(b), fmt(c), dd, fmt(e) if e is not None else "—", f, g)
                        for a, b, c, dd, e, f, g in rows]
    widths = [max(len(str(x[i])) for x in table) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(widths[i]) for i, c in enumerate(line)) + " |" for line in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    machine = f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}"
    # The portal inherits the environment: a run with PORTAL_WORKERS set says so.
    workers = os.environ.get("PORTAL_WORKERS")
    if workers:
        machine += f", PORTAL_WORKERS={workers}"
    print()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')} · {machine} · {runs} runs (median), wrk {wrk_s} s"
          + (" · QUICK (1/8 data)" if args.quick else ""))
    print("\n".join(lines))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine, "runs": runs,
                   "quick": args.quick, "wrk_seconds": wrk_s, "results": r,
                   "table": [dict(zip(header[:-1] + ("verdict",), row)) for row in table[1:]]},
                  f, indent=2, ensure_ascii=False)
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
