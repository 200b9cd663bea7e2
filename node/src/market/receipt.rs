//! Receipts: what a provider says a call, job or alloy purchase cost — who, what, the hashes of
//! what went in and came out, the units, the terms and the price — signed by the provider over
//! the receipt's exact JSON text, and countersigned by the caller once it has checked the
//! figures against what it sent, received and measured. Format: `docs/market.md`.

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use continuum_core::keys::parse_public;
use continuum_core::signing;

use super::terms::{credits, Price, Units};

/// Largest receipt accepted.
pub const MAX_RECEIPT_BYTES: usize = 16 * 1024;
/// How far the provider's clock may be from the caller's before a receipt is disputed.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// What a receipt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptKind {
    /// A remote call.
    Call,
    /// A job a peer submitted.
    Job,
    /// An alloy fetched at a price.
    Purchase,
}

impl ReceiptKind {
    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptKind::Call => "call",
            ReceiptKind::Job => "job",
            ReceiptKind::Purchase => "purchase",
        }
    }
}

/// What the provider says was done and what it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// A random id the provider chose (32 hex digits).
    pub id: String,
    /// Call, job or purchase.
    pub kind: ReceiptKind,
    /// The provider's node key (hex): it signs the receipt.
    pub provider: String,
    /// The caller's node key (hex): it countersigns.
    pub caller: String,
    /// The command (`plugin/function`), or the plugin bought.
    pub command: String,
    /// sha256 of the plugin's component.
    pub plugin_digest: String,
    /// BLAKE3 (hex) of the parameters' JSON text as sent (a purchase: the alloy's hash).
    pub input: String,
    /// BLAKE3 (hex) of the result's JSON text (a purchase: the alloy's hash).
    pub output: String,
    /// What was used.
    pub units: Units,
    /// The terms the price follows (the provider's offer at the time).
    pub terms: Price,
    /// The price, in millicredits: `terms` applied to `units`.
    pub millicredits: u64,
    /// When the work started, by the provider's clock (ms since the epoch).
    pub started_ms: i64,
    /// When it ended, by the provider's clock.
    pub ended_ms: i64,
    /// The job's id on the provider, for a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// A receipt as its exact JSON text with the provider's signature and, once checked, the
/// caller's countersignature (each ed25519 over its own domain and `body`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    /// The receipt's JSON text.
    pub body: String,
    /// The provider's signature (hex) under `continuum-receipt-v1`.
    pub provider_signature: String,
    /// The caller's countersignature (hex) under `continuum-receipt-countersign-v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_signature: Option<String>,
}

/// Why a receipt is not valid, or not what the caller can accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not a receipt of this format (or over the size limit).
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The provider's signature does not verify: forged or altered.
    #[error("the provider's signature does not verify: the receipt was forged or altered")]
    BadProviderSignature,
    /// The caller's countersignature does not verify.
    #[error("the caller's countersignature does not verify: it was forged or the receipt altered after it")]
    BadCallerSignature,
    /// The receipt's figures disagree with what the caller sent, received or measured.
    #[error("disputed: {0}")]
    Disputed(String),
}

/// BLAKE3 (hex) of a JSON value's text, as serialized for the wire.
pub fn hash_json(value: &serde_json::Value) -> String {
    blake3::hash(&serde_json::to_vec(value).unwrap_or_default()).to_hex().to_string()
}

/// A fresh receipt id.
pub fn new_id() -> String {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).expect("OS randomness");
    hex::encode(id)
}

impl SignedReceipt {
    /// Signs `receipt` as its provider.
    pub fn issue(receipt: &Receipt, provider: &SigningKey) -> Result<SignedReceipt> {
        let body = serde_json::to_string(receipt).context("encoding a receipt")?;
        let provider_signature = signing::sign(provider, signing::RECEIPT, body.as_bytes());
        Ok(SignedReceipt { body, provider_signature, caller_signature: None })
    }

    /// Adds the caller's countersignature.
    pub fn countersign(&mut self, caller: &SigningKey) {
        self.caller_signature = Some(signing::sign(caller, signing::COUNTERSIGN, self.body.as_bytes()));
    }

