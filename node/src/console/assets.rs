//! The console's files, compiled into the binary: nothing is fetched at run time, so the
//! console works offline and cannot be changed under the node.

/// One embedded file.
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// The page every console URL loads (the app routes by the URL's fragment).
pub const INDEX: Asset = Asset { content_type: "text/html; charset=utf-8", body: include_str!("assets/index.html") };

/// The console's files under `/console/`, by name.
pub fn named(name: &str) -> Option<Asset> {
    let (content_type, body) = match name {
        "app.js" => ("text/javascript; charset=utf-8", include_str!("assets/app.js")),
        "forms.js" => ("text/javascript; charset=utf-8", include_str!("assets/forms.js")),
        "app.css" => ("text/css; charset=utf-8", include_str!("assets/app.css")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

/// The policy every console response carries: scripts and styles only from the node itself
/// (no inline script, so injected markup cannot run), no framing, nothing sent elsewhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
