//! `continuum console`: a one-time login link to the running node's web console, for its owner.

use std::io::Write;
use std::path::Path;

use anyhow::Result;

use super::output;
use crate::node::client::NodeClient;
use crate::node::http::LoginLink;

/// Asks the running node (as its owner, over the private socket) for a one-time login link
/// and prints it: opened in a browser on this machine, it logs in once, within minutes.
pub(super) fn run(root: &Path) -> Result<()> {
    let client = NodeClient::require(root)?;
    let link: LoginLink = serde_json::from_value(client.post("/v1/console/login-links", &serde_json::json!({}))?)?;
    let mut out = std::io::stdout().lock();
    output::emit(&mut out, &link, |out| Ok(writeln!(out, "{}", link.url)?))?;
    let minutes = link.expires_in_s / 60;
    output::note(
        &mut std::io::stderr().lock(),
        format!("open this link in a browser on this machine: it logs in as the owner once, within {minutes} minutes"),
    )?;
    Ok(())
}
