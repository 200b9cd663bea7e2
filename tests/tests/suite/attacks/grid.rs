//! Attacks over the grid (peers over iroh), on signatures, and on the event log.

use std::time::Duration;

use continuum::grid::offers::{Offer, SignedOffer};
use continuum::grid::peers::Peer;
use continuum::grid::wire::{JobAction, Request, Response};
use continuum::grid::{Grid, GridOptions};
use continuum::node::async_host::AsyncHost;
use continuum::node::jobs::JobState;
use continuum::paths::DataDir;
use continuum::InstallOptions;
use continuum::Outcome;
use continuum_tests::{allow_all, eventually, plugin_dir, stderr, stdout, Publisher, TestHost, TestNode};
use serde_json::{json, Value};

fn offered(node: &TestNode, other: &TestNode) -> bool {
    node.ok(&["offers", "--json"]).contains(&other.id)
}

/// Finding 2: the grid's events request was answered to any iroh key, so a stranger pulled
/// key names, grant holders and API-key labels. Now only a key holding a grant that confers
/// `node:log-pull` gets the log, in pages, at a bounded rate.
#[test]
fn a_stranger_cannot_pull_the_event_log_over_the_grid() {
    let publisher = Publisher::new();
    let a = TestNode::start(|d| publisher.install(d, &["text"]));
    let s = TestNode::start(|_| {});
    let client = hex::encode(ed25519_dalek::SigningKey::from_bytes(&[47; 32]).verifying_key().as_bytes());
    a.ok(&["apikey", "create", "--for", &client, "--label", "secret-label"]);
    // Enough entries for several pages (500 entries each).
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for i in 0..350 {
        let r = agent
            .post(&format!("{}/v1/commands/text/stats", a.http))
            .header("authorization", &format!("Bearer {}", a.token))
            .send(json!({ "text": format!("entry {i}") }).to_string())
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    s.ok(&["peer", "add", &a.address, "--name", "a"]);
    let refused = s.cli(&["events", "pull", "a"]);
    assert!(!refused.status.success(), "a stranger pulled the log: {}", stdout(&refused));
    assert!(stderr(&refused).contains("node:log-pull"), "{}", stderr(&refused));
    // A grant for commands does not confer the log.
    let commands = a.ok(&["grant", "issue", "--to", &s.id, "--cap", "text/"]).trim().to_string();
    s.ok(&["peer", "add", &a.address, "--grant", &commands]);
    assert!(!s.cli(&["events", "pull", "a"]).status.success());
    let log = a.ok(&["grant", "issue", "--to", &s.id, "--cap", "node:log-pull"]).trim().to_string();
    s.ok(&["peer", "add", &a.address, "--grant", &log]);
    let pulled = s.ok(&["events", "pull", "a"]);
    let n: u64 = pulled.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(n > 700, "every page arrived: {pulled}");
    // A flood of pulls is cut off at the rate limit.
    let busy = (0..25).map(|_| s.cli(&["events", "pull", "a"])).filter(|o| !o.status.success()).count();
    assert!(busy > 0, "25 pulls in a row were all served");
}

/// Finding 4: a node with no peers learned a stranger's offer through gossip, and its
/// `--on any` call ran on that stranger, which saw the parameters. Now dispatch goes to
/// explicitly added peers only, unless the caller says `--strangers`; offers expire.
#[test]
fn gossip_learned_strangers_receive_no_calls() {
    let publisher = Publisher::new();
    let a = TestNode::start(|d| publisher.install(d, &["text"]));
    let b = TestNode::start(|d| publisher.trust(d));
    let c = TestNode::start(|d| publisher.trust(d));
    b.ok(&["peer", "add", &a.address, "--name", "a"]);
    c.ok(&["peer", "add", &b.address, "--name", "b"]);
    assert!(eventually(30, || offered(&c, &a)), "C did not hear of A through gossip");
    let secret = r#"{"text": "the secret parameters"}"#;
    let o = c.cli(&["run", "--on", "any", "text/stats", secret]);
    assert_eq!(o.status.code(), Some(6), "C's call went to a stranger: {}{}", stdout(&o), stderr(&o));
    let a_log = a.ok(&["events", "tail", "-n", "100", "--json"]);
    assert!(!a_log.contains(&c.id), "A ran a call from C");
    // Asked for in so many words, it may go there.
    let o = c.cli(&["run", "--on", "any", "--strangers", "text/stats", secret]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A node that stops announcing drops out of the offers (5 offer intervals + 5 s).
    let mut a = a;
    a.kill();
    assert!(eventually(20, || !offered(&b, &a)), "A's offer never expired on B");
}

/// How a raw grid client reaches `node`: its key at the addresses in its `node.json`.
pub(super) fn peer_of(node: &TestNode) -> Peer {
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(node.dir.path().join("node.json")).unwrap()).unwrap();
    Peer {
        id: node.id.clone(),
        name: None,
        addrs: info["grid"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().parse().unwrap()).collect(),
        relays: vec![],
        grant: None,
    }
}

/// A grid endpoint of `host`'s own on loopback, to send raw requests from.
pub(super) async fn grid_of(host: &TestHost) -> Grid {
    let options = GridOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        offer_interval: Duration::from_secs(60),
        terms: Default::default(),
        reach: Default::default(),
    };
    let jobs = continuum::node::jobs::Jobs::open(AsyncHost::new(host.host.clone()), Default::default()).await.unwrap();
    Grid::start(host.host.clone(), options, jobs).await.unwrap()
}

