//! The grid: peers addressed by key over iroh (QUIC, dial-by-key), with relays, DNS/pkarr and
//! DHT discovery off — peers are reached only at the addresses the operator gave.
//!
//! Three protocols share one endpoint, whose key is the node key:
//! - `continuum/grid/1` ([`wire`]): remote calls, signed offers, log export;
//! - iroh-gossip: offers spread through the swarm ([`offers`]);
//! - iroh-blobs: alloys fetched by BLAKE3 hash and verified while streaming ([`fetch`]).
//!
//! Remote calls with quorum are in [`dispatch`], reducers in [`reduce`], log replication in
//! [`replicate`].

pub mod dispatch;
pub mod fetch;
pub mod offers;
pub mod peers;
pub mod reduce;
pub mod replicate;
pub mod search;
pub mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use iroh::address_lookup::MemoryLookup;
use iroh::endpoint::{presets, Connection, NetReportConfig};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
use iroh_blobs::store::mem::MemStore;
use iroh_gossip::api::{Event, GossipSender};
use iroh_gossip::net::Gossip;
use serde::Serialize;

use continuum_core::keys::public_hex;
use continuum_core::runtime::Host;
use continuum_core::sync::lock;
use offers::{Offer, SignedOffer};
use peers::Peer;
use wire::{Request, Response};

/// The gossip topic offers travel on.
const OFFER_TOPIC: &str = "continuum/offers/1";
/// How many recent call latencies the adaptive wait of `any` quorum looks at.
const LATENCY_WINDOW: usize = 128;
/// Most offers of other nodes held at once.
pub const MAX_OFFERS: usize = 1024;
/// Requests from all peers handled at once; more are answered `busy` at once.
pub const MAX_REQUESTS: usize = 64;
/// Requests from one connection handled at once.
pub const MAX_REQUESTS_PER_PEER: usize = 16;
/// Log pages one peer may ask for per [`LOG_PULL_WINDOW`].
pub const LOG_PULLS_PER_WINDOW: u32 = 20;
/// The window of the log-pull rate limit.
pub const LOG_PULL_WINDOW: Duration = Duration::from_secs(10);

/// How a node joins the grid.
#[derive(Debug, Clone)]
pub struct GridOptions {
    /// The UDP address to bind (loopback by default).
    pub bind: SocketAddr,
    /// How often the node re-announces its offer.
    pub offer_interval: Duration,
    /// Prices per command (`plugin/function` → text) to put in offers.
    pub prices: BTreeMap<String, String>,
}

/// An offer this node holds, and how it arrived.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KnownOffer {
    /// The verified offer.
    pub offer: Offer,
    /// `gossip`, or `direct` (asked of the peer itself).
    pub via: String,
    /// When it arrived (ms since the epoch).
    pub received_ms: i64,
}

/// Why a request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached (offline, wrong address, closed).
    #[error("peer {peer} is unreachable: {message}")]
    Unreachable { peer: String, message: String },
    /// The peer did not answer in time.
    #[error("peer {peer} did not answer within {ms} ms")]
    Timeout { peer: String, ms: u64 },
    /// The peer answered, but with something that is not a valid answer.
    #[error("peer {peer} sent a malformed answer: {message}")]
    Malformed { peer: String, message: String },
    /// The peer refused or failed the request; `outcome` as in its event log.
    #[error("peer {peer}: {message}")]
    Failed { peer: String, outcome: String, message: String },
}

impl PeerError {
    /// The short outcome name (`unreachable`, `timeout`, `denied`, …).
    pub fn outcome(&self) -> &str {
        match self {
            PeerError::Unreachable { .. } => "unreachable",
            PeerError::Timeout { .. } => "timeout",
            PeerError::Malformed { .. } => "malformed",
            PeerError::Failed { outcome, .. } => outcome,
        }
    }

    /// Whether trying again (on this or another peer) could help.
    pub fn retryable(&self) -> bool {
        matches!(self.outcome(), "unreachable" | "timeout" | "denied" | "unknown-command" | "host-error" | "malformed")
    }
}

