//! The offers this node holds and the gossip that spreads them. The store keeps this node's
//! own signed offer and the verified offers of others — at most [`MAX_OFFERS`], each forgotten
//! when its node stops renewing it. The gossip loop takes in what others announce and
//! announces this node's offer on an interval and to each new neighbour.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use iroh_gossip::api::{Event, GossipReceiver};
use serde::Serialize;

use super::capacity::{self, Capacity, Load, ServedLatency};
use super::introductions::Introduction;
use super::offers::{self, Offer, SignedOffer};
use super::peers::Peer;
use super::request::{unexpected, PeerError};
use super::wire::{Request, Response};
use super::{short, Grid, Inner};

/// The gossip topic offers travel on.
const OFFER_TOPIC: &str = "continuum/offers/3";
/// Most offers of other nodes held at once.
pub const MAX_OFFERS: usize = 1024;

/// An offer this node holds, and how it arrived.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KnownOffer {
    /// The verified offer.
    pub offer: Offer,
    /// `gossip`, or `direct` (asked of the peer itself).
    pub via: String,
    /// When it arrived (ms since the epoch).
    pub received_ms: i64,
}

/// This node's offer and those of others, by node.
pub(super) struct OfferStore {
    /// This node's id: its own offer coming back through gossip is not stored as another's.
    node: String,
    /// This node's signed offer, once made.
    own: RwLock<Option<SignedOffer>>,
    /// Other nodes' offers, by node id.
    others: RwLock<BTreeMap<String, KnownOffer>>,
    /// How long this node's own offer holds (what it announces as its TTL).
    own_ttl: Duration,
    /// How long an offer that states no TTL is kept without being renewed.
    default_ttl: Duration,
}

/// The longest an offer is kept without being renewed, whatever TTL it states.
pub const MAX_OFFER_TTL: Duration = Duration::from_secs(300);
/// The shortest TTL an offer is kept for.
const MIN_OFFER_TTL: Duration = Duration::from_secs(1);

impl KnownOffer {
    /// When it stops being fresh (ms since the epoch): its TTL, within bounds, from its arrival
    /// by this node's clock (never the offering node's).
    fn expires_ms(&self, default_ttl: Duration) -> i64 {
        let ttl = match self.offer.ttl_ms {
            0 => default_ttl,
            ms => Duration::from_millis(ms).clamp(MIN_OFFER_TTL, MAX_OFFER_TTL),
        };
        self.received_ms + ttl.as_millis() as i64
    }
}

impl OfferStore {
    /// An empty store for node `node`, whose offers are announced every `interval`.
    pub(super) fn new(node: String, interval: Duration) -> OfferStore {
        OfferStore {
            node,
            own: RwLock::new(None),
            others: RwLock::new(BTreeMap::new()),
            // Three missed announcements and a margin: an offer outlives gossip hiccups, not its node.
            own_ttl: (interval * 3 + Duration::from_secs(2)).min(MAX_OFFER_TTL),
            default_ttl: interval * 5 + Duration::from_secs(5),
        }
    }

    /// Whether `known` is still fresh at `now_ms`.
    fn fresh(&self, known: &KnownOffer, now_ms: i64) -> bool {
        known.expires_ms(self.default_ttl) > now_ms
    }