/// Finding 17: the grid had no request-concurrency limit: one peer could make a node run
/// any number of calls at once. Now a connection gets 16 requests at a time and all peers 64;
/// the rest are answered `busy` at once.
#[test]
fn a_flood_of_grid_requests_is_answered_busy() {
    let node = TestNode::start(|d| {
        let host = continuum::node::open_host(DataDir::at(d.to_path_buf()).unwrap()).unwrap();
        let dir = plugin_dir("hostile");
        host.install_component(&dir.join("hostile.wasm"), Some(&dir.join("wit")), &allow_all()).unwrap();
    });
    let me = TestHost::with(&[]);
    let grant = node.ok(&["grant", "issue", "--to", &me.host.node_id(), "--cap", "hostile/drip"]).trim().to_string();
    let peer = peer_of(&node);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (busy, ok) = runtime.block_on(async {
        let grid = grid_of(&me).await;
        let request = Request::Call {
            command: "hostile/drip".into(),
            params: json!({ "lines": 10, "ms": 100 }),
            grant: Some(grant),
            deadline_ms: 30_000,
            stream: false,
            request_id: None,
            node_set: None,
        };
        grid.request(&peer, &Request::Offer {}, Duration::from_secs(10)).await.expect("the node answers");
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let (grid, peer, request) = (grid.clone(), peer.clone(), request.clone());
            calls.spawn(async move { grid.request(&peer, &request, Duration::from_secs(60)).await });
        }
        let (mut busy, mut ok) = (0, 0);
        while let Some(done) = calls.join_next().await {
            match done.unwrap() {
                Ok(Response::Ok { .. }) => ok += 1,
                Err(e) if e.outcome() == continuum::Outcome::Busy => busy += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        grid.shutdown().await;
        (busy, ok)
    });
    assert!(busy >= 100 - 16, "only {busy} of 100 concurrent requests were refused ({ok} ran)");
    assert!(ok >= 1, "some requests ran");
}

/// The identity point: a small-order ed25519 key.
fn weak_key() -> String {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    hex::encode(identity)
}

/// A signature (R = identity, s = 0) that lax verification accepts for a small-order key over
/// any message.
fn weak_signature() -> String {
    let mut signature = [0u8; 64];
    signature[0] = 1;
    hex::encode(signature)
}

/// Finding 12: offers and HTTP request signatures used lax ed25519 verification, so a
/// small-order key "signed" anything. Now every signed format verifies strictly, under its own
/// domain prefix, and weak keys are refused when parsed.
#[test]
fn a_small_order_key_signs_nothing() {
    let offer = Offer {
        node: weak_key(),
        issued_ms: 1,
        addrs: vec![],
        ttl_ms: 0,
        capacity: Default::default(),
        plugins: vec![],
        consent: None,
        introductions: vec![],
        node_set: None,
    };
    let forged = SignedOffer { body: serde_json::to_string(&offer).unwrap(), signature: weak_signature() };
    assert!(forged.verify().is_err(), "an offer signed by a small-order key verified");
    assert!(continuum::keys::parse_public(&weak_key()).is_err());
    let node = TestNode::start(|_| {});
    let host = node.http.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /v1/commands/text/stats HTTP/1.1\r\nhost: {host}\r\nx-continuum-key: {}\r\nx-continuum-date: {}\r\n\
         x-continuum-nonce: {}\r\nx-continuum-signature: {}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}",
        weak_key(),
        continuum::now_secs(),
        "ab".repeat(16),
        weak_signature()
    );
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "a small-order key authenticated: {answer}");
}

