#!/usr/bin/env python3
"""An independent verifier for Continuum receipts, written from docs/market.md alone.

Checks each signed receipt: its shape, the provider's signature, the caller's countersignature
(when present), and that its price is its terms applied to its units. It cannot check the
input and output hashes (that needs the parameters and the result).

    continuum receipts export > receipts.jsonl
    python3 docs/examples/verify_receipt.py receipts.jsonl

Prints one line per receipt and exits non-zero if any fails. Needs the `cryptography` package.
"""
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PROVIDER_DOMAIN = b"continuum-receipt-v1\0"
CALLER_DOMAIN = b"continuum-receipt-countersign-v1\0"
FIELDS = {"id", "kind", "provider", "caller", "command", "plugin_digest", "input", "output",
          "units", "terms", "millicredits", "started_ms", "ended_ms", "job"}


def signed_by(key_hex, domain, body, signature_hex):
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(signature_hex), domain + body.encode())
        return True
    except (InvalidSignature, ValueError):
        return False


def ceil_div(a, b):
    return -(-a // b)


def charge(terms, units):
    """The price in millicredits: each part rounded up (docs/market.md, "Units and prices")."""
    return (terms.get("millicredits_per_call", 0) * units["calls"]
            + ceil_div(terms.get("millicredits_per_second", 0) * units["ms"], 1000)
            + ceil_div(terms.get("millicredits_per_1k_tokens", 0) * units["tokens"], 1000))


def check(signed):
    """None if the receipt holds, else why not."""
    body = signed["body"]
    receipt = json.loads(body)
    if not set(receipt) <= FIELDS or not FIELDS - {"job"} <= set(receipt):
        return "malformed: unexpected or missing fields"
    if not signed_by(receipt["provider"], PROVIDER_DOMAIN, body, signed["provider_signature"]):
        return "the provider's signature does not verify"
    caller_signature = signed.get("caller_signature")
    if caller_signature is not None and not signed_by(receipt["caller"], CALLER_DOMAIN, body, caller_signature):
        return "the caller's countersignature does not verify"
    expected = charge(receipt["terms"], receipt["units"])
    if receipt["millicredits"] != expected:
        return f"the price {receipt['millicredits']} does not follow its terms ({expected})"
    return None


def main(path):
    failed = 0
    with open(path) as lines:
        for line in lines:
            if not line.strip():
                continue
            signed = json.loads(line)
            receipt = json.loads(signed["body"])
            why = check(signed)
            state = "countersigned" if signed.get("caller_signature") else "provider-signed"
            if why:
                failed += 1
                print(f"{receipt.get('id', '?')}: REFUSED: {why}")
            else:
                print(f"{receipt['id']}: ok ({state}, {receipt['kind']} {receipt['command']}, "
                      f"{receipt['millicredits'] / 1000:g} credits)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
