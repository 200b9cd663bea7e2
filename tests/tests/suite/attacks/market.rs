//! Attacks on the market's wire messages (`countersign`, `purchase`) and on budgets outside
//! the grid: a stranger countersigning someone else's receipt, forged and altered receipts,
//! replays, purchases of what is not sold, and a budgeted grant presented over HTTP.

use std::time::Duration;

use continuum::grid::wire::{Request, Response};
use continuum::node::market::receipt::{hash_json, Expected, Receipt, ReceiptKind, SignedReceipt};
use continuum::node::market::terms::{Price, Units};
use continuum::node::market::{self, ledger, Accepted};
use continuum::Outcome;
use continuum_tests::{stderr, Publisher, TestHost, TestNode};
use serde_json::{json, Value};

use super::grid::{grid_of, peer_of};

fn earned_from(node: &TestNode, peer: &str) -> Value {
    let all: Value = serde_json::from_str(&node.ok(&["credits", "--json"])).unwrap();
    all.as_array().unwrap().iter().find(|b| b["peer"] == peer).map_or(Value::Null, |b| b["earned"].clone())
}

#[test]
fn only_a_receipts_caller_countersigns_it_once_and_nothing_unsold_is_bought() {
    let publisher = Publisher::new();
    let provider = TestNode::start(|d| {
        let config = "[grid]\nprices = { \"text/stats\" = \"2 credits\" }\nalloy-prices = { kv = \"1 credit\" }\n";
        std::fs::write(d.join("continuum.toml"), config).unwrap();
        publisher.install(d, &["text", "kv"]);
    });
    let (me, stranger) = (TestHost::with(&[]), TestHost::with(&[]));
    let peer = peer_of(&provider);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (mine, theirs) = (grid_of(&me).await, grid_of(&stranger).await);
        let wait = Duration::from_secs(20);
        let call = Request::Call {
            command: "text/stats".into(),
            params: json!({ "text": "a b c" }),
            grant: None,
            deadline_ms: 10_000,
            stream: false,
            request_id: None,
            node_set: None,
        };
        let Response::Ok { receipt: Some(issued), .. } = mine.request(&peer, &call, wait).await.unwrap() else {
            panic!("a priced call came back without a receipt")
        };
        let countersign = |receipt: &SignedReceipt| Request::Countersign { receipt: receipt.clone() };
        let refused = |e: continuum::grid::PeerError| (e.outcome(), e.to_string());

        // Not countersigned at all, or countersigned by a key that is not the caller's.
        let (outcome, message) = refused(mine.request(&peer, &countersign(&issued), wait).await.unwrap_err());
        assert_eq!(outcome, Outcome::BadRequest);
        assert!(message.contains("not countersigned"), "{message}");
        let mut by_stranger = issued.clone();
        by_stranger.countersign(stranger.host.core().node_key());
        let (_, message) = refused(theirs.request(&peer, &countersign(&by_stranger), wait).await.unwrap_err());
        assert!(message.contains("countersignature does not verify"), "{message}");

        // The caller's genuine countersignature, relayed by a stranger: refused (QUIC proves
        // who sends it); sent by the caller: taken, and a replay changes nothing.
        let mut genuine = issued.clone();
        genuine.countersign(me.host.core().node_key());
        let (_, message) = refused(theirs.request(&peer, &countersign(&genuine), wait).await.unwrap_err());
        assert!(message.contains("only the caller a receipt names countersigns it"), "{message}");
        for _ in 0..3 {
            let answer = mine.request(&peer, &countersign(&genuine), wait).await.unwrap();
            assert!(matches!(answer, Response::Receipt { .. }), "{answer:?}");
        }

        // An altered receipt (a lower price, countersigned anew) fails the provider's signature.
        let mut altered = issued.clone();
        altered.body = altered.body.replace("\"millicredits\":2000", "\"millicredits\":1");
        altered.countersign(me.host.core().node_key());
        let (_, message) = refused(mine.request(&peer, &countersign(&altered), wait).await.unwrap_err());
        assert!(message.contains("provider's signature does not verify"), "{message}");

        // Purchases: of an alloy the provider does not offer, and of a free one.
        let unknown = Request::Purchase { plugin: "text".into(), alloy: "00".repeat(32) };
        let (outcome, message) = refused(mine.request(&peer, &unknown, wait).await.unwrap_err());
        assert_eq!(outcome, Outcome::NotFound, "{message}");
        let Response::Offer { offer } = mine.request(&peer, &Request::Offer {}, wait).await.unwrap() else { panic!() };
        let offer = offer.verify().unwrap();
        let alloy_of = |name: &str| offer.plugins.iter().find(|p| p.name == name).unwrap().alloy.clone();
        let free = Request::Purchase { plugin: "text".into(), alloy: alloy_of("text") };
        let (_, message) = refused(mine.request(&peer, &free, wait).await.unwrap_err());
        assert!(message.contains("free to fetch here"), "{message}");
        // A flood of purchases never countersigned: 16 receipts, then `busy`.
        let priced = Request::Purchase { plugin: "kv".into(), alloy: alloy_of("kv") };
        for _ in 0..16 {
            assert!(matches!(mine.request(&peer, &priced, wait).await.unwrap(), Response::Receipt { .. }));
        }
        let (outcome, message) = refused(mine.request(&peer, &priced, wait).await.unwrap_err());
        assert_eq!(outcome, Outcome::Busy, "{message}");
        assert!(message.contains("never countersigned"), "{message}");
        mine.shutdown().await;
        theirs.shutdown().await;
    });
    // One call, one countersignature, counted once.
    assert_eq!(earned_from(&provider, &me.host.node_id()), 2000);
    assert_eq!(earned_from(&provider, &stranger.host.node_id()), Value::Null);
}

