//! The market (`docs/market.md`): what this node asks ([`terms`]), the receipts it signs and
//! countersigns ([`receipt`]), the ledger they are kept in and the balances and statements drawn
//! from it ([`ledger`]), and the budgets grants spend ([`budget`]).
//!
//! The grid calls in here at two points: a provider, once a call has run, issues its receipt
//! ([`issue`]); a caller, once the answer has come, checks the receipt against what it sent,
//! received and measured, and countersigns it or records the dispute ([`accept`]). Both run on
//! the host's call pool (they sign and write).

pub mod budget;
pub mod ledger;
pub mod receipt;
pub mod terms;

use anyhow::Result;
use serde_json::json;

use continuum_core::Host;
use ledger::{Role, State};
use receipt::{Expected, Receipt, ReceiptError, ReceiptKind, SignedReceipt};
use terms::{Price, Units};

/// Work this node did for a peer, which a receipt is issued for.
#[derive(Debug, Clone)]
pub struct Work {
    /// Call, job or purchase.
    pub kind: ReceiptKind,
    /// The command, or the plugin bought.
    pub command: String,
    /// BLAKE3 of what came in.
    pub input: String,
    /// BLAKE3 of what went out.
    pub output: String,
    /// What it used.
    pub units: Units,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// The job's id, for a job.
    pub job: Option<String>,
}

/// Issues the receipt for `work` done for `caller` under `price`: signed as this node (its
/// provider), recorded as issued and logged.
pub fn issue(host: &Host, caller: &str, work: Work, price: Price) -> Result<SignedReceipt> {
    let plugin = work.command.split('/').next().unwrap_or(&work.command);
    let receipt = Receipt {
        id: receipt::new_id(),
        kind: work.kind,
        provider: host.node_id(),
        caller: caller.to_string(),
        // From the loaded plugin (the call just ran it): no registry read under the database lock.
        plugin_digest: host.load(plugin).map(|p| p.digest.clone()).unwrap_or_default(),
        millicredits: price.charge(&work.units),
        terms: price,
        units: work.units,
        input: work.input,
        output: work.output,
        command: work.command,
        started_ms: work.started_ms,
        ended_ms: continuum_core::now_ms(),
        job: work.job,
    };
    let core = host.core();
    let signed = SignedReceipt::issue(&receipt, core.node_key())?;
    ledger::record(&core.db(), &signed, &receipt, Role::Provider, State::Issued, None, None)?;
    core.log().append_later("receipt.issued", &receipt.id, &log_payload(&signed, &receipt))?;
    Ok(signed)
}

/// What the log says of a receipt: enough to compare it with a copy (its body's hash) and to
/// sum it without the ledger.
fn log_payload(signed: &SignedReceipt, receipt: &Receipt) -> serde_json::Value {
    json!({
        "kind": receipt.kind.as_str(), "provider": receipt.provider, "caller": receipt.caller,
        "command": receipt.command, "units": receipt.units, "millicredits": receipt.millicredits,
        "body": blake3::hash(signed.body.as_bytes()).to_hex().to_string(),
    })
}

/// What became of a receipt a caller was handed.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// Checked and countersigned: to be sent back to the provider.
    Countersigned(SignedReceipt),
    /// Its figures were wrong (or it did not verify): recorded as disputed, not countersigned.
    Disputed(String),
}