    /// This node's signed offer, once made.
    pub(super) fn own(&self) -> Option<SignedOffer> {
        self.own.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Verifies and stores an offer; an older one than held is ignored. The store holds at
    /// most [`MAX_OFFERS`]: when full, expired offers are dropped to make room, and when it is
    /// full of fresh ones a new node's offer is refused.
    /// The offer, when it was new.
    pub(super) fn accept(&self, signed: &SignedOffer, via: &str) -> Result<Option<Offer>> {
        let offer = signed.verify()?;
        if offer.node == self.node {
            return Ok(None);
        }
        let mut others = self.others.write().unwrap_or_else(|p| p.into_inner());
        if others.get(&offer.node).is_some_and(|k| k.offer.issued_ms >= offer.issued_ms) {
            return Ok(None);
        }
        if !others.contains_key(&offer.node) && others.len() >= MAX_OFFERS {
            let now = continuum_core::now_ms();
            others.retain(|_, k| self.fresh(k, now));
            if others.len() >= MAX_OFFERS {
                anyhow::bail!(
                    "the offer store is full ({MAX_OFFERS} fresh offers); ignored the offer of {}",
                    short(&offer.node)
                );
            }
        }
        let known = KnownOffer { offer: offer.clone(), via: via.into(), received_ms: continuum_core::now_ms() };
        others.insert(offer.node.clone(), known);
        Ok(Some(offer))
    }

    /// The addresses (and relay URLs) node `node`'s offer gives, if one is held (expired or not).
    pub(super) fn addrs_of(&self, node: &str) -> Option<Vec<String>> {
        let others = self.others.read().unwrap_or_else(|p| p.into_inner());
        others.get(node).map(|k| k.offer.addrs.clone())
    }

    /// Forgets node `node`'s offer.
    pub(super) fn forget(&self, node: &str) {
        self.others.write().unwrap_or_else(|p| p.into_inner()).remove(node);
    }
}

impl Grid {
    /// Every offer this node holds that has not expired (its own first).
    pub fn offers(&self) -> Vec<KnownOffer> {
        let store = &self.inner.offers;
        let own = store.own().and_then(|o| o.verify().ok());
        let mut all: Vec<KnownOffer> = own
            .map(|offer| KnownOffer { offer, via: "self".into(), received_ms: continuum_core::now_ms() })
            .into_iter()
            .collect();
        let now = continuum_core::now_ms();
        all.extend(
            store.others.read().unwrap_or_else(|p| p.into_inner()).values().filter(|k| store.fresh(k, now)).cloned(),
        );
        all
    }

    /// This node's capacity and load now.
    async fn capacity(&self) -> Result<Capacity> {
        let mut capacity = self.inner.host.run(capacity::of_host).await?;
        let (jobs_queued, jobs_running) = self.inner.jobs.depth();
        let slots = self.inner.jobs.slots();
        let calls_running = self.inner.calls_running.now();
        capacity.load = Load {
            calls_running,
            jobs_queued,
            jobs_running,
            slots,
            free_slots: slots.saturating_sub(jobs_running + calls_running),
        };
        let ms = |d: Duration| d.as_millis() as u64;
        capacity.latency = ServedLatency {
            p50_ms: self.inner.served.percentile(50).map(ms),
            p95_ms: self.inner.served.percentile(95).map(ms),
            samples: self.inner.served.samples(),
        };
        Ok(capacity)
    }

