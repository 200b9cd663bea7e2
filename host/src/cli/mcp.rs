//! `continuum mcp`: serves MCP over stdin/stdout, so an AI agent can list and call the
//! commands you (or `--as` a grantee) may call. With a running node its calls go through the
//! node (one log writer, resident models); without one, this process runs them.

use anyhow::Result;

use super::commands::caller_from_flag;
use crate::node::async_host::AsyncHost;
use crate::node::client::NodeClient;
use crate::node::mcp::{serve_stdio, Backend};
use crate::paths::DataDir;

/// The arguments of `continuum mcp`.
#[derive(Debug, clap::Args)]
pub(super) struct McpArgs {
    /// Serve as this caller: a public key (no grant) or a grant token; its tools are exactly
    /// the commands it may call. Default: the owner.
    #[arg(long = "as", value_name = "KEY|TOKEN")]
    as_caller: Option<String>,
}

/// Runs `continuum mcp` until the client closes stdin.
pub(super) fn run(args: McpArgs, data: DataDir) -> Result<()> {
    let backend = match NodeClient::find(data.root()) {
        Some(_) => Backend::Node { root: data.root().to_path_buf(), as_caller: args.as_caller },
        None => {
            let host = crate::node::open_host(data)?;
            let caller = caller_from_flag(&host, args.as_caller.as_deref())?;
            Backend::Local { host: AsyncHost::new(host), caller }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve_stdio(backend))
}
