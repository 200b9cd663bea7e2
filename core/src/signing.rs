//! One way to sign and verify every signed format — grants, custody entries, log checkpoints,
//! offers, requests: ed25519 over a format's domain-separation prefix followed by the exact
//! message bytes, verified strictly (canonical signatures; small-order keys never verify).
//! A signature made for one format can therefore never be replayed as another.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Grant token blocks.
pub const GRANT: &[u8] = b"continuum-grant-v1\0";
/// Alloy chain-of-custody entries.
pub const CUSTODY: &[u8] = b"continuum-alloy-custody-v1\0";
/// Event-log checkpoints.
pub const CHECKPOINT: &[u8] = b"continuum-log-checkpoint-v1\0";
/// Grid offers.
pub const OFFER: &[u8] = b"continuum-offer-v1\0";
/// Signed HTTP requests.
pub const REQUEST: &[u8] = b"continuum-request-v2\0";
/// Market receipts, as the provider signs them.
pub const RECEIPT: &[u8] = b"continuum-receipt-v1\0";
/// Market receipts, as the caller countersigns them.
pub const COUNTERSIGN: &[u8] = b"continuum-receipt-countersign-v1\0";
/// Node sets: an owner's list of its nodes.
pub const NODE_SET: &[u8] = b"continuum-node-set-v1\0";
/// A node's consent to be introduced to other nodes by its peers (peer exchange).
pub const INTRODUCTION: &[u8] = b"continuum-introduction-v1\0";
/// Credit statements between two peers.
pub const STATEMENT: &[u8] = b"continuum-credit-statement-v1\0";

/// Signs `message` under `domain`; the signature as 128 hex digits.
pub fn sign(key: &SigningKey, domain: &[u8], message: &[u8]) -> String {
    hex::encode(key.sign(&[domain, message].concat()).to_bytes())
}

/// Whether `signature` (hex) is `key`'s strict signature of `message` under `domain`.
pub fn verify(key: &VerifyingKey, domain: &[u8], message: &[u8], signature: &str) -> bool {
    let parsed =
        hex::decode(signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok()).map(|b| Signature::from_bytes(&b));
    parsed.is_some_and(|s| !key.is_weak() && key.verify_strict(&[domain, message].concat(), &s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_only_in_its_own_domain_and_weak_keys_never_verify() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let sig = sign(&key, OFFER, b"m");
        assert!(verify(&key.verifying_key(), OFFER, b"m", &sig));
        assert!(!verify(&key.verifying_key(), REQUEST, b"m", &sig));
        assert!(!verify(&key.verifying_key(), OFFER, b"n", &sig));
        assert!(!verify(&key.verifying_key(), OFFER, b"m", "zz"));
        // The identity point is a small-order key: with an all-zero-R, zero-s signature it
        // "verifies" any message under non-strict checking.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(!verify(&weak, OFFER, b"anything", &hex::encode(forged)));
    }
}
