//! Granting and trusting, as the owner does it: issuing and revoking grants and adding and
//! removing trusted publishers, each change recorded in the event log; and turning a presented
//! grant or key into the [`Caller`] it stands for.

use anyhow::Result;
use serde_json::json;

use crate::access::Caller;
use crate::grants::{self, GrantError};
use crate::keys::{parse_public, public_hex};
use crate::node_set::{self, Membership, SignedNodeSet};
use crate::runtime::Host;
use crate::trust::{self, Trusted};

impl Host {
    /// The caller presenting grant `token` with key `presenter` (hex), after full verification:
    /// issuer, signatures, key binding, expiry, epoch. A node listed in the newest node set of
    /// the grant's holder presents the grant for that owner, and calls as the owner
    /// ([`crate::node_set`]).
    pub fn caller_presenting(&self, token: &str, presenter: &str) -> Result<Caller, GrantError> {
        self.caller_presenting_with_set(token, presenter, None)
    }

    /// As [`Host::caller_presenting`], the presenting node showing `node_set`: a set of the
    /// grant's holder that lists the node. It is kept (when newest) only once the grant has
    /// verified, so only owners this node granted something have sets stored here.
    pub fn caller_presenting_with_set(
        &self,
        token: &str,
        presenter: &str,
        node_set: Option<&SignedNodeSet>,
    ) -> Result<Caller, GrantError> {
        let core = self.core();
        // Bound first: the database lock must not be held while the node-set path takes it.
        let verified = core.grants().verify(&core.db(), token, presenter, crate::now_secs());
        match verified {
            Err(GrantError::KeyMismatch { .. }) => self.node_of_owner_presenting(token, presenter, node_set),
            verified => Ok(Caller::Key { key: presenter.to_string(), grant: Some(verified?) }),
        }
    }

    /// The caller a node presenting its owner's grant stands for: the owner, when the owner's
    /// newest node set seen here lists the node and the node's own key is not revoked. A token
    /// bound to an owner with no set here is refused before any signature is checked.
    fn node_of_owner_presenting(
        &self,
        token: &str,
        presenter: &str,
        node_set: Option<&SignedNodeSet>,
    ) -> Result<Caller, GrantError> {
        let core = self.core();
        let owner = grants::claimed_holder(token)?;
        let short = |id: &str| crate::alloy::custody::short(id).to_string();
        let now = crate::now_secs();
        if let Some(signed) = node_set {
            let set = signed.verify().map_err(|e| GrantError::NodeSet(e.to_string()))?;
            if set.owner != owner {
                return Err(GrantError::NodeSet(format!(
                    "it is owner {}'s, but the grant is bound to {}",
                    short(&set.owner),
                    short(&owner)
                )));
            }
            if !set.lists(presenter) {
                return Err(GrantError::NodeSet(format!("it does not list the calling node {}", short(presenter))));
            }
            let verified = core.grants().verify(&core.db(), token, &owner, now);
            verified?;
            // An older or conflicting set is no error: the newest seen decides below.
            let observed = node_set::observe(&core.db(), signed);
            if let Err(e) = observed {
                tracing::debug!("node set of {} not kept: {e}", short(&owner));
            }
        }
        let membership = node_set::speaks_for(&core.db(), presenter, &owner);
        match membership.map_err(|e| GrantError::Malformed(format!("{e:#}")))? {
            Membership::Member(_) => {
                if let Some((epoch, true)) = core.grants().watermark(presenter) {
                    return Err(GrantError::RevokedGrantee { key: short(presenter), epoch });
                }
                let grant = core.grants().verify(&core.db(), token, &owner, now)?;
                Ok(Caller::Key { key: owner, grant: Some(grant) })
            }
            Membership::NotListed(epoch) => {
                Err(GrantError::NotInNodeSet { node: short(presenter), owner: short(&owner), epoch })
            }
            Membership::NoSet => Err(GrantError::KeyMismatch { bound: short(&owner), presenter: short(presenter) }),
        }
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
