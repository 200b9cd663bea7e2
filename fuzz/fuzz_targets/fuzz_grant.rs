//! Grant tokens: arbitrary text through parsing and full verification, and attenuation with
//! fuzzed capabilities, which must never widen what the parent token confers.

#![no_main]

use arbitrary::Unstructured;
use continuum_core::grants::{self, confers};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

fn caps(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<String>> {
    const PARTS: [&str; 8] = ["text", "kv", "summarize", "get", "", "x", "text/summarize", "kvx"];
    let n = u.int_in_range(0..=3)?;
    (0..n)
        .map(|_| {
            let k = u.int_in_range(1..=3)?;
            let mut cap = (0..k).map(|_| u.choose(&PARTS).copied()).collect::<arbitrary::Result<Vec<_>>>()?.join("/");
            if u.arbitrary()? {
                cap.push('/');
            }
            Ok(cap)
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let owner = SigningKey::from_bytes(&[1; 32]);
    let alice = SigningKey::from_bytes(&[2; 32]);
    let bob = SigningKey::from_bytes(&[3; 32]);
    let host = continuum_fuzz::host();

    // The raw bytes as a token: parsed and verified (node-pinned and standalone), never a panic.
    let text = String::from_utf8_lossy(data);
    let _ = grants::verify_signed(&text, &owner.verifying_key());
    let _ = host.caller_presenting(&text, &continuum_core::keys::public_hex(&alice.verifying_key()));

    // A real token with fuzzed capabilities, attenuated with fuzzed capabilities.
    let mut u = Unstructured::new(data);
    let (Ok(parent_caps), Ok(child_caps), Ok(expires)) = (caps(&mut u), caps(&mut u), u.int_in_range(0..=i64::MAX))
    else {
        return;
    };
    let parent = grants::issue(&owner, &alice.verifying_key(), &parent_caps, 1 << 40, 1);
    let Ok(child) = grants::attenuate(&parent, &alice, &bob.verifying_key(), &child_caps, expires) else { return };
    let grant = grants::verify_signed(&child, &owner.verifying_key()).expect("an attenuated token verifies");
    assert!(grant.expires <= 1 << 40, "attenuation extended the expiry");
    for command in ["text", "text/summarize", "text/summarizex", "kv/get", "kvx", "x/y", "text/summarize/stream"] {
        if grant.caps.iter().any(|c| confers(c, command)) {
            assert!(
                parent_caps.iter().any(|c| confers(c, command)),
                "{child_caps:?} from {parent_caps:?} confers {command}, which the parent does not"
            );
        }
    }
});