/// A node's grid endpoint and what it knows about its peers.
#[derive(Clone)]
pub struct Grid {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    endpoint: Endpoint,
    router: Mutex<Option<Router>>,
    lookup: MemoryLookup,
    gossip: Gossip,
    sender: GossipSender,
    blobs: MemStore,
    own: RwLock<Option<SignedOffer>>,
    offers: RwLock<BTreeMap<String, KnownOffer>>,
    connections: Mutex<HashMap<String, Connection>>,
    latencies: Mutex<VecDeque<Duration>>,
    prices: BTreeMap<String, String>,
    /// How long an offer is kept without being renewed.
    offer_ttl: Duration,
    /// Requests being answered, over all peers.
    requests: Arc<tokio::sync::Semaphore>,
    /// Log pages served per peer in the current window: (window start, pages).
    log_pulls: Mutex<HashMap<String, (Instant, u32)>>,
}

#[derive(Clone)]
struct GridProtocol {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GridProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GridProtocol")
    }
}

impl ProtocolHandler for GridProtocol {
    async fn accept(&self, connection: Connection) -> Result<(), AcceptError> {
        let peer = hex::encode(connection.remote_id().as_bytes());
        let own = Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_PER_PEER));
        while let Ok((mut send, mut recv)) = connection.accept_bi().await {
            // A flood is answered `busy` at once rather than queued: neither one connection
            // nor all of them together can hold more than their share of the node.
            let permits =
                own.clone().try_acquire_owned().ok().zip(self.inner.requests.clone().try_acquire_owned().ok());
            let Some(permits) = permits else {
                tokio::spawn(async move {
                    let busy = Response::Failed {
                        outcome: "busy".into(),
                        message: "the node is answering as many grid requests as it takes; retry shortly".into(),
                    };
                    // Take the request off the stream first (briefly), so the peer reads the
                    // answer instead of a reset.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), recv.read_to_end(wire::MAX_REQUEST_BYTES)).await;
                    let _ = wire::send(&mut send, &busy).await;
                });
                continue;
            };
            let inner = self.inner.clone();
            let peer = peer.clone();
            tokio::spawn(async move {
                let _permits = permits;
                let response = match wire::receive::<Request>(&mut recv, wire::MAX_REQUEST_BYTES, "request").await {
                    Ok(request) => inner.answer(&peer, request).await,
                    Err(e) => Response::Failed { outcome: "bad-request".into(), message: format!("{e:#}") },
                };
                let _ = wire::send(&mut send, &response).await;
            });
        }
        Ok(())
    }
}

fn topic() -> iroh_gossip::proto::TopicId {
    iroh_gossip::proto::TopicId::from_bytes(*blake3::hash(OFFER_TOPIC.as_bytes()).as_bytes())
}

fn endpoint_addr(peer: &Peer) -> Result<EndpointAddr> {
    let bytes: [u8; 32] = hex::decode(&peer.id).ok().and_then(|b| b.try_into().ok()).context("bad peer id")?;
    let id = iroh::PublicKey::from_bytes(&bytes).context("the peer id is not a valid key")?;
    Ok(EndpointAddr::from_parts(id, peer.addrs.iter().map(|a| TransportAddr::Ip(*a))))
}

