//! The grid: peers addressed by key over iroh (QUIC, dial-by-key). DNS/pkarr and DHT discovery
//! are off; peers are reached at the addresses the operator gave, and — each only when
//! configured — through relays ([`relay`]), found on the LAN ([`lan`]), or introduced by peers
//! ([`introductions`]); what is heard of but not accepted is in [`discovered`].
//!
//! Three protocols share one endpoint, whose key is the node key:
//! - `continuum/grid/3` ([`wire`]): remote calls (streamed when asked), jobs under leases,
//!   signed offers, log export — asked of peers in `request.rs` and `jobs.rs`, answered in
//!   `serve.rs` within the node's request budgets;
//! - iroh-gossip: offers ([`offers`]) spread through the swarm and held in `offer_store.rs`;
//! - iroh-blobs: alloys fetched by BLAKE3 hash and verified while streaming ([`fetch`]).
//!
//! This module starts and stops the endpoint and manages the known peers ([`peers`]). Remote
//! calls with quorum are in [`dispatch`], reducers in [`reduce`], log replication in
//! [`replicate`]. Grid code reaches the host only through [`AsyncHost`], so its blocking work
//! runs on the host's call pool, never on the async runtime.

mod capacity;
pub mod discovered;
pub mod dispatch;
pub mod fetch;
pub mod introductions;
mod jobs;
mod lan;
mod latency;
mod offer_store;
pub mod offers;
pub mod peers;
pub mod reduce;
pub mod relay;
pub mod replicate;
mod request;
mod request_ids;
mod route;
pub mod search;
mod serve;
pub mod wire;

pub use capacity::{Capacity, Gpu, Load, ResidentModel, ServedLatency};
pub use offer_store::{KnownOffer, MAX_OFFERS, MAX_OFFER_TTL};
pub use request::PeerError;
pub use serve::{
    LOG_PULLS_PER_WINDOW, LOG_PULL_WINDOW, MAX_FOLLOWS, MAX_FOLLOWS_PER_PEER, MAX_LEASE, MAX_REQUESTS,
    MAX_REQUESTS_PER_PEER, MIN_LEASE, WRITE_TIMEOUT,
};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{presets, Connection};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, TransportAddr};
use iroh_blobs::store::mem::MemStore;
use iroh_gossip::api::GossipSender;
use iroh_gossip::net::Gossip;

use crate::async_host::AsyncHost;
use crate::jobs::Jobs;
use crate::market::terms::Terms;
use capacity::CallsRunning;
use continuum_core::runtime::Host;
use continuum_core::sync::lock;
use latency::LatencyWindow;
use offer_store::OfferStore;
use peers::Peer;
use serve::{Budgets, GridProtocol};

/// How a node joins the grid.
#[derive(Debug, Clone)]
pub struct GridOptions {
    /// The UDP address to bind (loopback by default).
    pub bind: SocketAddr,
    /// How often the node re-announces its offer.
    pub offer_interval: Duration,
    /// What the node asks (prices) and whom it refuses for lack of credits.
    pub terms: Terms,
    /// How it meets nodes beyond the peers it was given.
    pub reach: Reach,
}

/// How a node meets nodes beyond the peers it was given (each off unless configured, but for
/// `shareable`).
#[derive(Debug, Clone)]
pub struct Reach {
    /// Announce this node and list the nodes heard on the LAN (multicast).
    pub lan: bool,
    /// Relay servers to stay reachable through (none: no relay is ever contacted).
    pub relays: Vec<iroh::RelayUrl>,
    /// Let this node's addresses travel beyond its peers: in its offer, and in its peers'
    /// introductions (its consent). Off, its offer carries no address.
    pub shareable: bool,
    /// Add nodes that peers introduce as peers at once, instead of listing them as discovered.
    pub accept_introductions: bool,
    /// Owner keys (hex) whose node sets make a discovered node a peer at once.
    pub accept_nodes_of: Vec<String>,
}

/// A node's grid endpoint and what it knows about its peers.
#[derive(Clone)]
pub struct Grid {
    inner: Arc<Inner>,
}