/// Finding 10: deleting the last entries together with their checkpoints left a log that
/// `events verify` accepted. Now the latest signed head is also kept outside the database
/// (`log.head`), and verify compares the two.
#[test]
fn cutting_the_log_tail_with_its_checkpoints_is_detected() {
    let th = TestHost::with(&["text"]);
    for i in 0..5 {
        th.call("text/stats", json!({ "text": format!("call {i}") })).unwrap();
        // Committed before the next call: a group (and a checkpoint) per call.
        th.host.core().log().settle().unwrap();
    }
    // Let the writer bring the signed head up to date (it lags by at most 50 ms).
    std::thread::sleep(Duration::from_millis(300));
    let ok = th.cli(&["events", "verify"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let db = rusqlite::Connection::open(th.dir.path().join("continuum.db")).unwrap();
    // Cut at an earlier checkpoint: the entries after it and their checkpoints. No key is
    // needed, and what remains is a whole chain whose every entry a checkpoint covers.
    let cut: i64 =
        db.query_row("SELECT seq FROM log_checkpoints ORDER BY seq DESC LIMIT 1 OFFSET 2", [], |r| r.get(0)).unwrap();
    db.execute("DELETE FROM log WHERE seq > ?1", [cut]).unwrap();
    db.execute("DELETE FROM log_checkpoints WHERE seq > ?1", [cut]).unwrap();
    let cut = th.cli(&["events", "verify"]);
    assert!(!cut.status.success(), "a cut tail verified: {}", stdout(&cut));
    assert!(stderr(&cut).contains("cut from the end"), "{}", stderr(&cut));
}

/// Finding 13: plugin event kinds shared the host's namespace: a plugin named `call` wrote
/// `call.completed` entries that `usage` billed to whoever it named. Now host kinds are
/// reserved, and usage counts only entries of the shape the host writes.
#[test]
fn a_plugin_cannot_write_host_entries() {
    let th = TestHost::with(&[]);
    let dir = plugin_dir("hostile");
    let options = InstallOptions { name: Some("call".into()), ..allow_all() };
    th.host.install_component(&dir.join("hostile.wasm"), Some(&dir.join("wit")), &options).unwrap();
    let bill = json!({
        "caller": "victim", "command": "call/forge", "outcome": "ok", "duration-us": 3_600_000_000u64,
        "input-bytes": 1, "output-bytes": 1,
    });
    let forged = th.call("call/forge", json!({ "kind": "completed", "payload": bill.to_string() }));
    let err = forged.expect_err("a plugin wrote a call.completed entry");
    assert!(err.to_string().contains("reserved for the host"), "{err}");
    let usage = th.cli(&["usage", "--json"]);
    assert!(!stdout(&usage).contains("victim"), "usage billed a forged entry: {}", stdout(&usage));
}

/// Grid jobs (issue 17): a peer sees, renews, follows and cancels only the jobs it submitted:
/// any other id reads as unknown, whoever asks. Submitting needs what calling needs (a grant
/// for a granted command), and a flood of submissions is refused `busy` past the queue's bound.
#[test]
fn a_peer_reaches_only_its_own_grid_jobs_and_cannot_flood_the_queue() {
    let node = TestNode::start(|d| {
        std::fs::write(d.join("continuum.toml"), "[jobs]\nmax-running = 1\nmax-queued = 2\n").unwrap();
        let host = continuum::node::open_host(DataDir::at(d.to_path_buf()).unwrap()).unwrap();
        let dir = plugin_dir("misbehave");
        host.install_component(&dir.join("misbehave.wasm"), Some(&dir.join("wit")), &allow_all()).unwrap();
    });
    let (me, stranger) = (TestHost::with(&[]), TestHost::with(&[]));
    let grant = node.ok(&["grant", "issue", "--to", &me.host.node_id(), "--cap", "misbehave/"]).trim().to_string();
    let peer = peer_of(&node);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (mine, theirs) = (grid_of(&me).await, grid_of(&stranger).await);
        let wait = Duration::from_secs(10);
        let submit = |grant: Option<String>| Request::Submit {
            command: "misbehave/spin".into(),
            params: json!({}),
            grant,
            lease_ms: 60_000,
        };
        let Response::Job { job } = mine.request(&peer, &submit(Some(grant.clone())), wait).await.unwrap() else {
            panic!("no job")
        };
        let id = job.id.clone();

        // Without a grant, the command is not there for the stranger.
        let refused = theirs.request(&peer, &submit(None), wait).await.unwrap_err();
        assert_eq!(refused.outcome(), Outcome::UnknownCommand, "{refused}");
        // Another's job id reads as unknown, for every action.
        for action in [JobAction::Status, JobAction::Renew, JobAction::Cancel, JobAction::Follow] {
            let asked = Request::Job { id: id.clone(), action };
            let answer = theirs.request(&peer, &asked, wait).await.unwrap_err();
            assert_eq!(answer.outcome(), Outcome::NotFound, "{action:?}: {answer}");
        }
        let Response::Job { job } =
            mine.request(&peer, &Request::Job { id: id.clone(), action: JobAction::Status }, wait).await.unwrap()
        else {
            panic!("no job")
        };
        assert!(matches!(job.state, JobState::Queued | JobState::Running), "{job:?}");

        // One runs, two wait; the next submission is refused busy, naming the bound.
        let mut refusals = Vec::new();
        for _ in 0..4 {
            if let Err(e) = mine.request(&peer, &submit(Some(grant.clone())), wait).await {
                refusals.push(e);
            }
        }
        assert!(!refusals.is_empty(), "no submission was refused past max-queued = 2");
        assert!(refusals.iter().all(|e| e.outcome() == Outcome::Busy && e.to_string().contains("max-queued")));

        // Once the node revokes its grants, the submitter can no longer renew its jobs.
        let renew = Request::Job { id: id.clone(), action: JobAction::Renew };
        mine.request(&peer, &renew, wait).await.unwrap();
        node.ok(&["grant", "revoke", &me.host.node_id()]);
        let refused = mine.request(&peer, &renew, wait).await.unwrap_err();
        assert_eq!(refused.outcome(), Outcome::Denied, "{refused}");

        let cancelled = Request::Job { id: id.clone(), action: JobAction::Cancel };
        mine.request(&peer, &cancelled, wait).await.unwrap();
        mine.shutdown().await;
        theirs.shutdown().await;
    });
    // Submitting peers' jobs stop once their leases lapse with the peers gone (60 s here), or
    // by the owner: cancel what is left.
    let jobs: Vec<Value> = serde_json::from_str(&node.ok(&["jobs", "list", "--json"])).unwrap();
    assert!(jobs.iter().all(|j| j["caller"] == me.host.node_id().as_str()), "{jobs:?}");
    for job in jobs.iter().filter(|j| j["state"] == "queued" || j["state"] == "running") {
        // One may end on its own meanwhile (its caller's grants were revoked above).
        node.cli(&["jobs", "cancel", job["id"].as_str().unwrap()]);
    }
    let ended = || {
        let jobs: Vec<Value> = serde_json::from_str(&node.ok(&["jobs", "list", "--json"])).unwrap();
        jobs.iter().all(|j| j["state"] != "queued" && j["state"] != "running")
    };
    assert!(eventually(10, ended), "jobs were left running");
}