#[test]
fn a_budgeted_grant_is_no_credential_over_http() {
    let publisher = Publisher::new();
    let node = TestNode::start(|d| publisher.install(d, &["kv"]));
    let me = TestHost::with(&[]);
    let token = node
        .ok(&["grant", "issue", "--to", &me.host.node_id(), "--cap", "kv/", "--budget-calls", "5"])
        .trim()
        .to_string();
    // Metered only on grid calls: over HTTP (here the owner acting as its holder) it is refused.
    let o = node.cli(&["run", "--as", &token, "kv/get", "--key", "k"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("carries a budget, which this node meters on grid calls only"), "{}", stderr(&o));
    // A budget with nothing to limit, or a zero period, is refused at issue.
    let o = node.cli(&[
        "grant",
        "issue",
        "--to",
        &me.host.node_id(),
        "--cap",
        "kv/",
        "--budget-calls",
        "5",
        "--budget-period",
        "0s",
    ]);
    assert!(stderr(&o).contains("at least one second"), "{}", stderr(&o));
}

/// A provider that reuses a receipt id for a second, different receipt gets it disputed, never
/// countersigned unrecorded; the same receipt handed over twice is countersigned once.
#[test]
fn a_provider_reusing_a_receipt_id_is_disputed() {
    let me = TestHost::with(&[]);
    let provider = ed25519_dalek::SigningKey::from_bytes(&[61; 32]);
    let provider_id = hex::encode(provider.verifying_key().as_bytes());
    let params = json!({ "text": "x" });
    let receipt = |output: Value| Receipt {
        id: "cd".repeat(16),
        kind: ReceiptKind::Call,
        provider: provider_id.clone(),
        caller: me.host.node_id(),
        command: "text/stats".into(),
        plugin_digest: String::new(),
        input: hash_json(&params),
        output: hash_json(&output),
        units: Units { calls: 1, ms: 1, tokens: 0 },
        terms: Price::default(),
        millicredits: 0,
        started_ms: continuum::now_ms(),
        ended_ms: continuum::now_ms(),
        job: None,
    };
    let expected = |output: &Value| Expected {
        provider: provider_id.clone(),
        caller: me.host.node_id(),
        kind: ReceiptKind::Call,
        command: "text/stats".into(),
        input: hash_json(&params),
        output: hash_json(output),
        terms: None,
        max_millicredits: None,
        sent_ms: continuum::now_ms() - 1000,
        answered_ms: continuum::now_ms(),
    };
    let (first, second) = (json!({ "words": 1 }), json!({ "words": 2 }));
    let signed = SignedReceipt::issue(&receipt(first.clone()), &provider).unwrap();
    for _ in 0..2 {
        let accepted = market::accept(&me.host, signed.clone(), &expected(&first)).unwrap();
        assert!(matches!(accepted, Accepted::Countersigned(_)), "{accepted:?}");
    }
    let reused = SignedReceipt::issue(&receipt(second.clone()), &provider).unwrap();
    match market::accept(&me.host, reused, &expected(&second)).unwrap() {
        Accepted::Disputed(reason) => assert!(reason.contains("reuses the id"), "{reason}"),
        other => panic!("a reused id was countersigned: {other:?}"),
    }
    let held = ledger::list(&me.host.core().db(), None, 0).unwrap();
    assert_eq!(held.len(), 1, "one receipt held");
    assert_eq!(held[0].signed.body, signed.body);
}