/// What every handle of a grid, its protocol handler and its gossip share.
struct Inner {
    /// The host, reached only through its call pool.
    host: AsyncHost,
    endpoint: Endpoint,
    /// Accepts the three protocols; taken at shutdown.
    router: Mutex<Option<Router>>,
    /// The peers' addresses, where the endpoint dials them.
    lookup: MemoryLookup,
    gossip: Gossip,
    /// Broadcasts on the offer topic.
    sender: GossipSender,
    /// The alloys this node ships, served over iroh-blobs.
    blobs: MemStore,
    offers: OfferStore,
    /// What this node asks, put in its offer and on its receipts.
    terms: Terms,
    /// Peers' calls being answered now.
    calls_running: CallsRunning,
    /// How long the calls this node answered took.
    served: LatencyWindow,
    /// Open connections to peers, by peer id.
    connections: Mutex<HashMap<String, Connection>>,
    latencies: LatencyWindow,
    budgets: Budgets,
    /// This node's jobs, which peers submit to.
    jobs: Jobs,
    /// How it meets other nodes.
    reach: Reach,
    /// Nodes heard of (LAN, introductions) but not accepted.
    discovered: discovered::Discovered,
    /// The request ids of peers' calls answered lately.
    request_ids: Arc<request_ids::RequestIds>,
    /// The node set this node carries (as of its last offer), presented with its calls.
    node_set: Mutex<Option<continuum_core::node_set::SignedNodeSet>>,
}

/// Where the endpoint dials `peer`: its key, at its direct addresses and through its relays.
fn endpoint_addr(peer: &Peer) -> Result<EndpointAddr> {
    let bytes: [u8; 32] = hex::decode(&peer.id).ok().and_then(|b| b.try_into().ok()).context("bad peer id")?;
    let id = iroh::PublicKey::from_bytes(&bytes).context("the peer id is not a valid key")?;
    let relays =
        peer.relays.iter().map(|r| peers::relay_url(r).map(TransportAddr::Relay)).collect::<Result<Vec<_>>>()?;
    Ok(EndpointAddr::from_parts(id, peer.addrs.iter().map(|a| TransportAddr::Ip(*a)).chain(relays)))
}

impl Default for Reach {
    fn default() -> Reach {
        Reach {
            lan: false,
            relays: Vec::new(),
            shareable: true,
            accept_introductions: false,
            accept_nodes_of: Vec::new(),
        }
    }
}

