//! Request envelopes from outside: fuzzed HTTP requests (method, path, authentication headers,
//! body) through the node's whole router in-process, and fuzzed peer messages (grid requests
//! and responses, signed offers, signed-request headers). Bad input must get a 4xx answer or
//! an error, never a panic or a 500.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use axum::body::Body;
use axum::http::Request;
use continuum_node::grid::offers::SignedOffer;
use continuum_node::grid::wire;
use continuum_node::grid::{Grid, GridOptions};
use continuum_node::{auth, http};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// The owner token the fuzzer may present.
const OWNER_TOKEN: &str = "fuzz-owner-token";
/// The node a fuzzed signature names (not this node's id: signatures are fuzzed for parsing, not to pass).
const NODE_ID: &str = "fuzz-node";

struct Node {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let host = continuum_fuzz::host().clone();
        // Real plugins when they are built, so calls reach reflection and the sandbox.
        let plugins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins");
        for name in ["text", "kv"] {
            let dir = plugins.join(name);
            let options = continuum_core::InstallOptions { allow: vec!["all".into()], ..Default::default() };
            let _ = host.install_component(&dir.join(format!("{name}.wasm")), Some(&dir.join("wit")), &options);
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let async_host = continuum_node::async_host::AsyncHost::new(host.clone());
        let jobs = runtime.block_on(continuum_node::jobs::Jobs::open(async_host, Default::default())).expect("jobs");
        let grid = runtime
            .block_on(Grid::start(
                host.clone(),
                GridOptions {
                    bind: "127.0.0.1:0".parse().unwrap(),
                    offer_interval: std::time::Duration::from_secs(3600),
                    terms: Default::default(),
                    reach: Default::default(),
                },
                jobs,
            ))
            .expect("grid endpoint on loopback");
        let app = std::sync::Arc::new(http::AppState::new(
            continuum_node::async_host::AsyncHost::new(host),
            grid,
            OWNER_TOKEN.into(),
            64,
            1 << 20,
            tokio::sync::watch::channel(false).0,
            "http://127.0.0.1:0".into(),
            0,
        ));
        let router = http::router(app).layer(axum::Extension(http::Transport::Tcp));
        Node { runtime, router }
    })
}

const METHODS: [&str; 4] = ["GET", "POST", "DELETE", "PUT"];
const PATHS: [&str; 14] = [
    "/v1/node",
    "/v1/openapi.json",
    "/v1/commands",
    "/v1/commands/text/stats",
    "/v1/commands/text/convert-case",
    "/v1/commands/kv/put",
    "/v1/commands/kv/get",
    "/v1/plugins",
    "/v1/events",
    "/v1/events?limit=3&kind=call.",
    "/v1/offers",
    "/v1/offers/search?query=words",
    "/v1/reload",
    "/v1/nope",
];

fn http_request(u: &mut Unstructured<'_>) -> arbitrary::Result<Request<Body>> {
    let method = *u.choose(&METHODS)?;
    let mut path = u.choose(&PATHS)?.to_string();
    if u.ratio(1, 4)? {
        let extra: String = u.arbitrary()?;
        path.push_str(&extra.replace(|c: char| c.is_control() || c == ' ' || c == '#', ""));
    }
    let mut builder = Request::builder().method(method).uri(path.as_str()).header("host", "127.0.0.1:0");
    // Authentication: none, the owner, a wrong bearer, an API-key shape, or a peer signature.
    match u.int_in_range(0..=4)? {
        0 => {}
        1 => builder = builder.header("authorization", format!("Bearer {OWNER_TOKEN}")),
        2 => {
            builder = builder
                .header("authorization", format!("Bearer {}", u.arbitrary::<String>()?.replace(['\r', '\n'], "")))
        }
        3 => builder = builder.header("authorization", format!("Bearer ck_{}", u.arbitrary::<u64>()?)),
        _ => {
            let key = ed25519_dalek::SigningKey::from_bytes(&u.arbitrary()?);
            let body_for_signature: Vec<u8> = u.arbitrary()?;
            let grant: Option<String> =
                if u.arbitrary()? { Some(u.arbitrary::<String>()?.replace(['\r', '\n'], "")) } else { None };
            let target = auth::RequestToSign {
                node: NODE_ID,
                method,
                path: &path,
                grant: grant.as_deref(),
                body: &body_for_signature,
            };
            for (name, value) in auth::sign_request(&key, &target) {
                builder = builder.header(name, value);
            }
        }
    }
    if u.ratio(1, 8)? {
        builder = builder.header("x-continuum-as", u.arbitrary::<String>()?.replace(['\r', '\n'], ""));
    }
    let body: Vec<u8> = u.arbitrary()?;
    builder
        .header("content-type", "application/json")
        .body(Body::from(body))
        .map_err(|_| arbitrary::Error::IncorrectFormat)
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else { return };
    match choice % 4 {
        0 => {
            let node = node();
            let mut u = Unstructured::new(rest);
            let Ok(request) = http_request(&mut u) else { return };
            let (method, uri) = (request.method().clone(), request.uri().clone());
            let response = node.runtime.block_on(node.router.clone().oneshot(request)).expect("the router answers");
            assert_ne!(response.status().as_u16(), 500, "{method} {uri} → 500");
        }
        1 => {
            if let Ok(request) = serde_json::from_slice::<wire::Request>(rest) {
                let text = serde_json::to_vec(&request).expect("serializes");
                assert_eq!(serde_json::from_slice::<wire::Request>(&text).expect("round trip"), request);
            }
            let _ = serde_json::from_slice::<wire::Response>(rest);
        }
        2 => {
            if let Ok(offer) = serde_json::from_slice::<SignedOffer>(rest) {
                let _ = offer.verify();
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let mut parts = text.splitn(8, '\n');
            let mut next = || parts.next().unwrap_or_default().to_string();
            let (key, date, nonce, signature, method, path, grant, body) =
                (next(), next(), next(), next(), next(), next(), next(), next());
            let signed = auth::Signed { key: &key, date: &date, nonce: &nonce, signature: &signature };
            let target = auth::RequestToSign {
                node: NODE_ID,
                method: &method,
                path: &path,
                grant: (!grant.is_empty()).then_some(grant.as_str()),
                body: body.as_bytes(),
            };
            let _ = auth::verify_request(&signed, &target, continuum_core::now_secs());
        }
    }
});
