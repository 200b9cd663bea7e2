//! The threat model as tests: each test reproduces one attack found by the outside audit
//! (issue 15, numbered as there) and checks the defence holds. `docs/security.md` has the
//! table: attack → defence → test.
//!
//! - `alloys`: untrusted artifacts (proof runs, upgrades, names, canonical containers, purge);
//! - `grants`: tokens (revocation through attenuation, the verification cache), local files,
//!   budgets shared down nested calls;
//! - `node`: the HTTP API (slow uploads, replayed signatures, Host, schemas, the socket);
//! - `grid`: peers over iroh (log export, gossip-learned strangers, floods), signatures, the log;
//! - `market`: receipts and their countersignatures on the wire (strangers, forgeries, replays).

mod alloys;
mod grants;
mod grid;
mod market;
mod node;