impl Grid {
    /// Binds the endpoint (node key, no relays, no discovery), joins the offer topic with the
    /// known peers, and starts announcing this node's offer.
    pub async fn start(host: Host, options: GridOptions) -> Result<Grid> {
        let secret = iroh::SecretKey::from_bytes(&host.core().node_key().to_bytes());
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
        let known = {
            let db = host.core().db();
            peers::list(&db)?
        };
        for peer in &known {
            lookup.add_endpoint_info(endpoint_addr(peer)?);
        }
        let gossip = Gossip::builder().max_message_size(offers::MAX_OFFER_BYTES + 4096).spawn(endpoint.clone());
        let blobs = MemStore::new();
        let ids = known.iter().filter_map(|p| endpoint_addr(p).ok().map(|a| a.id)).collect();
        let (sender, mut receiver) =
            gossip.subscribe(topic(), ids).await.context("cannot join the offer topic")?.split();
        let inner = Arc::new(Inner {
            host,
            endpoint: endpoint.clone(),
            router: Mutex::new(None),
            lookup,
            gossip: gossip.clone(),
            sender,
            blobs: blobs.clone(),
            own: RwLock::new(None),
            offers: RwLock::new(BTreeMap::new()),
            connections: Mutex::new(HashMap::new()),
            latencies: Mutex::new(VecDeque::new()),
            prices: options.prices,
            // Five missed announcements and a margin: an offer outlives gossip hiccups, not its node.
            offer_ttl: options.offer_interval * 5 + Duration::from_secs(5),
            requests: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS)),
            log_pulls: Mutex::new(HashMap::new()),
        });
        let router = Router::builder(endpoint)
            .accept(wire::ALPN, GridProtocol { inner: inner.clone() })
            .accept(iroh_gossip::ALPN, gossip)
            .accept(iroh_blobs::ALPN, iroh_blobs::BlobsProtocol::new(&blobs, None))
            .spawn();
        *lock(&inner.router) = Some(router);
        let grid = Grid { inner: inner.clone() };
        grid.refresh_offer().await?;
        let listener = inner.clone();
        tokio::spawn(async move {
            while let Some(event) = receiver.next().await {
                match event {
                    Ok(Event::Received(message)) => {
                        let received: Result<SignedOffer> =
                            serde_json::from_slice(&message.content).context("malformed offer message");
                        if let Err(e) = received.and_then(|o| listener.accept_offer(&o, "gossip")) {
                            tracing::warn!("ignored an offer from the grid: {e:#}");
                        }
                    }
                    Ok(Event::NeighborUp(_)) => listener.announce().await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("offer topic closed: {e}");
                        break;
                    }
                }
            }
        });
        let ticker = Grid { inner };
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(options.offer_interval);
            interval.tick().await;
            loop {
                interval.tick().await;
                if let Err(e) = ticker.refresh_offer().await {
                    tracing::warn!("cannot refresh this node's offer: {e:#}");
                }
            }
        });
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

    /// The host behind the grid.
    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// Adds (or updates) a peer, joins it to the offer topic and asks it for its offer.
    pub async fn add_peer(&self, spec: &str, name: Option<String>, grant: Option<String>) -> Result<Peer> {
        let (id, addrs) = peers::parse_spec(spec)?;
        if id == self.id() {
            anyhow::bail!("{spec} is this node itself");
        }
        let peer = Peer { id, name, addrs, grant };
        {
            let db = self.inner.host.core().db();
            peers::put(&db, &peer)?;
        }
        let addr = endpoint_addr(&peer)?;
        self.inner.lookup.add_endpoint_info(addr.clone());
        lock(&self.inner.connections).remove(&peer.id);
        self.inner.sender.join_peers(vec![addr.id]).await.context("cannot join the peer to the offer topic")?;
        self.inner.host.core().log().append("peer.added", &peer.id, &serde_json::json!({ "addrs": peer.addrs }))?;
        // Ask directly too, so its offer is known at once; an offline peer is still added.
        if let Err(e) = self.pull_offer(&peer).await {
            tracing::warn!("peer {} added, but its offer could not be fetched yet: {e}", short(&peer.id));
        }
        Ok(peer)
    }

    /// Forgets a peer (by id, prefix or name).
    pub fn remove_peer(&self, key: &str) -> Result<Peer> {
        let db = self.inner.host.core().db();
        let peer = peers::find(&db, key)?;
        peers::remove(&db, &peer.id)?;
        drop(db);
        self.inner.lookup.remove_endpoint_info(endpoint_addr(&peer)?.id);
        self.inner.offers.write().unwrap_or_else(|p| p.into_inner()).remove(&peer.id);
        lock(&self.inner.connections).remove(&peer.id);
        Ok(peer)
    }

    /// The known peers.
    pub fn peers(&self) -> Result<Vec<Peer>> {
        peers::list(&self.inner.host.core().db())
    }

    /// A known peer by id, prefix or name.
    pub fn peer(&self, key: &str) -> Result<Peer> {
        peers::find(&self.inner.host.core().db(), key)
    }

    /// How to reach node `id`: as a known peer, else at the addresses its signed offer gives.
    pub fn reach(&self, id: &str) -> Result<Peer> {
        if let Some(peer) = self.peers()?.into_iter().find(|p| p.id == id) {
            return Ok(peer);
        }
        let offers = self.inner.offers.read().unwrap_or_else(|p| p.into_inner());
        let known =
            offers.get(id).with_context(|| format!("node {} is neither a peer nor known from an offer", short(id)))?;
        let addrs = known.offer.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        Ok(Peer { id: id.to_string(), name: None, addrs, grant: None })
    }

    /// Every offer this node holds that has not expired (its own first).
    pub fn offers(&self) -> Vec<KnownOffer> {
        let own = self.inner.own.read().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|o| o.verify().ok());
        let mut all: Vec<KnownOffer> =
            own.map(|offer| KnownOffer { offer, via: "self".into(), received_ms: now_ms() }).into_iter().collect();
        let fresh_since = now_ms() - self.inner.offer_ttl.as_millis() as i64;
        all.extend(
            self.inner
                .offers
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|k| k.received_ms >= fresh_since)
                .cloned(),
        );
        all
    }

    /// Rebuilds this node's offer from its installed alloys and announces it.
    pub async fn refresh_offer(&self) -> Result<()> {
        let host = self.inner.host.clone();
        let pool = host.clone();
        let shippable = pool
            .offload(move || -> Result<Vec<_>> {
                let mut out = Vec::new();
                for record in host.plugins()? {
                    if let Some(alloy) = host.shipped_alloy(&record)? {
                        out.push((record, alloy.to_bytes()?));
                    }
                }
                Ok(out)
            })
            .await??;
        let mut plugins = Vec::new();
        for (record, bytes) in shippable {
            let size = bytes.len() as u64;
            let tag = self.inner.blobs.add_bytes(bytes).with_named_tag(format!("alloy/{}", record.name)).await?;
            let prices = |c: &str| self.inner.prices.get(c).cloned();
            plugins.push(offers::plugin_offer(&record, &tag.hash.to_hex(), size, &prices));
        }
        let addrs = self.addrs().iter().map(|a| a.to_string()).collect();
        let offer = Offer { node: self.id(), issued_ms: now_ms(), addrs, plugins };
        let signed = SignedOffer::sign(&offer, self.inner.host.core().node_key())?;
        *self.inner.own.write().unwrap_or_else(|p| p.into_inner()) = Some(signed);
        self.inner.announce().await;
        Ok(())
    }

    /// Asks `peer` for its offer directly and stores it.
    pub async fn pull_offer(&self, peer: &Peer) -> Result<Offer, PeerError> {
        match self.request(peer, &Request::Offer {}, Duration::from_secs(5)).await? {
            Response::Offer { offer } => {
                let verified = offer
                    .verify()
                    .map_err(|e| PeerError::Malformed { peer: short(&peer.id), message: format!("{e:#}") })?;
                if verified.node != peer.id {
                    return Err(PeerError::Malformed {
                        peer: short(&peer.id),
                        message: format!("it sent the offer of another node ({})", short(&verified.node)),
                    });
                }
                self.inner
                    .accept_offer(&offer, "direct")
                    .map_err(|e| PeerError::Malformed { peer: short(&peer.id), message: format!("{e:#}") })?;
                Ok(verified)
            }
            other => Err(unexpected(peer, &other)),
        }
    }

    /// Sends one request to `peer` and waits at most `timeout` for the answer. A cached
    /// connection that turns out dead is replaced once.
    pub async fn request(&self, peer: &Peer, request: &Request, timeout: Duration) -> Result<Response, PeerError> {
        let started = Instant::now();
        let name = short(&peer.id);
        let attempt = async {
            let mut last = None;
            for fresh in [false, true] {
                let conn = self.connection(peer, fresh).await?;
                match exchange(&conn, request).await {
                    Ok(response) => return Ok(response),
                    Err(e) => {
                        lock(&self.inner.connections).remove(&peer.id);
                        last = Some(e);
                    }
                }
            }
            let e = last.expect("two attempts were made");
            Err(PeerError::Unreachable { peer: name.clone(), message: format!("{e:#}") })
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(PeerError::Timeout { peer: name.clone(), ms: timeout.as_millis() as u64 }),
        };
        if result.is_ok() {
            let mut l = lock(&self.inner.latencies);
            l.push_back(started.elapsed());
            if l.len() > LATENCY_WINDOW {
                l.pop_front();
            }
        }
        match result? {
            Response::Failed { outcome, message } => Err(PeerError::Failed { peer: name, outcome, message }),
            r => Ok(r),
        }
    }

    /// The 95th percentile of recent successful request latencies, if any were measured.
    pub fn latency_p95(&self) -> Option<Duration> {
        let mut l: Vec<Duration> = lock(&self.inner.latencies).iter().copied().collect();
        if l.is_empty() {
            return None;
        }
        l.sort();
        Some(l[(l.len() * 95 / 100).min(l.len() - 1)])
    }

    async fn connection(&self, peer: &Peer, fresh: bool) -> Result<Connection, PeerError> {
        if !fresh {
            if let Some(c) = lock(&self.inner.connections).get(&peer.id).filter(|c| c.close_reason().is_none()) {
                return Ok(c.clone());
            }
        }
        let addr = endpoint_addr(peer)
            .map_err(|e| PeerError::Unreachable { peer: short(&peer.id), message: e.to_string() })?;
        let conn = self
            .inner
            .endpoint
            .connect(addr, wire::ALPN)
            .await
            .map_err(|e| PeerError::Unreachable { peer: short(&peer.id), message: e.to_string() })?;
        lock(&self.inner.connections).insert(peer.id.clone(), conn.clone());
        Ok(conn)
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

async fn exchange(conn: &Connection, request: &Request) -> Result<Response> {
    let (mut send, mut recv) = conn.open_bi().await?;
    wire::send(&mut send, request).await?;
    wire::receive(&mut recv, wire::MAX_RESPONSE_BYTES, "answer").await
}

fn unexpected(peer: &Peer, response: &Response) -> PeerError {
    let kind = serde_json::to_value(response).ok().and_then(|v| v["status"].as_str().map(String::from));
    PeerError::Malformed { peer: short(&peer.id), message: format!("unexpected `{}` answer", kind.unwrap_or_default()) }
}

impl Inner {
    async fn announce(&self) {
        let own = self.own.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(offer) = own {
            match serde_json::to_vec(&offer) {
                Ok(bytes) => {
                    if let Err(e) = self.sender.broadcast(bytes.into()).await {
                        tracing::warn!("cannot announce this node's offer: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot encode this node's offer: {e}"),
            }
        }
    }

    /// Verifies and stores an offer; an older one than held is ignored. The store holds at
    /// most [`MAX_OFFERS`]: when full, expired offers are dropped to make room, and when it is
    /// full of fresh ones a new node's offer is refused.
    fn accept_offer(&self, signed: &SignedOffer, via: &str) -> Result<()> {
        let offer = signed.verify()?;
        if offer.node == public_hex(&self.host.core().node_key().verifying_key()) {
            return Ok(());
        }
        let now = now_ms();
        let mut offers = self.offers.write().unwrap_or_else(|p| p.into_inner());
        if offers.get(&offer.node).is_some_and(|k| k.offer.issued_ms >= offer.issued_ms) {
            return Ok(());
        }
        if !offers.contains_key(&offer.node) && offers.len() >= MAX_OFFERS {
            let fresh_since = now - self.offer_ttl.as_millis() as i64;
            offers.retain(|_, k| k.received_ms >= fresh_since);
            if offers.len() >= MAX_OFFERS {
                anyhow::bail!(
                    "the offer store is full ({MAX_OFFERS} fresh offers); ignored the offer of {}",
                    short(&offer.node)
                );
            }
        }
        offers.insert(offer.node.clone(), KnownOffer { offer, via: via.into(), received_ms: now });
        Ok(())
    }

    /// Counts one log page for `peer`; false when it asked for more than its share.
    fn log_pull_allowed(&self, peer: &str) -> bool {
        let mut pulls = lock(&self.log_pulls);
        let now = Instant::now();
        pulls.retain(|_, (start, _)| now.duration_since(*start) < LOG_PULL_WINDOW);
        let (_, count) = pulls.entry(peer.to_string()).or_insert((now, 0));
        *count += 1;
        *count <= LOG_PULLS_PER_WINDOW
    }

    /// A page of this node's log for `peer`, if its grant confers [`wire::LOG_PULL`].
    async fn export_events(&self, peer: &str, since: u64, grant: Option<String>) -> Response {
        let denied = |message: String| Response::Failed { outcome: "denied".into(), message };
        let Some(token) = grant else {
            return denied(format!(
                "pulling this node's log needs a grant conferring `{0}`; its owner can issue one with `continuum grant issue --to {peer} --cap {0}`",
                wire::LOG_PULL
            ));
        };
        let host = self.host.clone();
        let holder = peer.to_string();
        let pool = host.clone();
        let checked = pool.offload(move || host.caller_presenting(&token, &holder)).await;
        match checked {
            Ok(Ok(continuum_core::Caller::Key { grant: Some(g), .. }))
                if g.caps.iter().any(|c| continuum_core::grants::confers(c, wire::LOG_PULL)) => {}
            Ok(Ok(_)) => return denied(format!("the grant presented does not confer `{}`", wire::LOG_PULL)),
            Ok(Err(e)) => return denied(format!("grant refused: {e}")),
            Err(e) => return Response::Failed { outcome: "host-error".into(), message: format!("{e:#}") },
        }
        if !self.log_pull_allowed(peer) {
            return Response::Failed {
                outcome: "busy".into(),
                message: format!(
                    "at most {LOG_PULLS_PER_WINDOW} log pages per {} s; retry shortly",
                    LOG_PULL_WINDOW.as_secs()
                ),
            };
        }
        let host = self.host.clone();
        let pool = host.clone();
        let export = pool
            .offload(move || -> Result<(String, u64)> {
                let mut out = Vec::new();
                let node = host.core().log().node().to_string();
                let count = continuum_core::eventlog::transfer::export(
                    &host.core().db(),
                    &node,
                    since,
                    wire::LOG_PAGE,
                    &mut out,
                )?;
                Ok((String::from_utf8(out)?, count))
            })
            .await;
        match export {
            Ok(Ok((export, count))) => Response::Events { export, more: count == wire::LOG_PAGE },
            Ok(Err(e)) | Err(e) => Response::Failed { outcome: "host-error".into(), message: format!("{e:#}") },
        }
    }

    async fn answer(&self, peer: &str, request: Request) -> Response {
        match request {
            Request::Offer {} => match self.own.read().unwrap_or_else(|p| p.into_inner()).clone() {
                Some(offer) => Response::Offer { offer },
                None => Response::Failed { outcome: "host-error".into(), message: "no offer yet".into() },
            },
            Request::Call { command, params, grant, deadline_ms } => {
                self.execute(peer, command, params, grant, deadline_ms).await
            }
            Request::Events { since, grant } => self.export_events(peer, since, grant).await,
        }
    }

    /// Runs a call for a peer: the peer's key is the caller (QUIC proved it), with the grant it
    /// presents checked exactly as for any caller.
    async fn execute(
        &self,
        peer: &str,
        command: String,
        params: serde_json::Value,
        grant: Option<String>,
        deadline_ms: u64,
    ) -> Response {
        let host = self.host.clone();
        let peer = peer.to_string();
        let pool = host.clone();
        let queued = pool
            .offload(move || {
                let caller = match &grant {
                    Some(token) => {
                        host.caller_presenting(token, &peer).map_err(|e| ("denied", format!("grant refused: {e}")))
                    }
                    None => host.caller_for(&peer).map_err(|e| ("denied", format!("{e:#}"))),
                }?;
                let deadline = Instant::now() + Duration::from_millis(deadline_ms.min(600_000));
                Ok(host.core().call_queued(&caller, &command, &params, 0, deadline))
            })
            .await;
        let report = match queued {
            Ok(Ok(call)) => call.committed().await,
            Ok(Err((outcome, message))) => return Response::Failed { outcome: outcome.into(), message },
            Err(e) => return Response::Failed { outcome: "host-error".into(), message: format!("{e:#}") },
        };
        match report.result {
            Ok(value) => Response::Ok { value, elapsed_us: report.elapsed.as_micros() as u64 },
            Err(e) => Response::Failed { outcome: e.outcome().into(), message: e.to_string() },
        }
    }
}

/// The first 12 digits of an id, for messages.
pub fn short(id: &str) -> String {
    continuum_core::alloy::custody::short(id).to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    /// A flood of offers from distinct keys (gossip relays anyone's) cannot grow the store past
    /// its cap, and offers nobody renews expire from it.
    #[test]
    fn the_offer_store_is_bounded_and_forgets_stale_offers() {
        let dir = tempfile::tempdir().unwrap();
        let host = crate::open_host(continuum_core::paths::DataDir::at(dir.path().to_path_buf()).unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let options = GridOptions {
                bind: "127.0.0.1:0".parse().unwrap(),
                offer_interval: Duration::from_millis(10),
                prices: Default::default(),
            };
            let grid = Grid::start(host, options).await.unwrap();
            let offer_from = |i: usize| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                let key = SigningKey::from_bytes(&seed);
                let offer = Offer {
                    node: public_hex(&key.verifying_key()),
                    issued_ms: now_ms(),
                    addrs: vec![],
                    plugins: vec![],
                };
                SignedOffer::sign(&offer, &key).unwrap()
            };
            let refused =
                (0..MAX_OFFERS + 100).filter(|&i| grid.inner.accept_offer(&offer_from(i), "gossip").is_err()).count();
            assert_eq!(refused, 100, "the store took more than {MAX_OFFERS} offers");
            assert_eq!(grid.offers().len(), MAX_OFFERS + 1, "its own and the fresh ones");
            // Five offer intervals and the margin without renewal: gone from what dispatch and
            // listings see, and their room is free again.
            tokio::time::sleep(Duration::from_millis(5_200)).await;
            assert_eq!(grid.offers().len(), 1);
            grid.inner.accept_offer(&offer_from(MAX_OFFERS + 200), "gossip").unwrap();
            grid.shutdown().await;
        });
    }
}