/// As the caller: verifies `signed` and checks it against `expected`; countersigns and records
/// it, or records the dispute. Either way the log says which.
pub fn accept(host: &Host, mut signed: SignedReceipt, expected: &Expected) -> Result<Accepted> {
    let core = host.core();
    let observed = Some((expected.answered_ms - expected.sent_ms).max(0) as u64);
    let mut verified = signed.verify().and_then(|r| expected.check(&r).map(|()| r));
    // A receipt id already held: the same receipt again changes nothing; another receipt
    // under that id (a provider reusing ids) is disputed, never countersigned unrecorded.
    if let Ok(receipt) = &verified {
        if let Some(held) = ledger::get_exact(&core.db(), &receipt.id)? {
            if held.role == Role::Caller && held.signed.body == signed.body && held.state == State::Countersigned {
                return Ok(Accepted::Countersigned(held.signed));
            }
            verified = Err(ReceiptError::Disputed(format!("it reuses the id of receipt {} already held", receipt.id)));
        }
    }
    match verified {
        Ok(receipt) => {
            signed.countersign(core.node_key());
            if ledger::record(&core.db(), &signed, &receipt, Role::Caller, State::Countersigned, None, observed)? {
                core.log().append_later("receipt.countersigned", &receipt.id, &log_payload(&signed, &receipt))?;
            }
            Ok(Accepted::Countersigned(signed))
        }
        Err(error) => {
            let reason = error.to_string();
            // Filed only when the provider asked signed it: a receipt that does not verify, or
            // names another provider, is logged, not kept.
            let signed_by_provider = !matches!(error, ReceiptError::Malformed(_) | ReceiptError::BadProviderSignature);
            if let (Ok(receipt), true) = (serde_json::from_str::<Receipt>(&signed.body), signed_by_provider) {
                if receipt.provider == expected.provider {
                    ledger::record(
                        &core.db(),
                        &signed,
                        &receipt,
                        Role::Caller,
                        State::Disputed,
                        Some(&reason),
                        observed,
                    )?;
                }
            }
            let payload = json!({ "provider": expected.provider, "command": expected.command, "reason": reason });
            core.log().append_later("receipt.disputed", &expected.provider, &payload)?;
            Ok(Accepted::Disputed(reason))
        }
    }
}

/// As the provider: takes the caller `peer`'s countersignature of a receipt this node issued.
/// True when it was new; a replay changes nothing.
pub fn countersigned(host: &Host, peer: &str, signed: &SignedReceipt) -> Result<bool> {
    let receipt = signed.verify().map_err(anyhow::Error::from)?;
    anyhow::ensure!(signed.caller_signature.is_some(), "the receipt is not countersigned");
    anyhow::ensure!(
        receipt.caller == peer && receipt.provider == host.node_id(),
        "only the caller a receipt names countersigns it, and only to its provider"
    );
    let core = host.core();
    let new = ledger::countersigned(&core.db(), signed, &receipt)?;
    if new {
        core.log().append_later("receipt.countersigned", &receipt.id, &log_payload(signed, &receipt))?;
    }
    Ok(new)
}

/// What `receipts verify` found: the receipt, and whether this node's ledger agrees.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The receipt id.
    pub id: String,
    /// Whether the signatures verify and the ledger holds this very receipt, undisputed.
    pub valid: bool,
    /// What was checked, or what is wrong, in words.
    pub findings: Vec<String>,
}

/// Checks `signed` (a receipt from anywhere: an export, a peer) against its signatures and this
/// node's ledger: an altered copy, one this node never signed, or one it disputed is named.
pub fn verify(host: &Host, signed: &SignedReceipt) -> Result<Verdict> {
    let mut findings = Vec::new();
    let receipt = match signed.verify() {
        Ok(r) => r,
        Err(e) => {
            let id = serde_json::from_str::<Receipt>(&signed.body).map(|r| r.id).unwrap_or_default();
            return Ok(Verdict { id, valid: false, findings: vec![e.to_string()] });
        }
    };
    findings.push(format!(
        "signed by the provider {}{}",
        receipt.provider,
        if signed.caller_signature.is_some() { " and countersigned by the caller" } else { "" }
    ));
    let me = host.node_id();
    let held = ledger::get_exact(&host.core().db(), &receipt.id)?;
    let valid = match held {
        None if me != receipt.provider && me != receipt.caller => {
            findings.push("this node is neither its provider nor its caller: only the signatures were checked".into());
            true
        }
        None => {
            findings.push(format!(
                "no record: this node never {} receipt {} (a receipt for work that did not happen here)",
                if me == receipt.provider { "issued" } else { "countersigned" },
                receipt.id
            ));
            false
        }
        Some(e) if e.signed.body != signed.body => {
            findings.push("altered: it differs from the copy this ledger holds".into());
            false
        }
        Some(e) if e.state == State::Disputed => {
            findings.push(format!("disputed when it arrived: {}", e.reason.unwrap_or_default()));
            false
        }
        Some(e) => {
            findings.push(format!("matches this ledger ({})", serde_json::to_value(e.state)?.as_str().unwrap_or("")));
            true
        }
    };
    Ok(Verdict { id: receipt.id, valid, findings })
}
