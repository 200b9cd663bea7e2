#!/usr/bin/env python3
"""An independent verifier for Continuum alloy artifacts, written from docs/alloy.md alone.

Checks: the three members, the component digest and size, every custody signature, the
hash links, the stage order, and that the `sign` entry is by the manifest's author.
It does not re-run the proof suite (that needs a component runtime).

    python3 docs/examples/verify_alloy.py hello.alloy [trusted-public-key-hex ...]

Needs the `cryptography` package (pip install cryptography).
"""
import hashlib
import json
import sys
import tarfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DOMAIN = b"continuum-alloy-custody-v1\0"
STAGES = ["source", "build", "sign", "evaluate", "deliver"]


def fail(reason, message):
    sys.exit(f"refused ({reason}): {message}")


def main(path, trusted):
    with tarfile.open(path, "r:") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        if names != ["alloy.json", "component.wasm", "custody.jsonl"] or not all(m.isreg() for m in members):
            fail("malformed", f"members are {names}")
        manifest_bytes, component, custody = (tar.extractfile(m).read() for m in members)

    manifest = json.loads(manifest_bytes)
    if manifest["format"] != "continuum-alloy/1":
        fail("malformed", f"format {manifest['format']}")
    identity = manifest["identity"]
    digest = "sha256:" + hashlib.sha256(component).hexdigest()
    if digest != identity["digest"] or len(component) != identity["size"]:
        fail("digest-mismatch", f"component is {digest}, manifest says {identity['digest']}")

    manifest_hash = hashlib.sha256(manifest_bytes).hexdigest()
    prev, last_stage, signer = manifest_hash, -1, None
    lines = custody.decode().splitlines()
    for n, raw in enumerate(lines, 1):
        line = json.loads(raw)
        entry = json.loads(line["entry"])
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(entry["actor"]))
        try:
            key.verify(bytes.fromhex(line["signature"]), DOMAIN + line["entry"].encode())
        except InvalidSignature:
            fail("bad-signature", f"entry {n} ({entry['stage']})")
        if entry["manifest"] != manifest_hash:
            fail("bad-signature" if n == 1 else "broken-chain", f"entry {n} signs another manifest")
        if entry["prev"] != prev:
            fail("broken-chain", f"entry {n} does not follow entry {n - 1}")
        stage = STAGES.index(entry["stage"])
        if stage < last_stage or (stage == last_stage == STAGES.index("sign")):
            fail("broken-chain", f"entry {n} ({entry['stage']}) is out of order")
        if entry["stage"] == "sign":
            signer = entry["actor"]
        prev, last_stage = hashlib.sha256(raw.encode()).hexdigest(), stage
        print(f"  {n}. {entry['stage']:<9} by {entry['actor'][:16]}  {json.dumps(entry['statement'])[:80]}")
    if signer is None:
        fail("broken-chain", "no sign entry")
    if signer != identity["author"]:
        fail("wrong-signer", f"signed by {signer[:16]}, author is {identity['author'][:16]}")
    if trusted and signer not in trusted:
        fail("untrusted-signer", signer)
    print(f"{identity['name']} {identity['version']}: digest, {len(lines)} custody entries and signer verified")


if __name__ == "__main__":
    main(sys.argv[1], set(sys.argv[2:]))
