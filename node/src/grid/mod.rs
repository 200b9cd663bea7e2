//! The grid: peers addressed by key over iroh (QUIC, dial-by-key), with relays, DNS/pkarr and
//! DHT discovery off — peers are reached only at the addresses the operator gave.
//!
//! Three protocols share one endpoint, whose key is the node key:
//! - `continuum/grid/2` ([`wire`]): remote calls (streamed when asked), jobs under leases,
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
pub mod dispatch;
pub mod fetch;
mod jobs;
mod latency;
mod offer_store;
pub mod offers;
pub mod peers;
pub mod reduce;
pub mod replicate;
mod request;
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
use iroh::endpoint::{presets, Connection, NetReportConfig};
use iroh::protocol::Router;
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
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
}

/// Where the endpoint dials `peer`: its key, at its direct addresses.
fn endpoint_addr(peer: &Peer) -> Result<EndpointAddr> {
    let bytes: [u8; 32] = hex::decode(&peer.id).ok().and_then(|b| b.try_into().ok()).context("bad peer id")?;
    let id = iroh::PublicKey::from_bytes(&bytes).context("the peer id is not a valid key")?;
    Ok(EndpointAddr::from_parts(id, peer.addrs.iter().map(|a| TransportAddr::Ip(*a))))
}

impl Grid {
    /// Binds the endpoint (node key, no relays, no discovery), joins the offer topic with the
    /// known peers, and starts announcing this node's offer; peers submit jobs to `jobs`.
    pub async fn start(host: Host, options: GridOptions, jobs: Jobs) -> Result<Grid> {
        let secret = iroh::SecretKey::from_bytes(&host.core().node_key().to_bytes());
        let host = AsyncHost::new(host);
        let lookup = MemoryLookup::new();
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret)
            .relay_mode(RelayMode::Disabled)
            .net_report_config(NetReportConfig::minimal())
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
        });
        let router = Router::builder(endpoint)
            .accept(wire::ALPN, GridProtocol { inner: inner.clone() })
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&blobs, None))
            .spawn();
        *lock(&inner.router) = Some(router);
        let grid = Grid { inner };
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
        let (id, addrs) = peers::parse_spec(spec)?;
        if id == self.id() {
            anyhow::bail!("{spec} is this node itself");
        }
        let peer = Peer { id, name, addrs, grant };
        let stored = peer.clone();
        self.inner.host.run(move |host| peers::put(&host.core().db(), &stored)).await??;
        let addr = endpoint_addr(&peer)?;
        self.inner.lookup.add_endpoint_info(addr.clone());
        lock(&self.inner.connections).remove(&peer.id);
        self.inner.sender.join_peers(vec![addr.id]).await.context("cannot join the peer to the offer topic")?;
        let (subject, payload) = (peer.id.clone(), serde_json::json!({ "addrs": peer.addrs }));
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
        let addrs = self
            .inner
            .offers
            .addrs_of(id)
            .with_context(|| format!("node {} is neither a peer nor known from an offer", short(id)))?;
        Ok(Peer { id: id.to_string(), name: None, addrs, grant: None })
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