impl Reach {
    /// The reach `[grid]` configures, with `lan` and `relays` from the command line added.
    pub fn from_config(grid: &continuum_core::config::GridSection, lan: bool, relays: &[String]) -> Result<Reach> {
        let relays = grid
            .relays
            .iter()
            .chain(relays)
            .map(|r| peers::relay_url(r).with_context(|| format!("[grid] relays / --relay: `{r}`")))
            .collect::<Result<Vec<_>>>()?;
        let accept_nodes_of = grid
            .accept_nodes_of
            .iter()
            .map(|k| {
                continuum_core::keys::parse_public(k)
                    .map(|key| continuum_core::keys::public_hex(&key))
                    .with_context(|| format!("[grid] accept-nodes-of: `{k}` is not an owner key"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Reach {
            lan: grid.lan || lan,
            relays,
            shareable: grid.shareable.unwrap_or(true),
            accept_introductions: grid.accept_introductions,
            accept_nodes_of,
        })
    }
}

impl Grid {
    /// Binds the endpoint (node key; relays and LAN discovery only as `options.reach` says),
    /// joins the offer topic with the known peers, and starts announcing this node's offer;
    /// peers submit jobs to `jobs`.
    pub async fn start(host: Host, options: GridOptions, jobs: Jobs) -> Result<Grid> {
        let secret = iroh::SecretKey::from_bytes(&host.core().node_key().to_bytes());
        let host = AsyncHost::new(host);
        let lookup = MemoryLookup::new();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .relay_mode(relay::mode(&options.reach.relays))
            .net_report_config(relay::net_report(&options.reach.relays))
            .address_lookup(lookup.clone())
            // Only the given address: no wildcard IPv4/IPv6 sockets beside it.
            .clear_ip_transports()
            .bind_addr(options.bind)
            .with_context(|| format!("cannot use {} for the grid", options.bind))?
            .bind()
            .await
            .with_context(|| format!("cannot bind the grid endpoint on {}", options.bind))?;
        let known = host.run(|host| peers::list(&host.core().db())).await??;
        for peer in &known {
            lookup.add_endpoint_info(endpoint_addr(peer)?);
        }
        let gossip = Gossip::builder().max_message_size(offers::MAX_OFFER_BYTES + 4096).spawn(endpoint.clone());
        let blobs = MemStore::new();
        let ids = known.iter().filter_map(|p| endpoint_addr(p).ok().map(|a| a.id)).collect();
        let (sender, receiver) =
            gossip.subscribe(offer_store::topic(), ids).await.context("cannot join the offer topic")?.split();
        let inner = Arc::new(Inner {
            offers: OfferStore::new(host.node_id(), options.offer_interval),
            host,
            endpoint: endpoint.clone(),
            router: Mutex::new(None),
            lookup,
            gossip: gossip.clone(),
            sender,
            blobs: blobs.clone(),
            terms: options.terms,
            calls_running: CallsRunning::default(),
            served: LatencyWindow::default(),
            connections: Mutex::new(HashMap::new()),
            latencies: LatencyWindow::default(),
            budgets: Budgets::new(),
            jobs,
            reach: options.reach.clone(),
            discovered: Default::default(),
            request_ids: Default::default(),
            node_set: Mutex::new(None),
        });
        let router = Router::builder(endpoint)
            .accept(wire::ALPN, GridProtocol { inner: inner.clone() })
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&blobs, None))
            .spawn();
        *lock(&inner.router) = Some(router);
        let grid = Grid { inner };
        if !options.reach.relays.is_empty() {
            relay::wait_for_home_relay(&grid).await;
        }
        if options.reach.lan {
            lan::start(&grid).await?;
        }
        grid.refresh_offer().await?;
        offer_store::spawn_gossip(&grid, receiver, options.offer_interval);
        Ok(grid)
    }

    /// This node's id (its key, hex).
    pub fn id(&self) -> String {
        hex::encode(self.inner.endpoint.id().as_bytes())
    }

    /// The UDP addresses the endpoint is bound to.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.inner.endpoint.bound_sockets()
    }

    /// Where peers reach this node: its bound addresses, then its home relay's URL (with relays).
    pub fn reachable_at(&self) -> Vec<String> {
        let relays: Vec<String> = self.inner.endpoint.addr().relay_urls().map(ToString::to_string).collect();
        self.addrs().iter().map(ToString::to_string).chain(relays).collect()
    }

    /// The node set this node carries, presented with its calls.
    fn carried_node_set(&self) -> Option<continuum_core::node_set::SignedNodeSet> {
        lock(&self.inner.node_set).clone()
    }

