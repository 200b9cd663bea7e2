//! The market end to end on `continuum serve` processes over loopback: offers that describe
//! capacity and terms and expire, routing by policy, receipts signed by both sides, balances,
//! statements, budgets under concurrency, disputes, and priced alloy fetches (`docs/market.md`).

use std::path::Path;

use continuum::keys::KeyStore;
use continuum::node::market::ledger::{Line, SignedStatement, Statement};
use continuum::node::market::receipt::{Receipt, SignedReceipt};
use continuum::signing;
use continuum_tests::{cli, eventually, plugin_dir, python, skewed_clock, stderr, stdout, Publisher, TestNode};
use serde_json::Value;

/// One compute slot, a long job deadline for the spinning guest, and `prices` under `[grid]`.
fn config(prices: &str) -> String {
    format!("[jobs]\nmax-running = 1\n[plugins.misbehave.limits]\njob-timeout-ms = 120000\n[grid]\n{prices}\n")
}

/// A provider's data directory: `config`, the publisher's signed `text` (shipped and offered),
/// and the misbehave plugin installed locally (never offered) to load the node with a job.
fn provider(data: &Path, publisher: &Publisher, config: &str) {
    std::fs::write(data.join("continuum.toml"), config).expect("config");
    publisher.install(data, &["text"]);
    let dir = plugin_dir("misbehave");
    let o = cli(data, &["plugin", "install", dir.to_str().unwrap(), "--allow", "all"]);
    assert!(o.status.success(), "install misbehave: {}", stderr(&o));
}

fn offers(node: &TestNode) -> Vec<Value> {
    serde_json::from_str::<Value>(&node.ok(&["offers", "--json"])).expect("offers JSON").as_array().cloned().unwrap()
}

/// `other`'s offer as `node` holds it.
fn offer_of(node: &TestNode, other: &TestNode) -> Option<Value> {
    offers(node).into_iter().find(|k| k["offer"]["node"] == other.id.as_str()).map(|k| k["offer"].clone())
}

/// The peer a call went to (from the CLI's `[contributors …]` line).
fn contributor(o: &std::process::Output) -> String {
    let err = stderr(o);
    err.lines().find_map(|l| l.strip_prefix("[contributors ")).unwrap_or_default().trim_end_matches(']').to_string()
}

