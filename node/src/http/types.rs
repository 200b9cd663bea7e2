//! The API's own request and response bodies and query strings. Every body derives both
//! `Serialize` and `Deserialize`, so a client (the CLI) sends and reads the server's types
//! rather than building and indexing JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::grid::search::GridMatch;
use continuum_core::discovery::Method;

/// The node (`GET /v1/node`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// The node id (its public key, hex).
    pub id: String,
    /// The host version.
    pub version: String,
    /// The HTTP API address.
    pub http: String,
    /// Where peers reach the grid endpoint: its UDP addresses, and its home relay.
    pub grid: Vec<String>,
    /// How the node stands with each relay it is configured with.
    #[serde(default)]
    pub relays: Vec<crate::grid::relay::RelayState>,
    /// Installed plugins.
    pub plugins: usize,
    /// Known peers.
    pub peers: usize,
    /// Seconds since the node started.
    pub uptime_s: u64,
}

/// A call's result (`POST /v1/commands/{name}`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallResponse {
    /// The command's JSON result.
    #[schema(value_type = serde_json::Value)]
    pub result: Value,
    /// Call time in microseconds.
    pub elapsed_us: u64,
    /// What the plugin wrote to stdout/stderr (control characters stripped), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A job to submit (`POST /v1/jobs`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The command, `plugin/function`.
    pub command: String,
    /// Its parameters (default: none).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// Run it on a peer: its id, prefix or name, or `any` (owner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// With `on`: a grant token to present (default: the one stored with the peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// With `on`: the lease in milliseconds (default `[jobs] lease-secs`, 1 s to 1 h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
    /// With `on: any`: also consider nodes known only from gossiped offers.
    #[serde(default)]
    pub strangers: bool,
}

/// Filters for the event list and stream (`GET /v1/events`, `GET /v1/events/stream`).
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    /// Only entries after this sequence number.
    pub after: Option<u64>,
    /// Only this kind, or a prefix ending in `.`.
    pub kind: Option<String>,
    /// At most this many (list only; default 100, at most 1000).
    pub limit: Option<u64>,
}

/// A peer to add (`POST /v1/peers`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeer {
    /// `<node-id>@<ip:port>`.
    pub address: String,
    /// A nickname.
    #[serde(default)]
    pub name: Option<String>,
    /// A grant token the peer issued to this node.
    #[serde(default)]
    pub grant: Option<String>,
}

/// A discovered node to accept as a peer (`POST /v1/peers/accept`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptPeer {
    /// Its id, or a prefix of at least 8 digits.
    pub key: String,
    /// A nickname.
    #[serde(default)]
    pub name: Option<String>,
}

/// An offer search (`GET /v1/offers/search`).
#[derive(Debug, Deserialize, IntoParams)]
pub struct OfferQuery {
    /// What the command should do, in plain words.
    pub query: String,
    /// How many matches (default 10).
    pub top: Option<usize>,
}

/// Ranked commands on offer (`GET /v1/offers/search`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OfferSearch {
    /// How they were ranked.
    pub ranking: Method,
    /// Best first.
    pub matches: Vec<GridMatch>,
}

/// A plugin to install from a peer (`POST /v1/grid/install`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallFrom {
    /// Plugin name or component digest.
    pub plugin: String,
    /// `any`, or a peer.
    #[serde(default = "any_peer")]
    pub from: String,
    /// Host capabilities to approve.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Install even if the signer is not trusted.
    #[serde(default)]
    pub allow_untrusted: bool,
}

/// Where [`InstallFrom`] installs from when it names no peer: any peer that offers the plugin.
fn any_peer() -> String {
    "any".into()
}

/// A log pull (`POST /v1/grid/events/pull`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pull {
    /// The peer.
    pub peer: String,
}

/// What a log pull imported (`POST /v1/grid/events/pull`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Pulled {
    /// The peer's node id.
    pub node: String,
    /// Entries newly stored.
    pub entries: u64,
    /// The local Lamport time after the pull.
    pub lamport: u64,
}