    /// This node's jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.inner.jobs
    }

    /// The host behind the grid, for work on its call pool.
    pub fn host(&self) -> &AsyncHost {
        &self.inner.host
    }

    /// Adds (or updates) a peer, joins it to the offer topic and asks it for its offer.
    pub async fn add_peer(&self, spec: &str, name: Option<String>, grant: Option<String>) -> Result<Peer> {
        let (id, addrs, relays) = peers::parse_spec(spec)?;
        self.add_known(Peer { id, name, addrs, relays, grant }, "added").await
    }

    /// Makes a discovered node (`key`: its id or a prefix) a peer: the operator's acceptance.
    pub async fn accept_discovered(&self, key: &str, name: Option<String>) -> Result<Peer> {
        let node = self.inner.discovered.find(key)?;
        let (addrs, relays) = peers::parse_addrs(node.addrs.iter().map(String::as_str))?;
        let peer = Peer { id: node.id.clone(), name, addrs, relays, grant: None };
        self.add_known(peer, &format!("accepted ({})", node.source)).await
    }

    /// The nodes heard of (LAN, introductions) that are not peers.
    pub async fn discovered(&self) -> Result<Vec<discovered::DiscoveredNode>> {
        let known = self.peers().await?;
        Ok(self.inner.discovered.list().into_iter().filter(|n| !known.iter().any(|p| p.id == n.id)).collect())
    }

    /// Stores `peer` (how it came: `source`), dials it by its addresses from now on, joins it
    /// to the offer topic and asks it for its offer.
    async fn add_known(&self, peer: Peer, source: &str) -> Result<Peer> {
        if peer.id == self.id() {
            anyhow::bail!("{} is this node itself", peer.id);
        }
        let addr = endpoint_addr(&peer)?;
        let stored = peer.clone();
        self.inner.host.run(move |host| peers::put(&host.core().db(), &stored)).await??;
        self.inner.lookup.add_endpoint_info(addr.clone());
        self.inner.discovered.forget(&peer.id);
        lock(&self.inner.connections).remove(&peer.id);
        self.inner.sender.join_peers(vec![addr.id]).await.context("cannot join the peer to the offer topic")?;
        let subject = peer.id.clone();
        let payload = serde_json::json!({ "addrs": peer.addrs, "relays": peer.relays, "source": source });
        self.inner.host.run(move |host| host.core().log().append("peer.added", &subject, &payload)).await??;
        // Ask directly too, so its offer is known at once; an offline peer is still added.
        if let Err(e) = self.pull_offer(&peer).await {
            tracing::warn!("peer {} added, but its offer could not be fetched yet: {e}", short(&peer.id));
        }
        Ok(peer)
    }

    /// Forgets a peer (by id, prefix or name).
    pub async fn remove_peer(&self, key: &str) -> Result<Peer> {
        let key = key.to_string();
        let peer = self
            .inner
            .host
            .run(move |host| -> Result<Peer> {
                let db = host.core().db();
                let peer = peers::find(&db, &key)?;
                peers::remove(&db, &peer.id)?;
                Ok(peer)
            })
            .await??;
        self.inner.lookup.remove_endpoint_info(endpoint_addr(&peer)?.id);
        self.inner.offers.forget(&peer.id);
        lock(&self.inner.connections).remove(&peer.id);
        Ok(peer)
    }

    /// The known peers.
    pub async fn peers(&self) -> Result<Vec<Peer>> {
        self.inner.host.run(|host| peers::list(&host.core().db())).await?
    }

    /// The known peers, with the path of the open connection to each.
    pub async fn peer_views(&self) -> Result<Vec<peers::PeerView>> {
        let views = self.peers().await?.into_iter();
        Ok(views.map(|peer| peers::PeerView { path: self.path_to(&peer.id).map(String::from), peer }).collect())
    }

    /// The path of the open connection to node `id`, if any.
    pub fn path_to(&self, id: &str) -> Option<&'static str> {
        lock(&self.inner.connections).get(id).filter(|c| c.close_reason().is_none()).map(relay::path_of)
    }

    /// A known peer by id, prefix or name.
    pub async fn peer(&self, key: &str) -> Result<Peer> {
        peers::find_in(&self.peers().await?, key)
    }

    /// How to reach node `id`: as a known peer, else at the addresses its signed offer gives.
    pub async fn reach(&self, id: &str) -> Result<Peer> {
        self.reach_among(&self.peers().await?, id)
    }

    /// How to reach node `id` when `known` are the known peers (see [`Grid::reach`]).
    fn reach_among(&self, known: &[Peer], id: &str) -> Result<Peer> {
        if let Some(peer) = known.iter().find(|p| p.id == id) {
            return Ok(peer.clone());
        }
        let offered = self
            .inner
            .offers
            .addrs_of(id)
            .with_context(|| format!("node {} is neither a peer nor known from an offer", short(id)))?;
        // An address that does not parse is skipped, not the whole offer.
        let usable = offered.iter().map(String::as_str).filter(|a| peers::parse_addrs([*a]).is_ok());
        let (addrs, relays) = peers::parse_addrs(usable)?;
        Ok(Peer { id: id.to_string(), name: None, addrs, relays, grant: None })
    }

    /// Closes the endpoint: stops accepting, says goodbye to peers.
    pub async fn shutdown(&self) {
        let router = lock(&self.inner.router).take();
        if let Some(router) = router {
            let _ = router.shutdown().await;
        }
        let _ = self.inner.gossip.shutdown().await;
        self.inner.endpoint.close().await;
    }
}

/// The first 12 digits of an id, for messages.
pub fn short(id: &str) -> String {
    continuum_core::alloy::custody::short(id).to_string()
}