/// A node presenting an owner's grant must be listed in the owner's newest node set: a set that
/// lists another node, a set forged in the owner's name, or none at all gets nothing; the
/// genuine set that lists it is honoured.
#[test]
fn a_stolen_or_forged_node_set_confers_nothing() {
    use continuum::node_set::{NodeSet, SignedNodeSet};
    let publisher = Publisher::new();
    let provider = TestNode::start(|d| publisher.install(d, &["kv"]));
    let me = TestHost::with(&[]);
    let owner = ed25519_dalek::SigningKey::from_bytes(&[61; 32]);
    let owner_id = continuum::keys::public_hex(&owner.verifying_key());
    let token = provider.ok(&["grant", "issue", "--to", &owner_id, "--cap", "kv/"]).trim().to_string();
    let set = |signer: &ed25519_dalek::SigningKey, epoch: u64, nodes: Vec<String>| {
        let body = serde_json::to_string(&NodeSet { owner: owner_id.clone(), epoch, nodes, issued: 1 }).unwrap();
        let signature = continuum::signing::sign(signer, continuum::signing::NODE_SET, body.as_bytes());
        SignedNodeSet { body, signature }
    };
    let other_node = continuum::keys::public_hex(&ed25519_dalek::SigningKey::from_bytes(&[62; 32]).verifying_key());
    let peer = peer_of(&provider);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let grid = grid_of(&me).await;
        let call = |node_set: Option<SignedNodeSet>| Request::Call {
            command: "kv/put".into(),
            params: json!({ "key": "k", "value": { "integer": 1 } }),
            grant: Some(token.clone()),
            deadline_ms: 10_000,
            stream: false,
            request_id: None,
            node_set,
        };
        let refusal = |r: Result<Response, continuum::grid::PeerError>| match r {
            Err(e) => (e.outcome(), e.to_string()),
            Ok(answer) => panic!("the call ran: {answer:?}"),
        };
        let wait = Duration::from_secs(20);
        // No set: the owner's grant is bound to the owner's key, not this node's.
        let (outcome, message) = refusal(grid.request(&peer, &call(None), wait).await);
        assert_eq!(outcome, Outcome::Denied);
        assert!(message.contains("grant is bound to key"), "{message}");
        // A genuine set listing another node (stolen from it): refused before anything is kept.
        let stolen = set(&owner, 1, vec![other_node.clone()]);
        let (_, message) = refusal(grid.request(&peer, &call(Some(stolen)), wait).await);
        assert!(message.contains("does not list the calling node"), "{message}");
        // A set listing this node, signed by this node in the owner's name.
        let forged = set(me.host.core().node_key(), 2, vec![me.host.node_id()]);
        let (_, message) = refusal(grid.request(&peer, &call(Some(forged)), wait).await);
        assert!(message.contains("not signed by that owner's key"), "{message}");
        // The owner's own set listing this node: honoured, the call runs as the owner.
        let genuine = set(&owner, 3, vec![me.host.node_id(), other_node.clone()]);
        let answer = grid.request(&peer, &call(Some(genuine)), wait).await;
        assert!(matches!(answer, Ok(Response::Ok { .. })), "{answer:?}");
        // The owner drops this node (epoch 4, handed to the provider); replaying epoch 3,
        // which lists it, changes nothing: the newest set decides.
        let dropped = set(&owner, 4, vec![other_node.clone()]);
        let file = provider.dir.path().join("set-4.json");
        std::fs::write(&file, serde_json::to_string(&dropped).unwrap()).unwrap();
        provider.ok(&["nodeset", "import", file.to_str().unwrap()]);
        let replayed = set(&owner, 3, vec![me.host.node_id(), other_node.clone()]);
        let (_, message) = refusal(grid.request(&peer, &call(Some(replayed)), wait).await);
        assert!(message.contains("(epoch 4) does not list node"), "{message}");
        grid.shutdown().await;
    });
    let log = provider.ok(&["events", "tail", "-n", "50", "--json"]);
    assert!(log.lines().any(|l| l.contains("call.completed") && l.contains(&owner_id)), "{log}");
}
