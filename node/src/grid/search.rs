//! `offers --search`: the commands peers offer, ranked by meaning like local ones.

use anyhow::Result;
use serde::Serialize;

use continuum_core::discovery::{self, Method};
use continuum_core::reflect::CommandSchema;
use continuum_core::Host;

use super::KnownOffer;

/// A command offered on the grid, ranked.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GridMatch {
    /// The offering node.
    pub node: String,
    /// The command.
    pub name: String,
    /// Its description's first line.
    pub about: String,
    /// Who may call it there (`public`, `granted`, `owner`).
    pub access: String,
    /// Similarity to the query.
    pub score: f32,
}

/// Ranks every command in `offers` (one entry per offering node) by similarity to `query`.
pub fn search_offers(host: &Host, offers: &[KnownOffer], query: &str, top: usize) -> Result<(Method, Vec<GridMatch>)> {
    let mut items = Vec::new();
    let mut texts = Vec::new();
    for known in offers {
        for command in known.offer.plugins.iter().flat_map(|p| &p.commands) {
            let schema = CommandSchema {
                name: command.name.clone(),
                description: command.description.clone(),
                param_style: continuum_core::reflect::ParamStyle::Named,
                params: command.params.clone(),
                result: command.result.clone(),
                error: None,
            };
            texts.push(discovery::command_text(&schema));
            let access = serde_json::to_value(command.access).ok().and_then(|v| v.as_str().map(String::from));
            items.push(GridMatch {
                node: known.offer.node.clone(),
                name: command.name.clone(),
                about: discovery::first_line(&command.description),
                access: access.unwrap_or_default(),
                score: 0.0,
            });
        }
    }
    discovery::rank(host, items, &texts, query, top, |m, s| m.score = s)
}
