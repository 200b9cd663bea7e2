//! Log replication: pull a peer's own log entries after the last one held here, verified and
//! merged by the event log's import (chain, checkpoint signatures, Lamport clock).

use std::time::Duration;

use anyhow::{Context, Result};

use continuum_core::eventlog::transfer::{self, Imported};

use super::request::unexpected;
use super::wire::{Request, Response};
use super::Grid;

impl Grid {
    /// The highest sequence number of `node`'s log held here (0 if none).
    pub async fn replicated_up_to(&self, node: &str) -> Result<u64> {
        let node = node.to_string();
        self.host().run(move |host| transfer::replicated_up_to(&host.core().db(), &node)).await?
    }

    /// Pulls `peer`'s new log entries page by page (presenting the grant stored with the peer,
    /// which must confer [`super::wire::LOG_PULL`]) and imports them; `None` when there was
    /// nothing new.
    pub async fn pull_events(&self, peer: &str) -> Result<Option<Imported>> {
        let peer = self.peer(peer).await?;
        let mut total: Option<Imported> = None;
        loop {
            let since = self.replicated_up_to(&peer.id).await?;
            let request = Request::Events { since, grant: peer.grant.clone() };
            let (export, more) = match self.request(&peer, &request, Duration::from_secs(60)).await? {
                Response::Events { export, more } => (export, more),
                other => return Err(unexpected(&peer, &other).into()),
            };
            let header: serde_json::Value = serde_json::from_str(export.lines().next().unwrap_or_default())
                .context("the peer's log export has no header")?;
            anyhow::ensure!(
                header["node"] == peer.id.as_str(),
                "the peer sent the log of another node ({})",
                header["node"]
            );
            if export.lines().nth(1).is_none() {
                return Ok(total);
            }
            let imported = self
                .host()
                .run(move |host| -> Result<Imported> {
                    let core = host.core();
                    let mut db = core.db();
                    transfer::import(&mut db, core.log(), export.as_bytes()).context("the peer's log did not verify")
                })
                .await??;
            let new = imported.entries;
            total = Some(match total {
                Some(t) => {
                    Imported { entries: t.entries + imported.entries, known: t.known + imported.known, ..imported }
                }
                None => imported,
            });
            // A page that added nothing would be asked for again: stop rather than loop.
            if !more || new == 0 {
                return Ok(total);
            }
        }
    }
}