#[test]
fn offers_describe_capacity_and_terms_expire_and_route_calls_by_load_and_price() {
    let publisher = Publisher::new();
    let a = TestNode::start(|d| publisher.trust(d));
    let b = TestNode::start(|d| provider(d, &publisher, &config("prices = { \"text/stats\" = \"3 credits\" }")));
    let c = TestNode::start(|d| provider(d, &publisher, &config("prices = { \"text/stats\" = \"1 credit\" }")));
    let mut d = TestNode::start(|d| {
        provider(d, &publisher, &config("prices = { \"text/stats\" = \"2 credits/call + 0.5 credits/s\" }"))
    });
    for (node, name) in [(&b, "b"), (&c, "c"), (&d, "d")] {
        a.ok(&["peer", "add", &node.address, "--name", name]);
    }
    assert!(
        eventually(30, || [&b, &c, &d].iter().all(|n| offer_of(&a, n).is_some())),
        "A did not get every provider's offer"
    );

    // Capacity and terms, as A holds them.
    let offer = offer_of(&a, &d).unwrap();
    let capacity = &offer["capacity"];
    assert!(capacity["cores"].as_u64().unwrap() >= 1, "{capacity}");
    assert!(capacity["memory_mib"].as_u64().unwrap() > 0, "{capacity}");
    assert_eq!(capacity["load"]["slots"], 1, "{capacity}");
    assert_eq!(offer["ttl_ms"], 5000, "three offer intervals and 2 s");
    let stats = offer["plugins"][0]["commands"].as_array().unwrap().iter().find(|c| c["name"] == "text/stats").unwrap();
    assert_eq!(stats["price"]["millicredits_per_call"], 2000);
    assert_eq!(stats["price"]["millicredits_per_second"], 500);
    assert_eq!(stats["access"], "public");

    // Cheapest: C (1 credit), with the choice and its reason on the result.
    let o = a.cli(&["run", "--on", "any", "--route", "cheapest", "text/stats", "--text", "hi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(contributor(&o), c.id);
    assert!(stderr(&o).contains(&format!("[route cheapest: {}", &c.id[..12])), "{}", stderr(&o));
    // Nobody at or under 0.5 credits.
    let o = a.cli(&["run", "--on", "any", "--max-price", "0.5", "text/stats", "--text", "hi"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stderr(&o).contains("more than --max-price 0.5 credits (the cheapest expects 1)"), "{}", stderr(&o));
    // Under 2.5 credits, B (3) is never asked, whatever the policy.
    let o =
        a.cli(&["run", "--on", "any", "--route", "least-loaded", "--max-price", "2.5", "text/stats", "--text", "x"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(contributor(&o), b.id);

    // C's one compute slot taken by a job: its offer says so, least-loaded goes elsewhere (the
    // default weighs that backlog by C's median call time: see the route unit tests), while
    // cheapest still picks C.
    let job = c.ok(&["run", "misbehave/spin", "--detach"]).trim().to_string();
    assert!(
        eventually(20, || offer_of(&a, &c).is_some_and(|o| o["capacity"]["load"]["free_slots"] == 0)),
        "C's offer never showed its slot taken"
    );
    for _ in 0..3 {
        let o = a.cli(&["run", "--on", "any", "--route", "least-loaded", "text/stats", "--text", "hi"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_ne!(contributor(&o), c.id, "least-loaded went to the loaded node: {}", stderr(&o));
        assert!(stderr(&o).contains("[route least-loaded: "), "{}", stderr(&o));
    }
    let o = a.cli(&["run", "--on", "any", "--route", "cheapest", "text/stats", "--text", "hi"]);
    assert_eq!(contributor(&o), c.id, "{}", stderr(&o));
    c.ok(&["jobs", "cancel", &job]);

    // A job on a peer leaves a receipt too, checked and countersigned when its end arrives.
    let job = a.ok(&["run", "--on", "c", "--detach", "text/stats", "--text", "a job"]).trim().to_string();
    a.ok(&["jobs", "wait", &job]);
    let job_receipt = || {
        let list: Value = serde_json::from_str(&a.ok(&["receipts", "list", "--peer", &c.id, "--json"])).unwrap();
        list.as_array().unwrap().iter().any(|e| {
            e["state"] == "countersigned" && e["signed"]["body"].as_str().unwrap().contains("\"kind\":\"job\"")
        })
    };
    assert!(
        eventually(10, job_receipt),
        "no countersigned job receipt on A: {}\n{}",
        a.ok(&["receipts", "list", "--peer", &c.id]),
        a.ok(&["events", "tail", "-n", "30", "--json"])
    );

    // A dead node's offer expires (its TTL, by A's clock) and leaves dispatch with it.
    // D vanishes between its offer and the call: cheapest under 2.5 credits is D while C is
    // loaded again, and the call ends on another node (the request to D never went out, or D
    // timed out and the idempotent call moved on).
    let job = c.ok(&["run", "misbehave/spin", "--detach"]).trim().to_string();
    d.kill();
    let started = std::time::Instant::now();
    let o = a.cli(&[
        "run",
        "--on",
        "any",
        "--route",
        "least-loaded",
        "--max-price",
        "2.5",
        "--timeout",
        "3s",
        "text/stats",
        "--text",
        "hi",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(contributor(&o), d.id);
    eprintln!("a call whose first choice had vanished took {:?}: {}", started.elapsed(), stderr(&o));
    c.ok(&["jobs", "cancel", &job]);
    assert!(eventually(20, || offer_of(&a, &d).is_none()), "D's offer never expired");
    for _ in 0..3 {
        let o = a.cli(&["run", "--on", "any", "--route", "least-loaded", "text/stats", "--text", "hi"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_ne!(contributor(&o), d.id);
    }
}

/// The first JSON value printed by `receipts show` (the receipt as signed).
fn signed_receipt(node: &TestNode, id: &str) -> Value {
    let text = node.ok(&["receipts", "show", id]);
    serde_json::Deserializer::from_str(&text).into_iter::<Value>().next().unwrap().unwrap()
}

fn balance_with(node: &TestNode, peer: &TestNode) -> Value {
    let all: Value = serde_json::from_str(&node.ok(&["credits", "--json"])).unwrap();
    all.as_array().unwrap().iter().find(|b| b["peer"] == peer.id.as_str()).cloned().unwrap_or(Value::Null)
}

#[test]
fn receipts_balances_budgets_disputes_and_purchases() {
    let publisher = Publisher::new();
    let prices = "[grid]\nprices = { \"kv/put\" = \"1 credit\", \"kv/get\" = \"0.5 credits\" }\nalloy-prices = { text = \"5 credits\" }\n";
    let a = TestNode::start(|d| publisher.trust(d));
    let b = TestNode::start(|d| {
        std::fs::write(d.join("continuum.toml"), prices).unwrap();
        publisher.install(d, &["kv", "text"]);
    });
    // S's clock is two hours fast.
    let s = TestNode::start_with_env(skewed_clock("+2h"), |d| publisher.install(d, &["text"]));
    // Ten calls of kv/ per hour for A.
    let token = b
        .ok(&["grant", "issue", "--to", &a.id, "--cap", "kv/", "--budget-calls", "10", "--budget-period", "1h"])
        .trim()
        .to_string();
    a.ok(&["peer", "add", &b.address, "--name", "b", "--grant", &token]);
    a.ok(&["peer", "add", &s.address, "--name", "s"]);
    assert!(eventually(30, || offers(&a).len() == 3), "A did not get both offers");

    let o = a.cli(&["run", "--on", "b", "kv/put", r#"{"key": "k", "value": {"integer": 1}}"#]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("from {}: 1 credits]", &b.id[..12])), "{}", stderr(&o));

    // 32 calls at once on the 9 left of the budget: exactly 9 run, the rest are refused naming it.
    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let calls: Vec<_> =
            (0..32).map(|_| scope.spawn(|| a.cli(&["run", "--on", "b", "kv/get", "--key", "k"]))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let ran = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ran, 9, "{:?}", outputs.iter().map(stderr).collect::<Vec<_>>());
    for refused in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(refused.status.code(), Some(5), "{}", stderr(refused));
        assert!(stderr(refused).contains("budget exhausted: this grant spent 10 of 10 calls"), "{}", stderr(refused));
        assert!(stderr(refused).contains("resets at"), "{}", stderr(refused));
    }

    // A budget is its grant's: E, with a grant of its own, still calls while A's is spent.
    let e = TestNode::start(|d| publisher.trust(d));
    let e_token = b.ok(&["grant", "issue", "--to", &e.id, "--cap", "kv/get", "--budget-calls", "1"]).trim().to_string();
    e.ok(&["peer", "add", &b.address, "--name", "b", "--grant", &e_token]);
    e.ok(&["run", "--on", "b", "kv/get", "--key", "k"]);
    let o = e.cli(&["run", "--on", "b", "kv/get", "--key", "k"]);
    assert!(stderr(&o).contains("1 of 1 calls"), "{}", stderr(&o));

    // Both ledgers agree: 1 + 9 × 0.5 credits spent by A, earned by B once its countersignatures arrived.
    assert_eq!(balance_with(&a, &b)["spent"], 5500);
    assert!(eventually(20, || balance_with(&b, &a)["earned"] == 5500), "B: {}", balance_with(&b, &a));
    let listed: Value = serde_json::from_str(&a.ok(&["receipts", "list", "--peer", &b.id, "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 10);
    assert!(listed.iter().all(|e| e["state"] == "countersigned" && e["role"] == "caller"));
    let id = listed[0]["id"].as_str().unwrap().to_string();
    assert!(a.ok(&["receipts", "verify", &id]).contains("verified"));
    let on_b = b.ok(&["receipts", "verify", &id]);
    assert!(on_b.contains("matches this ledger (countersigned)"), "{on_b}");
    let statement = a.dir.path().join("statement.json");
    b.ok(&["credits", "statement", &a.id, "-o", statement.to_str().unwrap()]);
    assert!(a.ok(&["credits", "reconcile", statement.to_str().unwrap()]).contains("agrees"));
    // A statement B signed with totals its lines do not give, or claiming a receipt A never
    // countersigned, is named line by line.
    let b_key = KeyStore::new(b.dir.path().join("keys")).node().unwrap();
    let signed: SignedStatement = serde_json::from_str(&std::fs::read_to_string(&statement).unwrap()).unwrap();
    let mut inflated: Statement = serde_json::from_str(&signed.body).unwrap();
    inflated.earned += 1000;
    inflated.lines[0].millicredits += 1000;
    inflated.lines.push(Line { id: "ab".repeat(16), ..inflated.lines[1].clone() });
    let body = serde_json::to_string(&inflated).unwrap();
    let forged = SignedStatement { signature: signing::sign(&b_key, signing::STATEMENT, body.as_bytes()), body };
    std::fs::write(&statement, serde_json::to_string(&forged).unwrap()).unwrap();
    let o = a.cli(&["credits", "reconcile", statement.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", stdout(&o));
    for difference in ["they count 2000 millicredits", "not in this ledger", "are not the sums of their own lines"] {
        assert!(stdout(&o).contains(difference), "{}", stdout(&o));
    }

    // A tampered copy (a higher price) fails its signature.
    let signed = signed_receipt(&a, &id);
    let mut receipt: Receipt = serde_json::from_str(signed["body"].as_str().unwrap()).unwrap();
    let mut tampered = signed.clone();
    let mut dearer = receipt.clone();
    dearer.millicredits += 1000;
    tampered["body"] = Value::String(serde_json::to_string(&dearer).unwrap());
    let verify = |name: &str, receipt: &Value| {
        let file = a.dir.path().join(name);
        std::fs::write(&file, receipt.to_string()).unwrap();
        a.cli(&["receipts", "verify", file.to_str().unwrap()])
    };
    let o = verify("tampered.json", &tampered);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("provider's signature does not verify"), "{}", stdout(&o));
    // What a dishonest B could sign with its own key: the same receipt with more time than A
    // waited (priced to match), and one for a call that never happened. Neither is what A holds.
    receipt.units.ms += 60_000;
    receipt.terms.millicredits_per_second = 1000;
    receipt.millicredits = receipt.terms.charge(&receipt.units);
    let o = verify("longer.json", &serde_json::to_value(SignedReceipt::issue(&receipt, &b_key).unwrap()).unwrap());
    assert!(
        !o.status.success() && stdout(&o).contains("altered: it differs from the copy this ledger holds"),
        "{}",
        stdout(&o)
    );
    receipt.id = "0f".repeat(16);
    let o = verify("never.json", &serde_json::to_value(SignedReceipt::issue(&receipt, &b_key).unwrap()).unwrap());
    assert!(!o.status.success() && stdout(&o).contains("no record: this node never countersigned"), "{}", stdout(&o));

    // S's receipts are stamped two hours ahead: A disputes them and does not countersign; the
    // call's result still arrives.
    let o = a.cli(&["run", "--on", "s", "text/stats", "--text", "hi there"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("not countersigned: disputed: clock skew"), "{}", stderr(&o));
    let with_s = balance_with(&a, &s);
    assert_eq!((with_s["spent"].as_u64(), with_s["disputed"].as_u64()), (Some(0), Some(1)), "{with_s}");
    let disputed: Value = serde_json::from_str(&a.ok(&["receipts", "list", "--peer", &s.id, "--json"])).unwrap();
    let disputed_id = disputed[0]["id"].as_str().unwrap();
    let o = a.cli(&["receipts", "verify", disputed_id]);
    assert!(
        !o.status.success() && stdout(&o).contains("disputed when it arrived: disputed: clock skew"),
        "{}",
        stdout(&o)
    );
    let s_log = s.ok(&["events", "tail", "-n", "20", "--json"]);
    assert!(s_log.contains("receipt.issued") && !s_log.contains("receipt.countersigned"), "{s_log}");

    // A priced alloy: the purchase receipt is on both sides.
    let out = a.ok(&["plugin", "install", "text", "--from", "b"]);
    assert!(out.contains("installed text"), "{out}");
    let purchases = |node: &TestNode| {
        let list: Value = serde_json::from_str(&node.ok(&["receipts", "list", "--json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["signed"]["body"].as_str().unwrap().contains("\"kind\":\"purchase\""))
            .map(|e| (e["role"].as_str().unwrap().to_string(), e["state"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(purchases(&a), vec![("caller".to_string(), "countersigned".to_string())]);
    assert!(
        eventually(20, || purchases(&b) == vec![("provider".to_string(), "countersigned".to_string())]),
        "{:?}",
        purchases(&b)
    );
    assert_eq!(balance_with(&a, &b)["spent"], 10_500);

    // The receipts check out with the independent verifier written from docs/market.md alone,
    // and it refuses the tampered copy.
    let export = a.dir.path().join("receipts.jsonl");
    let mut lines = a.ok(&["receipts", "export"]);
    std::fs::write(&export, &lines).unwrap();
    let verifier = continuum_tests::repo().join("docs/examples/verify_receipt.py");
    let run = |file: &Path| std::process::Command::new(python()).arg(&verifier).arg(file).output().unwrap();
    let o = run(&export);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches(": ok (countersigned").count(), 11, "{}", stdout(&o));
    lines.push_str(&tampered.to_string());
    std::fs::write(&export, &lines).unwrap();
    let o = run(&export);
    assert!(
        !o.status.success() && stdout(&o).contains("REFUSED: the provider's signature does not verify"),
        "{}",
        stdout(&o)
    );
}
