//! Relays (opt-in): a node configured with relay servers (`[grid] relays`, `serve --relay`)
//! stays connected to the nearest one as its home relay and gives its URL with its addresses,
//! so peers behind other NATs reach it through the relay when no direct path works; iroh then
//! tries to move the connection to a direct path (hole punching), and [`path_of`] says which
//! one a connection uses. No relay is contacted unless configured.
//!
//! [`serve`] runs a relay server (`continuum relay serve`): iroh's relay over plain HTTP, which
//! only the node keys on its allow-list may use — an operator hosts one for their own peers.
//! The relay forwards QUIC packets it cannot read (end-to-end encrypted between the nodes).
//! Without TLS it offers no QUIC address discovery, so nodes behind NAT learn no public address
//! from it and hole punching across two NATs usually fails: such connections stay relayed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use iroh::endpoint::{Connection, NetReportConfig};
use iroh::{EndpointId, RelayConfig, RelayMap, RelayMode, RelayUrl};
use iroh_relay::server::{
    Access, AccessControl, ClientRequest, RelayConfig as RelayServerConfig, Server, ServerConfig,
};

use super::Grid;

/// How long starting a node waits for its home relay before serving without one.
const HOME_RELAY_WAIT: Duration = Duration::from_secs(10);

/// The endpoint's relay mode: off without relays, else exactly these (no QUIC address discovery).
pub(super) fn mode(relays: &[RelayUrl]) -> RelayMode {
    if relays.is_empty() {
        return RelayMode::Disabled;
    }
    RelayMode::Custom(relays.iter().map(|url| RelayConfig::new(url.clone(), None)).collect::<RelayMap>())
}

/// What the endpoint measures of the network: nothing, except with relays the HTTP probe that
/// picks the nearest one as the home relay.
pub(super) fn net_report(relays: &[RelayUrl]) -> NetReportConfig {
    let mut config = NetReportConfig::minimal();
    config.https_probes = !relays.is_empty();
    config
}

/// Waits (a bounded while) until the node is connected to a home relay, so the addresses it
/// gives out include it; a relay that cannot be reached, or refuses this node, is logged with
/// its reason (and shown by `continuum node info`), not fatal.
pub(super) async fn wait_for_home_relay(grid: &Grid) {
    if tokio::time::timeout(HOME_RELAY_WAIT, grid.inner.endpoint.online()).await.is_err() {
        let why: Vec<String> = status(grid).iter().map(|s| format!("{}: {}", s.url, s.state)).collect();
        tracing::warn!(
            "no configured relay took this node within {} s; serving without one, so peers behind NAT cannot reach it ({})",
            HOME_RELAY_WAIT.as_secs(),
            why.join("; ")
        );
    }
}

/// How this node stands with a configured relay.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RelayState {
    /// The relay.
    pub url: String,
    /// `connected`, `refused: <the relay's reason>`, `failing: <error>` or `connecting`.
    pub state: String,
}

/// This node's standing with its relays (empty without relays).
pub fn status(grid: &Grid) -> Vec<RelayState> {
    use iroh::Watcher;
    let mut watcher = grid.inner.endpoint.home_relay_status();
    watcher
        .get()
        .iter()
        .map(|s| {
            let state = if s.is_connected() {
                "connected".to_string()
            } else if let Some(reason) = s.auth_denied_reason() {
                format!("refused: {reason}")
            } else if let Some(error) = s.last_error() {
                format!("failing: {error}")
            } else {
                "connecting".to_string()
            };
            RelayState { url: s.url().to_string(), state }
        })
        .collect()
}

/// Whether `connection` now goes `direct`, through a `relay`, or is not settled (`unknown`).
pub fn path_of(connection: &Connection) -> &'static str {
    let paths = connection.paths();
    let kind = match paths.iter().find(|p| p.is_selected()) {
        Some(p) if p.is_ip() => "direct",
        Some(p) if p.is_relay() => "relay",
        _ => "unknown",
    };
    kind
}

