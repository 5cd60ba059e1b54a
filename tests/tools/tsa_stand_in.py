#!/usr/bin/env python3
"""A local RFC 3161 time-stamping authority for tests: OpenSSL's `ts -reply` behind HTTP.

    tsa_stand_in.py DIR

Makes a throwaway CA and a TSA certificate signed by it in DIR (ca.crt is what
`openssl ts -verify -CAfile` takes), listens on 127.0.0.1 at a free port, prints
`PORT <n>` on one line, and answers each POSTed TimeStampReq
(application/timestamp-query) with `openssl ts -reply`'s TimeStampResp until killed.
"""

import http.server
import os
import subprocess
import sys
import tempfile

CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_authority(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=Test TSA CA", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    run("openssl", "req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", "/CN=Test TSA", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=critical,timeStamping\n")
    run("openssl", "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(d, "tsa.cnf"), "w") as f:
        f.write(CONFIG.format(dir=d))


class Handler(http.server.BaseHTTPRequestHandler):
    directory = "."

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        query = self.rfile.read(length)
        d = self.directory
        with tempfile.TemporaryDirectory() as work:
            tsq = os.path.join(work, "q.tsq")
            tsr = os.path.join(work, "r.tsr")
            with open(tsq, "wb") as f:
                f.write(query)
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", os.path.join(d, "tsa.cnf"),
                 "-queryfile", tsq, "-out", tsr],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if done.returncode != 0:
                self.send_response(500)
                self.end_headers()
                self.wfile.write(done.stderr)
                return
            body = open(tsr, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    d = os.path.abspath(sys.argv[1])
    make_authority(d)
    Handler.directory = d
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
