#!/usr/bin/env python3
"""Showing without handing over, timed (issue 32): what a party in the disclosure stage waits for
when viewing, side by side with `pdftoppm` alone on the same file, in one run.

    python3 tests/bench/render.py [--portal-bin target/release/evidence-portal] [--runs 7]

Rows (p50 of --runs, time from sending the request to the last byte of the JPEG, on 127.0.0.1):
  - the first page of a 20-page scanned PDF, cold: the render cache emptied before each run, so
    the portal spools the PDF from the store, runs pdftoppm, keeps the plain raster, burns the
    mark in and encodes (target ≤ 500 ms);
  - the same page again, cached: the plain raster read from the cache, marked anew (≤ 30 ms);
  - a 12-megapixel photo (4000 × 3000 JPEG), cold: decoded, scaled to 1,600 px, marked (≤ 300 ms);
    and cached;
  - pdftoppm alone on the same page, as the issue wrote it (`-png -scale-to-x 1600 -scale-to-y -1`)
    and as the portal runs it (PPM on standard output), with the child's peak RSS (wait4);
  - the portal's RSS before and after 50 renders (20 cold pages, 30 cached views), and its peak;
  - rendered pages per second per core, as many viewers at once as cores: the 20 pages cold,
    then 60 cached views.
Also written to tests/bench/results/render.json. Run by tests/bench/run.py as one of its phases.

Needs: a release build, poppler-utils (pdftoppm), fonts-noto-cjk (the watermark font), and
Pillow (`python3 -m pip install pillow`) to make the scanned PDF and the photo; otherwise the
standard library only. The portal runs with its embedded defaults in a temporary directory.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import PARTY, STAFF, Browser  # noqa: E402  (the demo's sign-ins, the second factor)

TARGETS_MS = {"cold_first_page": 500, "cached_page": 30, "photo_12mp": 300}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scanned_pdf(path, pages=20):
    """A4 pages scanned at 300 dpi in colour: paper tone, lines of dark "words", a little blur
    and sensor noise, each page a JPEG (quality 80) inside the PDF, as scanners write them."""
    from PIL import Image, ImageDraw, ImageFilter
    rng = random.Random(32)
    w, h = 2480, 3508
    noise = Image.effect_noise((w, h), 18).convert("L")
    noise = Image.merge("RGB", (noise, noise, noise))
    images = []
    for p in range(pages):
        img = Image.new("RGB", (w, h), (236, 232, 222))
        d = ImageDraw.Draw(img)
        d.rectangle([180, 120, 1400, 200], fill=(30, 30, 60))
        for line in range(58):
            y, x = 280 + line * 54, 200
            while x < w - 260:
                word = rng.randint(20, 110)
                d.rectangle([x, y, x + word, y + 28], fill=(40, 40, 48))
                x += word + rng.randint(12, 30)
        d.ellipse([1700, 2900, 2200, 3400], outline=(190, 30, 30), width=14)  # a red seal
        img = Image.blend(img.filter(ImageFilter.GaussianBlur(1.2)), noise, 0.12)
        images.append(img)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=300, quality=80)


def photo(path):
    """A 12-megapixel (4000 × 3000) photo-like JPEG: gradients, shapes, noise; quality 90."""
    from PIL import Image, ImageDraw, ImageFilter
    w, h = 4000, 3000
    img = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    d = ImageDraw.Draw(img)
    rng = random.Random(12)
    for _ in range(60):
        x, y = rng.randrange(w), rng.randrange(h)
        d.ellipse([x, y, x + rng.randint(80, 600), y + rng.randint(80, 600)],
                  fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((w, h), 24).convert("L")
    img = Image.blend(img.filter(ImageFilter.GaussianBlur(3)), Image.merge("RGB", (noise,) * 3), 0.15)
    img.save(path, quality=90)


def upload(base, browser, case_id, path, kind):
    csrf = browser.csrf(f"/staff/cases/{case_id}")
    out = subprocess.run(
        ["curl", "-sS", "-H", f"Cookie: {browser.cookie_header()}", "-H", f"X-CSRF-Token: {csrf}",
         "-H", "Accept: application/json", "-F", f"kind={kind}",
         "-F", f"title={os.path.basename(path)}", "-F", f"file=@{path}",
         "-o", "-", "-w", "\n%{http_code}", f"{base}/staff/cases/{case_id}/materials"],
        capture_output=True, check=True)
    body, _, code = out.stdout.rpartition(b"\n")
    if code != b"201":
        raise RuntimeError(f"upload of {path}: {code!r} {body[:300]!r}")
    return json.loads(body)["id"]


def disclosing_case(base, staff, pdf, jpg):
    """Staff open a fatal case with the demo party registered, upload and release the two files,
    and move the case to the disclosure stage (Art. 63: view only)."""
    status, headers, _ = staff.post("/staff/cases", {
        "case_number": "2026-RENDER-1", "occurred_at": "2026-11-20T08:30", "place": "基准测试路口",
        "summary": "渲染基准", "fatal": "on"}, "/staff/cases/new")
    if status != 303:
        raise RuntimeError(f"opening the case: {status}")
    case_id = headers["location"].rsplit("/", 1)[-1]
    status, _, _ = staff.post(f"/staff/cases/{case_id}/parties", {
        "label": "甲", "name": "张伟", "id_kind": "citizen_id", "identifier": PARTY[0],
        "mobile": "13800138000", "role": "driver"}, f"/staff/cases/{case_id}")
    ids = {}
    for name, path, kind in (("pdf", pdf, "survey_record"), ("photo", jpg, "scene_photo")):
        ids[name] = upload(base, staff, case_id, path, kind)
        status, _, _ = staff.post(f"/staff/cases/{case_id}/materials/{ids[name]}/release", {},
                                  f"/staff/cases/{case_id}")
        if status != 303:
            raise RuntimeError(f"releasing {name}: {status}")
    status, _, body = staff.post(f"/staff/cases/{case_id}/status",
                                 {"to": "disclosing", "confirmed": "yes"}, f"/staff/cases/{case_id}")
    if status != 303:
        raise RuntimeError(f"disclosing: {status} {body[:200]!r}")
    return case_id, ids


def timed_view(party, path):
    t0 = time.perf_counter()
    status, headers, body = party.request(path)
    ms = (time.perf_counter() - t0) * 1000
    if status != 200 or headers.get("content-type") != "image/jpeg":
        raise RuntimeError(f"{path}: {status} {body[:300]!r}")
    return ms


def empty_cache(data_dir):
    shutil.rmtree(os.path.join(data_dir, "render-cache"), ignore_errors=True)


def pdftoppm_alone(pdf, png):
    """One run of pdftoppm on page 1 at 1,600 px: wall ms, and the child's peak RSS in MiB as
    /usr/bin/time reports it (this script's own memory, which a child forked from it would count
    until its exec, stays out)."""
    args = ["pdftoppm", "-f", "1", "-l", "1", "-scale-to-x", "1600", "-scale-to-y", "-1"]
    out = tempfile.mkdtemp(prefix="pdftoppm-")
    args += ["-png", pdf, os.path.join(out, "page")] if png else ["-singlefile", pdf]
    report = os.path.join(out, "rss")
    timer = ["/usr/bin/time", "-f", "%M", "-o", report] if os.path.exists("/usr/bin/time") else []
    t0 = time.perf_counter()
    proc = subprocess.run(timer + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ms = (time.perf_counter() - t0) * 1000
    peak = float(open(report).read().split()[-1]) / 1024 if timer else float("nan")
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pdftoppm exited {proc.returncode}")
    return ms, peak


def rss(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return 0.0


def p50(values):
    return statistics.median(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portal-bin", default=os.path.join(ROOT, "target/release/evidence-portal"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", default=os.path.join(ROOT, "tests/bench/results/render.json"))
    args = ap.parse_args()
    if not os.path.exists(args.portal_bin):
        sys.exit(f"{args.portal_bin} is missing: cargo build --release --bin evidence-portal")
    for tool in ("pdftoppm", "curl"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (apt-get install poppler-utils curl)")
    try:
        import PIL  # noqa: F401
    except ImportError:
        sys.exit("Pillow is missing: python3 -m pip install pillow")

    work = tempfile.mkdtemp(prefix="portal-render-")
    data = os.path.join(work, "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORTAL_DATA_DIR=data, PORTAL_BIND=f"127.0.0.1:{port}", RUST_LOG="warn")
    proc = None
    r = {}
    try:
        pdf, jpg = os.path.join(work, "scan.pdf"), os.path.join(work, "photo.jpg")
        print("making a 20-page scanned PDF and a 12-megapixel photo …", flush=True)
        scanned_pdf(pdf)
        photo(jpg)
        r["pdf_bytes"], r["photo_bytes"] = os.path.getsize(pdf), os.path.getsize(jpg)
        subprocess.run([args.portal_bin, "demo"], env=env, check=True, capture_output=True)
        proc = subprocess.Popen([args.portal_bin], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(work, "portal.log"), "w"))
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        staff = Browser(base, os.path.join(work, "staff.cookies"))
        staff.sign_in(STAFF)
        case_id, ids = disclosing_case(base, staff, pdf, jpg)
        party = Browser(base, os.path.join(work, "party.cookies"))
        party.sign_in(PARTY)
        page = lambda n: f"/cases/{case_id}/materials/{ids['pdf']}/view?page={n}"
        photo_view = f"/cases/{case_id}/materials/{ids['photo']}/view"
        # One view first, so that the process, the font and the connections are warm.
        timed_view(party, page(20))
        idle = rss(proc.pid, "VmRSS:")

        cold, cached, photo_cold, photo_cached, alone_png, alone_ppm = [], [], [], [], [], []
        for _ in range(args.runs):
            empty_cache(data)
            cold.append(timed_view(party, page(1)))
            cached.extend(timed_view(party, page(1)) for _ in range(3))
            empty_cache(data)
            photo_cold.append(timed_view(party, photo_view))
            photo_cached.append(timed_view(party, photo_view))
            alone_png.append(pdftoppm_alone(pdf, True))
            alone_ppm.append(pdftoppm_alone(pdf, False))
        r["cold_first_page_ms"] = cold
        r["cached_page_ms"] = cached
        r["photo_12mp_ms"] = photo_cold
        r["photo_12mp_cached_ms"] = photo_cached
        r["pdftoppm_png_ms"] = [a[0] for a in alone_png]
        r["pdftoppm_ppm_ms"] = [a[0] for a in alone_ppm]
        r["pdftoppm_png_peak_rss_mib"] = max(a[1] for a in alone_png)
        r["pdftoppm_ppm_peak_rss_mib"] = max(a[1] for a in alone_ppm)

        # The portal's memory across 50 renders: 20 pages drawn cold, then 30 cached views.
        empty_cache(data)
        before = rss(proc.pid, "VmRSS:")
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")
        for n in range(1, 21):
            timed_view(party, page(n))
        for i in range(30):
            timed_view(party, page(1 + i % 20))
        time.sleep(0.5)
        r["rss_mib"] = {"idle_after_warm_up": idle, "before_50": before,
                        "after_50": rss(proc.pid, "VmRSS:"), "peak_during_50": rss(proc.pid, "VmHWM:")}
        # Throughput: as many viewers at once as there are cores, every page of the PDF drawn
        # cold (the cache emptied), then the same pages cached; pages per second per core.
        cores = os.cpu_count() or 1
        with concurrent.futures.ThreadPoolExecutor(max_workers=cores) as pool:
            empty_cache(data)
            t0 = time.perf_counter()
            list(pool.map(lambda n: timed_view(party, page(n)), range(1, 21)))
            cold_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            list(pool.map(lambda i: timed_view(party, page(1 + i % 20)), range(60)))
            cached_s = time.perf_counter() - t0
        r["throughput"] = {"cores": cores, "cold_pages": 20, "cold_s": cold_s,
                           "cached_pages": 60, "cached_s": cached_s}
        cache_dir = os.path.join(data, "render-cache")
        files = [f for f in os.listdir(cache_dir) if f.endswith(".raster")]
        r["cache_after_50"] = {"files": len(files),
                               "bytes": sum(os.path.getsize(os.path.join(cache_dir, f)) for f in files)}
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    report(r, args)


def report(r, args):
    rows = [  # (key for run.py, what, p50 ms, target ms)
        ("cold_first_page", "first page of a 20-page scanned PDF, cold", p50(r["cold_first_page_ms"]),
         TARGETS_MS["cold_first_page"]),
        ("cached_page", "the same page cached, with its watermark", p50(r["cached_page_ms"]),
         TARGETS_MS["cached_page"]),
        ("photo_12mp", "12-megapixel photo watermarked, cold", p50(r["photo_12mp_ms"]), TARGETS_MS["photo_12mp"]),
        ("photo_12mp_cached", "12-megapixel photo watermarked, cached", p50(r["photo_12mp_cached_ms"]), None),
        ("pdftoppm_png", "pdftoppm alone, -png (as the issue wrote it)", p50(r["pdftoppm_png_ms"]), None),
        ("pdftoppm_ppm", "pdftoppm alone, PPM on stdout (as the portal runs it)", p50(r["pdftoppm_ppm_ms"]), None),
    ]
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    machine = f"{os.cpu_count()} cores, {cpu}, Linux {platform.release()}"
    print()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')} · {machine} · {args.runs} runs, p50 "
          f"(PDF {r['pdf_bytes'] / 1e6:.1f} MB, photo {r['photo_bytes'] / 1e6:.1f} MB)")
    print("| render | p50, ms | target | |")
    print("|---|---|---|---|")
    for _, what, ms, target in rows:
        verdict = "" if target is None else ("met" if ms <= target else "MISSED")
        print(f"| {what} | {ms:.1f} | {'≤ %d ms' % target if target else ''} | {verdict} |")
    m = r["rss_mib"]
    print(f"| pdftoppm peak RSS, MiB (PNG · PPM) | {r['pdftoppm_png_peak_rss_mib']:.1f} · "
          f"{r['pdftoppm_ppm_peak_rss_mib']:.1f} | ≤ 512 MiB | "
          f"{'met' if max(r['pdftoppm_png_peak_rss_mib'], r['pdftoppm_ppm_peak_rss_mib']) <= 512 else 'MISSED'} |")
    print(f"| portal RSS before · after 50 renders (peak), MiB | {m['before_50']:.1f} · {m['after_50']:.1f} "
          f"({m['peak_during_50']:.1f}) | unchanged | |")
    t = r["throughput"]
    cold_rate = t["cold_pages"] / t["cold_s"] / t["cores"]
    cached_rate = t["cached_pages"] / t["cached_s"] / t["cores"]
    print(f"| rendered pages per second per core, {t['cores']} viewers at once: cold · cached | "
          f"{cold_rate:.1f} · {cached_rate:.1f} | | |")
    c = r["cache_after_50"]
    print(f"| render cache after them | {c['files']} files, {c['bytes'] / 1e6:.1f} MB | ≤ 512 MiB | |")
    print()
    for key, _, ms, _ in rows:
        print(f"render {key}: {ms:.1f} ms p50")
    print(f"render pages_per_second_per_core: {cold_rate:.1f} cold, {cached_rate:.1f} cached")
    print(f"render pdftoppm_peak_rss: {r['pdftoppm_ppm_peak_rss_mib']:.1f} MiB")
    print(f"render portal_rss: {m['before_50']:.1f} MiB before, {m['after_50']:.1f} MiB after 50 renders")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine, "runs": args.runs,
                   "results": r}, f, indent=2, ensure_ascii=False)
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
