//! Installing a plugin from a peer: the alloy is fetched by its BLAKE3 hash over iroh-blobs
//! (every chunk verified while streaming, the size capped before it is read), then checked
//! against the offer (component digest) and installed exactly like a local `.alloy`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use iroh_blobs::get::request::GetBlobItem;
use iroh_blobs::Hash;

use continuum_core::alloy::{Alloy, MAX_ALLOY_BYTES};
use continuum_core::install::AlloyOptions;
use continuum_core::registry::PluginRecord;
use continuum_core::Host;

use super::offers::PluginOffer;
use super::request::unexpected;
use super::wire::{Request, Response};
use super::{endpoint_addr, short, Grid, KnownOffer};
use crate::market::receipt::{Expected, ReceiptKind, SignedReceipt};
use crate::market::terms::Price;
use crate::market::Accepted;

/// What a fetch transferred.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Fetched {
    /// The installed plugin.
    pub name: String,
    /// Its version.
    pub version: String,
    /// sha256 of the component.
    pub digest: String,
    /// The peer it came from.
    pub from: String,
    /// Alloy size in bytes.
    pub bytes: u64,
    /// Transfer time in microseconds.
    pub transfer_us: u64,
    /// The purchase receipt, for a priced alloy (countersigned by this node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// What it cost, in millicredits.
    #[serde(default, skip_serializing_if = "crate::market::terms::is_zero")]
    pub millicredits: u64,
}

impl Grid {
    /// Finds `what` (a plugin name, or a component digest or its prefix) in the offers of
    /// `from` (`any` or a peer): the newest version, and the node offering it.
    pub async fn find_plugin(&self, what: &str, from: &str) -> Result<(String, PluginOffer)> {
        let node = if from == "any" { None } else { Some(self.peer(from).await?.id) };
        let offers: Vec<KnownOffer> = self
            .offers()
            .into_iter()
            .filter(|k| k.via != "self" && node.as_ref().is_none_or(|n| *n == k.offer.node))
            .collect();
        let mut found: Vec<(String, PluginOffer)> = offers
            .iter()
            .flat_map(|k| k.offer.plugins.iter().map(move |p| (k.offer.node.clone(), p.clone())))
            .filter(|(_, p)| {
                p.name == what || (what.len() >= 8 && p.digest.starts_with(what.trim_start_matches("sha256:")))
            })
            .collect();
        found.sort_by(|a, b| {
            let v = |p: &PluginOffer| semver::Version::parse(&p.version).ok();
            v(&b.1).cmp(&v(&a.1))
        });
        found.into_iter().next().with_context(|| {
            format!(
                "no {} offers a plugin `{what}`; `continuum offers` lists what the peers offer",
                if from == "any" { "peer".to_string() } else { format!("offer from {from}") }
            )
        })
    }

    /// Fetches the alloy of `offer` from `node` (BLAKE3-verified, at most the alloy limit).
    pub async fn fetch_alloy(&self, node: &str, offer: &PluginOffer) -> Result<(Vec<u8>, Duration)> {
        if offer.size > MAX_ALLOY_BYTES {
            bail!(
                "`{}` is offered at {} MiB; alloys are limited to {} MiB",
                offer.name,
                offer.size >> 20,
                MAX_ALLOY_BYTES >> 20
            );
        }
        let hash: Hash =
            offer.alloy.parse().map_err(|e| anyhow::anyhow!("the offer's alloy hash is malformed: {e}"))?;
        let peer = self.reach(node).await?;
        let addr = endpoint_addr(&peer)?;
        let started = std::time::Instant::now();
        let transfer = async {
            let conn = self.inner.endpoint.connect(addr, iroh_blobs::ALPN).await.context("cannot reach the peer")?;
            let mut stream = iroh_blobs::get::request::get_blob(conn, hash);
            let mut bytes = Vec::with_capacity(offer.size as usize);
            while let Some(item) = stream.next().await {
                match item {
                    GetBlobItem::Item(bao_tree::io::BaoContentItem::Leaf(leaf)) => {
                        if (bytes.len() + leaf.data.len()) as u64 > offer.size {
                            bail!("the peer sent more than the {} bytes it offered", offer.size);
                        }
                        bytes.extend_from_slice(&leaf.data);
                    }
                    GetBlobItem::Item(_) => {}
                    GetBlobItem::Done(_) => return Ok(bytes),
                    GetBlobItem::Error(e) => bail!("the transfer failed verification or was cut: {e}"),
                }
            }
            bail!("the transfer ended early")
        };
        let bytes = tokio::time::timeout(Duration::from_secs(120), transfer)
            .await
            .map_err(|_| anyhow::anyhow!("the transfer from {} took longer than 120 s", short(node)))?
            .with_context(|| format!("fetching `{}` from {}", offer.name, short(node)))?;
        if bytes.len() as u64 != offer.size {
            bail!("the peer sent {} bytes; its offer says {}", bytes.len(), offer.size);
        }
        Ok((bytes, started.elapsed()))
    }

