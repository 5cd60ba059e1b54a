#!/usr/bin/env python3
"""Scale-out (issue 19, item 3): one and two portal instances behind nginx as a load balancer, on
PostgreSQL and an S3-compatible server fast enough not to be the bottleneck (s3s-fs, from
crates.io; moto stays for the correctness tests).

    cargo install s3s-fs@0.14.1 --features binary --locked --root target/bench-tools
    python3 tests/bench/scale.py [--database-url postgres://postgres@127.0.0.1:5432/scale]

The database is dropped and created afresh. Both instances share it, the bucket and the data
directory (so, one server key: a session signed by one is honoured by the other). wrk -t2 -c64
goes to nginx (upstream keep-alive, round robin) for the 20 KiB material and the case page of
two materials, signed in as the demo party; the table gives req/s, p99, errors and each
instance's peak RSS. Everything shares this machine's cores: on a 2-core machine the figures say
whether a second instance costs or gains, not how far it scales. Standard library only.
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
import hot  # noqa: E402
import run  # noqa: E402

ROOT = run.ROOT


def start_s3s(binary, root):
    os.makedirs(os.path.join(root, "evidence"))
    port = run.free_port()
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port),
                             "--access-key", "bench", "--secret-key", "bench", root],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    run.wait_http(base + "/")
    return proc, base


def start_balancer(work, name, upstreams):
    """nginx balancing round robin over `upstreams` (host:port), with upstream keep-alive."""
    servers = "".join(f"    server {u};\n" for u in upstreams)
    proc, base = run.nginx(work, f"nginx-{name}", f"""
  upstream portal {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{{port}};
    location / {{
      proxy_pass http://portal;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
    }}
  }}
""")
    run.wait_http(base + "/healthz")
    return proc, base


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/scale")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--portal-bin", default=os.path.join(ROOT, "target/release/evidence-portal"))
    ap.add_argument("--s3s-bin", default=shutil.which("s3s-fs") or os.path.join(ROOT, "target/bench-tools/bin/s3s-fs"))
    ap.add_argument("--json", default=os.path.join(ROOT, "tests/bench/results/scale.json"))
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing")
    if not os.path.exists(args.s3s_bin):
        sys.exit(f"{args.s3s_bin} is missing: cargo install s3s-fs@0.14.1 --features binary --locked --root target/bench-tools")
    work = tempfile.mkdtemp(prefix="portal-scale-")
    procs, instances = [], []
    results = {}
    try:
        s3s, s3_base = start_s3s(args.s3s_bin, os.path.join(work, "s3"))
        procs.append(s3s)
        hot.fresh_database(args.database_url)
        env = {
            "PORTAL_DATABASE_URL": args.database_url,
            "PORTAL_STORE_URL": "s3://evidence",
            "AWS_ENDPOINT": s3_base, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        }
        first, paths, cookie = hot.prepare(args.portal_bin, work, env)
        second = run.Portal(args.portal_bin, work)
        second.env = dict(first.env, PORTAL_BIND=f"127.0.0.1:{second.port}")
        instances = [first, second]
        for p in instances:
            p.start()
        for n in (1, 2):
            lb, base = start_balancer(work, str(n), [f"127.0.0.1:{p.port}" for p in instances[:n]])
            procs.append(lb)
            run.wrk(base + paths["material_20k"], 2, cookie)  # warm-up
            for name, path in paths.items():
                figures = []
                for _ in range(args.runs):
                    for p in instances:
                        run.reset_peak(p.pid)
                    rps, p99, errors = run.wrk(base + path, args.seconds, cookie)
                    figures.append((rps, p99, errors, [run.rss(p.pid, "VmHWM:") / run.MIB for p in instances[:n]]))
                r = {
                    "rps": statistics.median(f[0] for f in figures),
                    "p99_ms": statistics.median(f[1] for f in figures),
                    "errors": sum(f[2] for f in figures),
                    "peak_rss_mib": [max(f[3][i] for f in figures) for i in range(n)],
                }
                results.setdefault(name, {})[n] = r
                rss = ", ".join(f"{m:.1f}" for m in r["peak_rss_mib"])
                print(f"{name:>13}, {n} instance(s): {r['rps']:>8,.0f} req/s  p99 {r['p99_ms']:6.1f} ms"
                      f"  errors {r['errors']}  peak RSS {rss} MiB", flush=True)
            lb.terminate()
            lb.wait(5)
            procs.remove(lb)
    finally:
        for p in instances:
            p.stop()
        for p in procs:
            p.terminate()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
                   "seconds": args.seconds, "runs": args.runs, "results": results}, f, indent=2)
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