    /// Rebuilds this node's offer from its installed alloys and announces it.
    pub async fn refresh_offer(&self) -> Result<()> {
        let shippable = self
            .inner
            .host
            .run(|host| -> Result<Vec<_>> {
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
            plugins.push(offers::plugin_offer(&record, &tag.hash.to_hex(), size, &self.inner.terms));
        }
        // A node that keeps its addresses to its peers announces none.
        let addrs = if self.inner.reach.shareable { self.reachable_at() } else { Vec::new() };
        let introductions = self.introductions().await;
        let (shareable, me) = (self.inner.reach.shareable, self.id());
        let offer = Offer {
            node: self.id(),
            issued_ms: continuum_core::now_ms(),
            addrs,
            ttl_ms: self.inner.offers.own_ttl.as_millis() as u64,
            capacity: self.capacity().await?,
            plugins,
            consent: None,
            introductions,
            node_set: None,
        };
        let signed = self
            .inner
            .host
            .run(move |host| -> Result<_> {
                let key = host.core().node_key();
                let consent = shareable.then(|| Introduction::consent(key, offer.addrs.clone(), offer.issued_ms));
                let node_set = continuum_core::node_set::carried(&host.core().db(), &me)?;
                let signed = SignedOffer::sign(&Offer { consent, node_set: node_set.clone(), ..offer }, key)?;
                Ok((signed, node_set))
            })
            .await??;
        let (signed, node_set) = signed;
        *continuum_core::sync::lock(&self.inner.node_set) = node_set;
        *self.inner.offers.own.write().unwrap_or_else(|p| p.into_inner()) = Some(signed);
        self.inner.announce().await;
        Ok(())
    }

    /// Asks `peer` for its offer directly and stores it.
    pub async fn pull_offer(&self, peer: &Peer) -> Result<Offer, PeerError> {
        let malformed = |message: String| PeerError::Malformed { peer: short(&peer.id), message };
        match self.request(peer, &Request::Offer {}, Duration::from_secs(5)).await? {
            Response::Offer { offer } => {
                let verified = offer.verify().map_err(|e| malformed(format!("{e:#}")))?;
                if verified.node != peer.id {
                    return Err(malformed(format!("it sent the offer of another node ({})", short(&verified.node))));
                }
                // What the offer carries beyond itself (a node set, introductions) is taken when
                // it arrives by gossip, not here: adding an introduced peer pulls its offer.
                self.inner.offers.accept(&offer, "direct").map_err(|e| malformed(format!("{e:#}")))?;
                Ok(verified)
            }
            other => Err(unexpected(peer, &other)),
        }
    }
}

impl Grid {
    /// Takes in what a new offer carries beyond itself: a newer epoch of a node set held here
    /// (how a node's removal reaches providers), and the nodes it introduces.
    async fn took_offer(&self, offer: &Offer) {
        if let Some(set) = offer.node_set.clone() {
            let observed = self
                .host()
                .run(move |host| -> Result<()> {
                    continuum_core::node_set::refresh(&host.core().db(), &set)?;
                    Ok(())
                })
                .await;
            if let Err(e) = observed.and_then(|r| r) {
                // A node removed from its owner's set still carries the older one: expected.
                tracing::debug!("ignored the node set in {}'s offer: {e:#}", short(&offer.node));
            }
        }
        self.take_introductions(offer).await;
    }
}

impl Inner {
    /// Broadcasts this node's offer on the offer topic, once it has one.
    async fn announce(&self) {
        if let Some(offer) = self.offers.own() {
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
}

/// The gossip topic of offers.
pub(super) fn topic() -> iroh_gossip::proto::TopicId {
    iroh_gossip::proto::TopicId::from_bytes(*blake3::hash(OFFER_TOPIC.as_bytes()).as_bytes())
}

/// Starts the gossip of `grid`'s offers: stores the offers `receiver` brings, announces this
/// node's offer to each new neighbour, and rebuilds and announces it every `interval`.
pub(super) fn spawn_gossip(grid: &Grid, mut receiver: GossipReceiver, interval: Duration) {
    let listener = grid.clone();
    tokio::spawn(async move {
        while let Some(event) = receiver.next().await {
            match event {
                Ok(Event::Received(message)) => {
                    let received: Result<SignedOffer> =
                        serde_json::from_slice(&message.content).context("malformed offer message");
                    match received.and_then(|o| listener.inner.offers.accept(&o, "gossip")) {
                        // Beside the loop: taking introductions dials the nodes introduced.
                        Ok(Some(offer)) => {
                            let grid = listener.clone();
                            tokio::spawn(async move { grid.took_offer(&offer).await });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!("ignored an offer from the grid: {e:#}"),
                    }
                }
                Ok(Event::NeighborUp(_)) => listener.inner.announce().await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("offer topic closed: {e}");
                    break;
                }
            }
        }
    });
    let ticker = grid.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(e) = ticker.refresh_offer().await {
                tracing::warn!("cannot refresh this node's offer: {e:#}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridOptions;
    use continuum_core::keys::public_hex;
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
                terms: Default::default(),
                reach: Default::default(),
            };
            let jobs = crate::jobs::Jobs::open(crate::async_host::AsyncHost::new(host.clone()), Default::default())
                .await
                .unwrap();
            let grid = Grid::start(host, options, jobs).await.unwrap();
            let offer_from = |i: usize| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
                let key = SigningKey::from_bytes(&seed);
                let offer = Offer {
                    node: public_hex(&key.verifying_key()),
                    issued_ms: continuum_core::now_ms(),
                    addrs: vec![],
                    ttl_ms: 0,
                    capacity: Capacity::default(),
                    plugins: vec![],
                    consent: None,
                    introductions: vec![],
                    node_set: None,
                };
                SignedOffer::sign(&offer, &key).unwrap()
            };
            let store = &grid.inner.offers;
            let refused = (0..MAX_OFFERS + 100).filter(|&i| store.accept(&offer_from(i), "gossip").is_err()).count();
            assert_eq!(refused, 100, "the store took more than {MAX_OFFERS} offers");
            assert_eq!(grid.offers().len(), MAX_OFFERS + 1, "its own and the fresh ones");
            // Five offer intervals and the margin without renewal: gone from what dispatch and
            // listings see, and their room is free again.
            tokio::time::sleep(Duration::from_millis(5_200)).await;
            assert_eq!(grid.offers().len(), 1);
            store.accept(&offer_from(MAX_OFFERS + 200), "gossip").unwrap();
            grid.shutdown().await;
        });
    }
}
