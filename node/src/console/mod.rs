//! The web console every node serves at `/` (docs/console.md): its embedded assets and the
//! sessions a browser logs in with. The HTTP handlers are in `crate::http::console`; the pages
//! themselves (a framework-free app in `assets/`) talk to the same `/v1` API as every client,
//! so what a page shows is what its caller may see and call.

pub mod assets;
pub mod session;