/// The relay's allow-list: the node keys given at start, and those of a file read again at
/// each connection (so the list can change without a restart).
#[derive(Debug)]
struct AllowList {
    keys: HashSet<EndpointId>,
    file: Option<PathBuf>,
}

impl AllowList {
    /// Whether `key` may use the relay; the refusal's reason otherwise.
    fn check(&self, key: &EndpointId) -> Result<(), String> {
        if self.keys.contains(key) {
            return Ok(());
        }
        if let Some(file) = &self.file {
            let listed = read_allow_file(file).map_err(|e| format!("the relay's allow-list is unreadable: {e:#}"))?;
            if listed.contains(key) {
                return Ok(());
            }
        }
        Err("this node key is not on the relay's allow-list".into())
    }
}

impl AccessControl for AllowList {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        match self.check(&request.endpoint_id()) {
            Ok(()) => Access::Allow,
            Err(reason) => {
                tracing::info!("relay refused node {}: {reason}", request.endpoint_id());
                Access::Deny { reason: Some(reason) }
            }
        }
    }
}

/// The node ids in an allow-list file: one per line, `#` starts a comment.
fn read_allow_file(file: &Path) -> Result<HashSet<EndpointId>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    parse_keys(text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()))
        .with_context(|| format!("in {}", file.display()))
}

/// Node ids (hex) as endpoint ids; the error names the one that is not.
fn parse_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<HashSet<EndpointId>> {
    keys.into_iter()
        .map(|k| k.parse::<EndpointId>().map_err(|e| anyhow::anyhow!("`{k}` is not a node id: {e}")))
        .collect()
}

/// A running relay server.
pub struct Relay {
    server: Server,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Starts a relay server on `bind` (plain HTTP) that only the node keys `allowed` (hex), and
/// those listed in `allow_file` when it is read at each connection, may use.
pub async fn serve(bind: SocketAddr, allowed: &[String], allow_file: Option<PathBuf>) -> Result<Relay> {
    anyhow::ensure!(
        !allowed.is_empty() || allow_file.is_some(),
        "a relay serves only the node keys it is given: pass --allow <node-id> or --allow-file <file>"
    );
    let keys = parse_keys(allowed.iter().map(String::as_str)).context("--allow")?;
    if let Some(file) = &allow_file {
        read_allow_file(file)?;
    }
    let mut relay = RelayServerConfig::new(bind);
    relay.access = Arc::new(AllowList { keys, file: allow_file });
    let mut config = ServerConfig::default();
    config.relay = Some(relay);
    let server = Server::spawn(config).await.with_context(|| format!("cannot start a relay on {bind}"))?;
    let addr = server.http_addr().context("the relay has no HTTP address")?;
    Ok(Relay { server, addr })
}

impl Relay {
    /// Stops the relay: its clients are disconnected.
    pub async fn shutdown(self) -> Result<()> {
        self.server.shutdown().await.context("the relay did not stop cleanly")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_admits_listed_keys_and_rereads_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("allowed");
        let key = |n: u8| iroh::SecretKey::from_bytes(&[n; 32]).public();
        std::fs::write(&file, format!("# ours\n{}\n", key(1))).unwrap();
        let list = AllowList { keys: [key(2)].into_iter().collect(), file: Some(file.clone()) };
        assert!(list.check(&key(1)).is_ok() && list.check(&key(2)).is_ok());
        assert!(list.check(&key(3)).unwrap_err().contains("not on the relay's allow-list"));
        std::fs::write(&file, format!("{}\n", key(3))).unwrap();
        assert!(list.check(&key(3)).is_ok(), "the file is read again at each connection");
        std::fs::write(&file, "not-a-key\n").unwrap();
        assert!(list.check(&key(3)).unwrap_err().contains("unreadable"));
    }
}
