//! Arbitrary bytes as an event-log export (JSONL) imported into the host's log: refused with
//! an error, or imported — and importing the same export again adds nothing.

#![no_main]

use continuum_core::eventlog::transfer::import;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let host = continuum_fuzz::host();
    let core = host.core();
    // (The connection guard must be dropped before the second import takes it again.)
    let first = import(&mut core.db(), core.log(), data);
    if let Ok(first) = first {
        let again = import(&mut core.db(), core.log(), data).expect("an accepted export is accepted again");
        assert_eq!(again.entries, 0, "re-importing the same export added entries (first: {first:?})");
    }
});
