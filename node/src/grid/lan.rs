//! LAN discovery (opt-in: `[grid] lan = true` or `serve --lan`): the node announces its key and
//! grid addresses by multicast on its network segments (mDNS, through iroh's mDNS address
//! lookup under the service name [`SERVICE`]) and lists the Continuum nodes it hears as
//! discovered. Hearing a node grants it nothing and sends it nothing; the operator accepts it
//! (`continuum peer accept <id>`), and QUIC then proves the key on the first connection.

use anyhow::{Context, Result};
use futures_util::StreamExt;
use iroh_mdns_address_lookup::{DiscoveryEvent, MdnsAddressLookup};

use super::discovered::DiscoveredNode;
use super::Grid;

/// The mDNS service name Continuum nodes announce under (other iroh apps use their own).
pub const SERVICE: &str = "continuum-grid";

/// Starts announcing this node on the LAN and listing the nodes heard there.
pub(super) async fn start(grid: &Grid) -> Result<()> {
    let endpoint = &grid.inner.endpoint;
    let mdns = MdnsAddressLookup::builder()
        .service_name(SERVICE)
        .build(endpoint.id())
        .context("cannot start LAN discovery (multicast on this network)")?;
    endpoint.address_lookup().context("the grid endpoint is closed")?.add(mdns.clone());
    let mut events = mdns.subscribe().await;
    let grid = grid.clone();
    tokio::spawn(async move {
        // `mdns` lives as long as this loop (the endpoint holds it too).
        let _mdns = mdns;
        while let Some(event) = events.next().await {
            match event {
                DiscoveryEvent::Discovered { endpoint_info, .. } => {
                    let id = hex::encode(endpoint_info.endpoint_id.as_bytes());
                    if id == grid.id() {
                        continue;
                    }
                    let addrs = endpoint_info
                        .ip_addrs()
                        .map(ToString::to_string)
                        .chain(endpoint_info.relay_urls().map(ToString::to_string))
                        .collect();
                    let node = DiscoveredNode { id, addrs, source: "lan".into(), seen_ms: continuum_core::now_ms() };
                    tracing::debug!("heard node {} on the LAN at {:?}", super::short(&node.id), node.addrs);
                    let grid = grid.clone();
                    tokio::spawn(async move { grid.note_discovered(node).await });
                }
                DiscoveryEvent::Expired { endpoint_id } => {
                    grid.inner.discovered.forget_from(&hex::encode(endpoint_id.as_bytes()), "lan");
                }
                _ => {}
            }
        }
    });
    Ok(())
}
