//! Arbitrary bytes through the alloy pipeline: parsing, verification, and a full install from
//! a file (untrusted signers allowed, so mutations reach the proof suite and registration).
//! Whatever the bytes, the answer is a refusal or an install — never a panic.

#![no_main]

use continuum::alloy::Alloy;
use continuum::AlloyOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let host = continuum_fuzz::host();
    if let Ok(alloy) = Alloy::from_reader(data) {
        let _ = host.verify_alloy(&alloy);
    }
    let path = host.core().data().root().join("input.alloy");
    std::fs::write(&path, data).expect("write the input");
    let options = AlloyOptions { allow: vec!["all".into()], allow_untrusted: true, ..Default::default() };
    if let Ok(record) = host.install_alloy(&path, options) {
        // Installed: it must also be removable, leaving room for the next input.
        host.remove(&record.name, true).expect("an installed plugin can be removed");
    }
});
