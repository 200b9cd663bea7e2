//! The GGUF validator stands between untrusted files and llama.cpp (which aborts the process on
//! a malformed model): whatever the bytes, it returns a verdict and never panics, and it
//! refuses every truncation of a valid model. Hyperparameter checks deeper than the file's
//! structure are llama.cpp's own; `continuum model add` runs that load in a child process.

use proptest::prelude::*;

fn tiny() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    continuum_gpu::testmodel::write_tiny_llama(&path, 3).unwrap();
    std::fs::read(path).unwrap()
}

fn check(bytes: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, bytes).unwrap();
    continuum_gpu::gguf::validate(&path).is_ok()
}

#[test]
fn every_truncation_of_a_valid_model_is_refused() {
    let good = tiny();
    assert!(check(&good));
    // Every cut inside the header and a sample through the tensor data.
    let header_end = 16 * 1024;
    let cuts = (0..header_end.min(good.len())).step_by(7).chain((header_end..good.len()).step_by(4099));
    for cut in cuts {
        assert!(!check(&good[..cut]), "a model cut at {cut} of {} bytes passed", good.len());
    }
}

#[test]
fn a_vocabulary_with_a_repeated_token_is_refused() {
    // Found by loading corrupted models: llama.cpp asserts that tokens are unique.
    let mut bytes = tiny();
    let entry = b"\x01\x00\x00\x00\x00\x00\x00\x00b";
    let at = bytes.windows(entry.len()).position(|w| w == entry).expect("token `b`") + entry.len() - 1;
    bytes[at] = b'a';
    assert!(!check(&bytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn corrupted_headers_get_a_verdict_not_a_panic(edits in prop::collection::vec((0usize..4096, any::<u8>()), 1..8)) {
        let mut bytes = tiny();
        for (at, value) in edits {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let _ = check(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_get_a_verdict(tail in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"GGUF\x03\x00\x00\x00".to_vec();
        bytes.extend(tail);
        prop_assert!(!check(&bytes), "random bytes passed as a model");
    }
}