    /// Checks size, shape, the provider's signature and, when present, the caller's.
    pub fn verify(&self) -> Result<Receipt, ReceiptError> {
        if self.body.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::Malformed(format!(
                "{} bytes; the limit is {MAX_RECEIPT_BYTES}",
                self.body.len()
            )));
        }
        let signature_shaped = |s: &str| s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !signature_shaped(&self.provider_signature) || !self.caller_signature.as_deref().is_none_or(signature_shaped)
        {
            return Err(ReceiptError::Malformed("a signature is not 128 hex digits".into()));
        }
        let receipt: Receipt = serde_json::from_str(&self.body).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        let key = |hex: &str| parse_public(hex).map_err(|e| ReceiptError::Malformed(format!("{e:#}")));
        if !signing::verify(&key(&receipt.provider)?, signing::RECEIPT, self.body.as_bytes(), &self.provider_signature)
        {
            return Err(ReceiptError::BadProviderSignature);
        }
        if let Some(signature) = &self.caller_signature {
            if !signing::verify(&key(&receipt.caller)?, signing::COUNTERSIGN, self.body.as_bytes(), signature) {
                return Err(ReceiptError::BadCallerSignature);
            }
        }
        if receipt.millicredits > i64::MAX as u64 {
            return Err(ReceiptError::Malformed(format!("a price of {} millicredits", receipt.millicredits)));
        }
        if receipt.millicredits != receipt.terms.charge(&receipt.units) {
            return Err(ReceiptError::Disputed(format!(
                "the price ({} millicredits) does not follow its own terms ({} for these units)",
                receipt.millicredits,
                receipt.terms.charge(&receipt.units)
            )));
        }
        Ok(receipt)
    }
}

/// What the caller knows of the work a receipt must describe.
#[derive(Debug, Clone)]
pub struct Expected {
    /// The provider asked.
    pub provider: String,
    /// This node.
    pub caller: String,
    /// What was asked for.
    pub kind: ReceiptKind,
    /// The command (or the plugin bought).
    pub command: String,
    /// BLAKE3 of what was sent.
    pub input: String,
    /// BLAKE3 of what came back.
    pub output: String,
    /// The terms the provider's offer stated when the work was asked for (none: no offer was
    /// held, so only free work can be accepted).
    pub terms: Option<Price>,
    /// The most the caller agreed to pay (`--max-price`), in millicredits.
    pub max_millicredits: Option<u64>,
    /// When the request went out and the answer came back, by this node's clock.
    pub sent_ms: i64,
    /// When the answer came back.
    pub answered_ms: i64,
}