    /// Asks `node` for the receipt of buying `offer`'s alloy (priced in its offer).
    async fn buy(&self, node: &str, offer: &PluginOffer) -> Result<SignedReceipt> {
        let peer = self.reach(node).await?;
        let request = Request::Purchase { plugin: offer.name.clone(), alloy: offer.alloy.clone() };
        match self.request(&peer, &request, Duration::from_secs(10)).await? {
            Response::Receipt { receipt } => Ok(receipt),
            other => Err(unexpected(&peer, &other).into()),
        }
    }

    /// Installs `what` from `from` (`any` or a peer), verifying the alloy like a local file.
    pub async fn install_from(&self, what: &str, from: &str, options: AlloyOptions) -> Result<(PluginRecord, Fetched)> {
        let (node, offer) = self.find_plugin(what, from).await?;
        let sent_ms = continuum_core::now_ms();
        let purchase = match offer.fetch_millicredits {
            0 => None,
            _ => Some(self.buy(&node, &offer).await?),
        };
        let (bytes, took) = self.fetch_alloy(&node, &offer).await?;
        let size = bytes.len() as u64;
        let (sender, offered) = (node.clone(), offer.clone());
        let record = self.host().run(move |host| install_fetched(host, &bytes, &sender, &offered, options)).await??;
        let mut fetched = Fetched {
            name: record.name.clone(),
            version: offer.version.clone(),
            digest: record.digest.clone(),
            from: node.clone(),
            bytes: size,
            transfer_us: took.as_micros() as u64,
            receipt: None,
            millicredits: 0,
        };
        if let Some(signed) = purchase {
            // Countersigned only now that the alloy arrived, verified and installed.
            let expected = Expected {
                provider: node.clone(),
                caller: self.id(),
                kind: ReceiptKind::Purchase,
                command: offer.name.clone(),
                input: offer.alloy.clone(),
                output: offer.alloy.clone(),
                terms: Some(Price { millicredits_per_call: offer.fetch_millicredits, ..Price::default() }),
                max_millicredits: None,
                sent_ms,
                answered_ms: continuum_core::now_ms(),
            };
            // The plugin is installed: a receipt that cannot be settled is reported, not an error.
            let settled = match self.reach(&node).await {
                Ok(peer) => self.settle(&peer, signed, expected).await,
                Err(e) => Err(e),
            };
            match settled {
                Ok(Accepted::Countersigned(signed)) => {
                    if let Ok(receipt) = signed.verify() {
                        fetched.receipt = Some(receipt.id);
                        fetched.millicredits = receipt.millicredits;
                    }
                }
                Ok(Accepted::Disputed(reason)) => {
                    tracing::warn!("the purchase receipt of `{}` is disputed: {reason}", offer.name)
                }
                Err(e) => tracing::warn!("cannot record the purchase receipt of `{}`: {e:#}", offer.name),
            }
        }
        self.refresh_offer().await?;
        Ok((record, fetched))
    }
}

/// Checks an alloy fetched from `node` against its `offer` and installs it exactly like a
/// local `.alloy` (blocking: run on the host's call pool).
fn install_fetched(
    host: &Host,
    bytes: &[u8],
    node: &str,
    offer: &PluginOffer,
    options: AlloyOptions,
) -> Result<PluginRecord> {
    let alloy = Alloy::from_reader(bytes).map_err(anyhow::Error::from)?;
    let digest = continuum_core::alloy::custody::sha256_hex(&alloy.component);
    if digest != offer.digest || alloy.manifest.identity.name != offer.name {
        bail!(
            "{} offered `{}` with component sha256:{} but sent `{}` sha256:{}; nothing was installed",
            short(node),
            offer.name,
            short(&offer.digest),
            alloy.manifest.identity.name,
            short(&digest)
        );
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{}-{}.alloy", offer.name, offer.version));
    std::fs::write(&path, bytes)?;
    host.install_alloy(&path, options)
}
