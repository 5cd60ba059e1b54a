#!/usr/bin/env python3
"""Checks a bundle's SM2 signature with a second, independent implementation (PyPI `gmssl`).

    sm2_verify_gmssl.py MANIFEST_JSON SIGNATURE PUBLIC_KEY_PEM

MANIFEST_JSON: the exact bytes of the bundle's manifest.json; SIGNATURE: its manifest.sm2.sig
(DER SM2Signature, GM/T 0009); PUBLIC_KEY_PEM: the portal's published SM2 key. The signer ID
is gmssl's fixed default, 1234567812345678, the one the portal pins. Exit 0 when the signature
verifies, 1 when it does not, 2 when gmssl is not installed.
"""

import base64
import sys


def der_integers(der):
    """r, s of a DER SEQUENCE { INTEGER, INTEGER }."""
    if der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = []
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER INTEGER")
        length = der[pos + 1]
        out.append(int.from_bytes(der[pos + 2 : pos + 2 + length], "big"))
        pos += 2 + length
    return out


def public_xy(pem):
    """x || y (64 bytes) of an SM2 SubjectPublicKeyInfo: the uncompressed point ends it."""
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    der = base64.b64decode(body)
    if der[-65] != 0x04:
        raise ValueError("not an uncompressed SM2 point")
    return der[-64:]


def main():
    try:
        from gmssl import sm2
    except ImportError:
        print("gmssl is not installed (pip install gmssl)", file=sys.stderr)
        return 2
    manifest = open(sys.argv[1], "rb").read()
    r, s = der_integers(open(sys.argv[2], "rb").read())
    xy = public_xy(open(sys.argv[3]).read()).hex()
    crypt = sm2.CryptSM2(private_key="", public_key=xy)
    # gmssl strips a leading "04" by lstrip, which eats an x that begins with 0 or 4: set it.
    crypt.public_key = xy
    ok = crypt.verify_with_sm3("%064x%064x" % (r, s), manifest)
    print("gmssl: SM2 signature %s" % ("valid" if ok else "INVALID"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
