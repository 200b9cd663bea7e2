//! The owner's unix socket: whoever connects to it acts as the node owner, so the socket is
//! made mode 0600 whatever the umask, and each connection's peer credentials are checked
//! against the user the node runs as (a connection from any other uid is dropped) — the
//! file mode alone would not stop a process that inherited an open directory handle or a
//! too-permissive umask at bind time.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use tokio::net::{UnixListener, UnixStream};

/// A unix listener that hands over only connections from the node's own user.
pub struct OwnerSocket {
    listener: UnixListener,
    uid: u32,
}

impl OwnerSocket {
    /// Binds `path`, restricts it to the owner (0600), and remembers the owner's uid (the
    /// socket file's owner: the user this process runs as).
    pub fn bind(path: &Path) -> Result<OwnerSocket> {
        let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (0600)", path.display()))?;
        let uid = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.uid();
        Ok(OwnerSocket { listener, uid })
    }

    /// Whether `stream`'s peer runs as the node's user.
    fn is_owner(&self, stream: &UnixStream) -> bool {
        stream.peer_cred().is_ok_and(|cred| cred.uid() == self.uid)
    }
}

impl axum::serve::Listener for OwnerSocket {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) if self.is_owner(&stream) => return (stream, addr),
                Ok((stream, _)) => {
                    let uid = stream.peer_cred().map(|c| c.uid().to_string()).unwrap_or_else(|_| "?".into());
                    tracing::warn!(
                        "refused a connection to the owner socket from uid {uid} (the node runs as uid {})",
                        self.uid
                    );
                }
                // Out of descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    tracing::warn!("owner socket accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}
