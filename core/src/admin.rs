//! Granting and trusting, as the owner does it: issuing and revoking grants and adding and
//! removing trusted publishers, each change recorded in the event log; and turning a presented
//! grant or key into the [`Caller`] it stands for.

use anyhow::Result;
use serde_json::json;

use crate::access::Caller;
use crate::grants::{self, GrantError};
use crate::keys::{parse_public, public_hex};
use crate::runtime::Host;
use crate::trust::{self, Trusted};

impl Host {
    /// The caller presenting grant `token` with key `presenter` (hex), after full verification:
    /// issuer, signatures, key binding, expiry, epoch.
    pub fn caller_presenting(&self, token: &str, presenter: &str) -> Result<Caller, GrantError> {
        let core = self.core();
        let grant = core.grants().verify(&core.db(), token, presenter, crate::now_secs())?;
        Ok(Caller::Key { key: presenter.to_string(), grant: Some(grant) })
    }

    /// A caller for `--as`: a grant token (presented by the key it is bound to) or a bare
    /// public key (no grant).
    pub fn caller_for(&self, spec: &str) -> Result<Caller> {
        if spec.starts_with(grants::PREFIX) {
            let holder = grants::verify_signed(spec, self.core().grants().owner())?.holder;
            return Ok(self.caller_presenting(spec, &holder)?);
        }
        let key = public_hex(&parse_public(spec)?);
        if self.core().grants().watermark(&key).is_some_and(|(_, revoked)| revoked) {
            return Ok(Caller::Blocked { key });
        }
        Ok(Caller::Key { key, grant: None })
    }

    /// Issues a grant of `caps` to `grantee` until `expires`, superseding earlier grants to it.
    pub fn issue_grant(&self, grantee: &str, caps: &[String], expires: i64) -> Result<String> {
        self.issue_budgeted_grant(grantee, caps, expires, None)
    }

    /// Issues a grant as [`Host::issue_grant`] does, spending at most `budget` per period.
    pub fn issue_budgeted_grant(
        &self,
        grantee: &str,
        caps: &[String],
        expires: i64,
        budget: Option<crate::grants::Budget>,
    ) -> Result<String> {
        if let Some(budget) = &budget {
            budget.validate()?;
        }
        if caps.is_empty() {
            anyhow::bail!("a grant needs at least one --cap (to take grants away, use `continuum grant revoke`)");
        }
        let core = self.core();
        let grantee = parse_public(grantee)?;
        let token = core.grants().issue(&core.db(), core.node_key(), &grantee, caps, expires, budget)?;
        let epoch = core.grants().watermark(&public_hex(&grantee)).map_or(0, |(e, _)| e);
        let payload = json!({
            "grantee": public_hex(&grantee), "caps": caps, "expires": expires, "epoch": epoch, "budget": budget,
        });
        core.log().append("grant.issued", &public_hex(&grantee), &payload)?;
        Ok(token)
    }

    /// Revokes every grant to `grantee`; returns the new epoch.
    pub fn revoke_grants(&self, grantee: &str) -> Result<u64> {
        let core = self.core();
        let grantee = parse_public(grantee)?;
        let epoch = core.grants().revoke(&core.db(), core.node_key(), &grantee)?;
        core.log().append("grant.revoked", &public_hex(&grantee), &json!({ "epoch": epoch }))?;
        Ok(epoch)
    }

    /// Trusts publisher `public_key` as `name`, pre-approving `approves`; logged.
    pub fn trust_add(&self, public_key: &str, name: &str, approves: &[String]) -> Result<Trusted> {
        let core = self.core();
        let t = trust::add(&core.db(), public_key, name, approves)?;
        core.log().append("trust.added", &t.public_key, &json!({ "name": t.name, "approves": t.approves }))?;
        Ok(t)
    }

    /// Stops trusting a publisher; logged.
    pub fn trust_remove(&self, key_or_name: &str) -> Result<Trusted> {
        let core = self.core();
        let t = trust::remove(&core.db(), key_or_name)?;
        core.log().append("trust.removed", &t.public_key, &json!({ "name": t.name }))?;
        Ok(t)
    }
}