impl Expected {
    /// Checks a verified receipt against what the caller saw; the first disagreement found.
    pub fn check(&self, receipt: &Receipt) -> Result<(), ReceiptError> {
        let disputed = |why: String| Err(ReceiptError::Disputed(why));
        if receipt.provider != self.provider {
            return disputed("it names another provider than the peer asked".into());
        }
        if receipt.caller != self.caller {
            return disputed("it names another caller than this node".into());
        }
        if receipt.kind != self.kind || receipt.command != self.command {
            return disputed(format!("it is for {} `{}`, not what was asked", receipt.kind.as_str(), receipt.command));
        }
        if receipt.input != self.input {
            return disputed("its input hash is not that of the parameters sent".into());
        }
        if receipt.output != self.output {
            return disputed("its output hash is not that of the result received".into());
        }
        let waited = (self.answered_ms - self.sent_ms).max(0) as u64;
        if receipt.units.ms > waited + 1 {
            return disputed(format!(
                "over-reported time: {} ms charged, but the answer came {waited} ms after the request",
                receipt.units.ms
            ));
        }
        if receipt.units.calls != 1 {
            return disputed(format!("{} calls charged for one", receipt.units.calls));
        }
        let skew = receipt.ended_ms - self.answered_ms;
        if skew.abs() > MAX_CLOCK_SKEW_MS {
            return disputed(format!(
                "clock skew: the provider's clock is {} s {} this node's (the limit is {} s)",
                skew.abs() / 1000,
                if skew > 0 { "ahead of" } else { "behind" },
                MAX_CLOCK_SKEW_MS / 1000
            ));
        }
        if receipt.started_ms > receipt.ended_ms {
            return disputed("it ends before it starts".into());
        }
        match self.terms {
            Some(terms) if receipt.terms != terms => {
                return disputed(format!("its terms ({}) are not the offer's ({terms})", receipt.terms))
            }
            None if !receipt.terms.is_free() => {
                return disputed(format!(
                    "its terms ({}) cannot be checked: this node held no offer of the provider stating them",
                    receipt.terms
                ))
            }
            _ => {}
        }
        if let Some(max) = self.max_millicredits.filter(|max| receipt.millicredits > *max) {
            return disputed(format!(
                "it charges {} credits, more than the {} credits --max-price allowed",
                credits(receipt.millicredits),
                credits(max)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuum_core::keys::public_hex;

    fn receipt(provider: &SigningKey, caller: &SigningKey) -> Receipt {
        let terms = Price { millicredits_per_call: 2000, ..Price::default() };
        let units = Units { calls: 1, ms: 5, tokens: 0 };
        Receipt {
            id: new_id(),
            kind: ReceiptKind::Call,
            provider: public_hex(&provider.verifying_key()),
            caller: public_hex(&caller.verifying_key()),
            command: "text/stats".into(),
            plugin_digest: "00".repeat(32),
            input: hash_json(&serde_json::json!({"text": "hi"})),
            output: hash_json(&serde_json::json!({"words": 1})),
            units,
            millicredits: terms.charge(&units),
            terms,
            started_ms: 1_000,
            ended_ms: 1_005,
            job: None,
        }
    }

    #[test]
    fn receipts_verify_and_forgeries_are_named() {
        let (provider, caller) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
        let mut signed = SignedReceipt::issue(&receipt(&provider, &caller), &provider).unwrap();
        signed.countersign(&caller);
        assert_eq!(signed.verify().unwrap().millicredits, 2000);
        let mut altered = signed.clone();
        altered.body = altered.body.replace("\"millicredits\":2000", "\"millicredits\":20000");
        assert_eq!(altered.verify().unwrap_err(), ReceiptError::BadProviderSignature);
        // Re-signed by the provider with a price its terms do not give.
        let mut inflated = receipt(&provider, &caller);
        inflated.millicredits = 9999;
        let resigned = SignedReceipt::issue(&inflated, &provider).unwrap();
        assert!(matches!(resigned.verify(), Err(ReceiptError::Disputed(_))));
        // A countersignature by someone other than the caller.
        let mut wrong = SignedReceipt::issue(&receipt(&provider, &caller), &provider).unwrap();
        wrong.countersign(&provider);
        assert_eq!(wrong.verify().unwrap_err(), ReceiptError::BadCallerSignature);
        // A signature padded to bloat whoever stores it.
        let mut padded = signed.clone();
        padded.caller_signature = Some("00".repeat(1 << 20));
        assert!(matches!(padded.verify(), Err(ReceiptError::Malformed(_))));
    }

    /// The worked example in `docs/market.md` verifies here as it does in the independent
    /// verifier, and its hashes are those of the parameters and result the doc shows.
    #[test]
    fn the_documented_example_verifies() {
        let signed: SignedReceipt = serde_json::from_str(include_str!("../../../docs/examples/receipt.json")).unwrap();
        let receipt = signed.verify().unwrap();
        assert_eq!(receipt.provider, public_hex(&SigningKey::from_bytes(&[1; 32]).verifying_key()));
        assert_eq!(receipt.input, hash_json(&serde_json::json!({"text": "hi there"})));
        assert_eq!(receipt.output, hash_json(&serde_json::json!({"characters": 8, "lines": 1, "words": 2})));
        assert_eq!(receipt.millicredits, 1006);
    }

    #[test]
    fn the_caller_disputes_figures_it_did_not_see() {
        let (provider, caller) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
        let r = receipt(&provider, &caller);
        let expected = Expected {
            provider: r.provider.clone(),
            caller: r.caller.clone(),
            kind: ReceiptKind::Call,
            command: r.command.clone(),
            input: r.input.clone(),
            output: r.output.clone(),
            terms: Some(r.terms),
            max_millicredits: Some(2000),
            sent_ms: 1_000,
            answered_ms: 1_010,
        };
        expected.check(&r).unwrap();
        let mut slow = r.clone();
        slow.units.ms = 500;
        assert!(expected.check(&slow).unwrap_err().to_string().contains("over-reported time"));
        let mut skewed = r.clone();
        skewed.ended_ms += 3_600_000;
        assert!(expected.check(&skewed).unwrap_err().to_string().contains("clock skew"));
        let mut other = r.clone();
        other.output = "ff".into();
        assert!(expected.check(&other).unwrap_err().to_string().contains("output hash"));
        let unknown = Expected { terms: None, ..expected.clone() };
        assert!(unknown.check(&r).unwrap_err().to_string().contains("held no offer"));
        let capped = Expected { max_millicredits: Some(1999), ..expected };
        assert!(capped.check(&r).unwrap_err().to_string().contains("more than the 1.999 credits"));
    }
}
