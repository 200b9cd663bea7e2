//! The alloy pipeline. Input byte 0 picks the mode:
//! - even: the rest is an `.alloy` file — parsed, verified and installed from a file (untrusted
//!   signers allowed): a refusal or an install, never a panic;
//! - odd: the rest is a manifest. It is wrapped with a real component (the seed alloy's) and a
//!   correctly signed chain of custody, so that mutations get past the signature checks and
//!   reach what follows them: the manifest's interface and capabilities against the
//!   component, rollback, the proof suite, registration.
//!
//! An install that succeeds must be removable, leaving room for the next input.

#![no_main]

use std::sync::OnceLock;

use continuum_core::alloy::custody::{Chain, Stage};
use continuum_core::alloy::manifest::Manifest;
use continuum_core::alloy::Alloy;
use continuum_core::AlloyOptions;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// The seed alloy: its component is wrapped around fuzzed manifests.
fn seed() -> &'static Alloy {
    static SEED: OnceLock<Alloy> = OnceLock::new();
    SEED.get_or_init(|| Alloy::from_reader(&include_bytes!("../seeds/hello.alloy")[..]).expect("the seed alloy parses"))
}

/// `manifest_bytes` around the seed's component, signed (build and sign stages) by a fixed key.
fn signed(manifest_bytes: &[u8]) -> Option<Alloy> {
    let manifest: Manifest = serde_json::from_slice(manifest_bytes).ok()?;
    let key = SigningKey::from_bytes(&[9; 32]);
    let mut chain = Chain::default();
    chain.append(&key, manifest_bytes, Stage::Build, json!({ "toolchain": "fuzz", "command": "fuzz" }));
    chain.append(&key, manifest_bytes, Stage::Sign, json!({ "name": manifest.identity.name }));
    Some(Alloy { manifest_bytes: manifest_bytes.to_vec(), manifest, component: seed().component.clone(), chain })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let host = continuum_fuzz::host();
    let path = host.core().data().root().join("input.alloy");
    if mode % 2 == 0 {
        if let Ok(alloy) = Alloy::from_reader(rest) {
            let _ = host.verify_alloy(&alloy);
        }
        std::fs::write(&path, rest).expect("write the input");
    } else {
        let Some(alloy) = signed(rest) else { return };
        let _ = host.verify_alloy(&alloy);
        alloy.write(&path).expect("write the alloy");
    }
    let options = AlloyOptions { allow: vec!["all".into()], allow_untrusted: true, ..Default::default() };
    if let Ok(record) = host.install_alloy(&path, options) {
        host.remove(&record.name, true).expect("an installed plugin can be removed");
    }
});
