//! `continuum relay serve`: a relay server for one's own peers behind NAT (iroh's relay over
//! plain HTTP), usable only by the node keys on its allow-list. Nodes use it with
//! `[grid] relays = ["http://<this address>"]` or `serve --relay`. See `docs/grid.md`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::output;
use crate::grid::relay;

/// `continuum relay …`.
#[derive(Debug, Subcommand)]
pub(super) enum RelayCmd {
    /// Run a relay until interrupted (SIGINT or SIGTERM).
    Serve {
        /// TCP address to serve on (plain HTTP).
        #[arg(long, default_value = "127.0.0.1:3340")]
        bind: SocketAddr,
        /// A node id allowed to use the relay; repeat for each (others are refused).
        #[arg(long = "allow", value_name = "NODE_ID")]
        allow: Vec<String>,
        /// A file of allowed node ids, one per line (`#` starts a comment), read again at each
        /// connection: edit it to admit or drop nodes without a restart.
        #[arg(long)]
        allow_file: Option<PathBuf>,
    },
}

/// Runs a `relay` subcommand.
pub(super) fn run(cmd: RelayCmd) -> Result<()> {
    let RelayCmd::Serve { bind, allow, allow_file } = cmd;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let relay = relay::serve(bind, &allow, allow_file.clone()).await?;
        let url = format!("http://{}/", relay.addr);
        let serving = serde_json::json!({ "url": url, "allow": allow, "allow_file": allow_file });
        let file = allow_file.map(|f| format!(" and those in {} (read at each connection)", f.display()));
        let line = format!("relay serving {url} for {} node keys{}", allow.len(), file.unwrap_or_default());
        let mut out = std::io::stdout().lock();
        output::confirm(&mut out, &serving, line)?;
        out.flush()?;
        drop(out);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        relay.shutdown().await
    })
}
