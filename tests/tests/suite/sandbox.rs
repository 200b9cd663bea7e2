//! The sandbox contains misbehaving plugins: each limit is hit and named, and the host serves
//! the next call normally.

use std::time::{Duration, Instant};

use continuum::sandbox::LimitHit;
use continuum::CallError;
use continuum_tests::{stderr, stdout, TestHost};
use serde_json::json;

const LIMITS: &str =
    "[plugins.misbehave.limits]\ntimeout-ms = 300\nmemory-mib = 32\noutput-kib = 64\nmax-host-calls = 1000\n";

fn host() -> TestHost {
    TestHost::with_config(&["misbehave", "typezoo"], LIMITS)
}

/// The host still answers normally after a contained failure.
fn still_serves(h: &TestHost) {
    assert_eq!(h.call("typezoo/divide", json!({ "a": 9, "b": 3 })).unwrap(), json!(3));
    assert_eq!(h.call("misbehave/recurse", json!({ "depth": 10 })).unwrap(), json!(10));
}

#[test]
fn a_looping_plugin_is_stopped_by_the_deadline() {
    let h = host();
    let t = Instant::now();
    match h.call("misbehave/spin", json!({})) {
        Err(CallError::Limit { limit: LimitHit::Deadline { timeout_ms: 300 }, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "stopped after {:?}", t.elapsed());
    still_serves(&h);
}

#[test]
fn a_memory_bomb_is_stopped_by_the_cap() {
    let h = host();
    match h.call("misbehave/hog", json!({ "mib": 64 })) {
        Err(e @ CallError::Limit { limit: LimitHit::Memory { cap_mib: 32, .. }, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("memory limit of 32 MiB exceeded") && msg.contains("memory-mib"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.call("misbehave/hog", json!({ "mib": 8 })).unwrap(), json!(8));
    still_serves(&h);
}

#[test]
fn a_trapping_plugin_is_reported_with_its_panic_message() {
    let h = host();
    match h.call("misbehave/crash", json!({ "message": "boom at line 7" })) {
        Err(CallError::Trapped { message, .. }) => {
            assert!(message.contains("unreachable") && message.contains("boom at line 7"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    still_serves(&h);
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let h = host();
    match h.call("misbehave/recurse", json!({ "depth": 100_000_000 })) {
        Err(CallError::Limit { limit: LimitHit::Stack, .. }) => {}
        other => panic!("{other:?}"),
    }
    still_serves(&h);
}

#[test]
fn huge_results_and_output_floods_hit_the_output_cap() {
    let h = host();
    match h.call("misbehave/shout", json!({ "bytes": 200_000 })) {
        Err(CallError::Limit { limit: LimitHit::Output { cap_kib: 64, what: "the result" }, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(h.call("misbehave/shout", json!({ "bytes": 3 })).unwrap(), json!("AAA"));
    match h.call("misbehave/chatter", json!({ "bytes": 200_000 })) {
        Err(CallError::Limit { limit: LimitHit::Output { what: "stdout/stderr", .. }, .. }) => {}
        other => panic!("{other:?}"),
    }
    let report = h.host.call(&continuum::Caller::owner(), "misbehave/chatter", &json!({ "bytes": 10 }));
    assert!(report.result.is_ok());
    assert_eq!(report.stdout, b"xxxxxxxxxx");
    still_serves(&h);
}

#[test]
fn a_host_call_flood_hits_the_host_call_cap() {
    let h = host();
    match h.call("misbehave/flood", json!({ "times": 5000 })) {
        Err(e @ CallError::Limit { limit: LimitHit::HostCalls { max: 1000 }, .. }) => {
            assert!(e.to_string().contains("max-host-calls"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.call("misbehave/flood", json!({ "times": 999 })).unwrap(), json!(999));
    still_serves(&h);
}

#[test]
fn every_call_gets_a_fresh_instance_even_across_threads() {
    let h = host();
    let h = &h;
    std::thread::scope(|s| {
        let spinner = s.spawn(move || h.call("misbehave/spin", json!({})));
        let workers: Vec<_> = (0..4)
            .map(|i| {
                s.spawn(move || {
                    (0..20)
                        .all(|_| h.call("typezoo/divide", json!({ "a": i * 10, "b": 10 })).unwrap() == json!(i))
                        .then_some(())
                })
            })
            .collect();
        for w in workers {
            assert!(w.join().unwrap().is_some());
        }
        assert!(matches!(spinner.join().unwrap(), Err(CallError::Limit { .. })));
    });
}

#[test]
fn escape_sequences_never_reach_the_terminal() {
    let h = host();
    let out = h.cli(&["run", "misbehave/noisy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "raw ESC leaked: {:?}", out);
    assert!(stderr(&out).contains("[misbehave/noisy stdout] red title"), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#""\u001b[32mgreen\u001b[0m""#, "JSON output escapes control characters");
    let out = h.cli(&["run", "--output", "pretty", "misbehave/noisy"]);
    assert_eq!(stdout(&out).trim(), "green");
}

#[test]
fn limits_exit_with_code_4_and_name_the_setting() {
    let h = host();
    let out = h.cli(&["run", "misbehave/spin"]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("deadline of 300 ms exceeded") && err.contains("[plugins.misbehave.limits] timeout-ms"),
        "{err}"
    );
}
