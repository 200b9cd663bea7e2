//! What a node asks: prices per command (per call, per second, per 1 000 generated tokens) and
//! per alloy fetched, in thousandths of a credit, read from `[grid]` in the configuration; and
//! what a call's units cost under them.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use continuum_core::config::GridSection;

/// Thousandths of a credit in one credit.
pub const MILLI: u64 = 1000;

/// A price: each part in thousandths of a credit (millicredits); all zero means free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per call.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub millicredits_per_call: u64,
    /// Per second the call ran on the provider.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub millicredits_per_second: u64,
    /// Per 1 000 tokens generated.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub millicredits_per_1k_tokens: u64,
}

/// Whether an amount is zero (serde leaves zero amounts out).
pub fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a call used: the units a receipt charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Units {
    /// Calls (1 for a call, a job or a purchase).
    pub calls: u64,
    /// Milliseconds the provider spent, rounded up.
    pub ms: u64,
    /// Tokens generated (pieces of text a model produced).
    pub tokens: u64,
}

impl Price {
    /// Whether nothing is charged.
    pub fn is_free(&self) -> bool {
        *self == Price::default()
    }

    /// The charge for `units` in millicredits: each part rounded up, saturating.
    pub fn charge(&self, units: &Units) -> u64 {
        // Each product fits in u128; their sum saturates (a hostile receipt's figures can be anything).
        let per_thousand = |rate: u64, amount: u64| (rate as u128 * amount as u128).div_ceil(1000);
        let total = (self.millicredits_per_call as u128 * units.calls as u128)
            .saturating_add(per_thousand(self.millicredits_per_second, units.ms))
            .saturating_add(per_thousand(self.millicredits_per_1k_tokens, units.tokens));
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    /// What a call is expected to cost if it runs `ms` milliseconds and generates nothing.
    pub fn estimate(&self, ms: u64) -> u64 {
        self.charge(&Units { calls: 1, ms, tokens: 0 })
    }

    /// Parses `2 credits`, `0.5 credits/s`, `3 credits/1k-tokens`, or several joined by `+`
    /// (`1 credit/call + 0.2 credits/s`); a bare number is per call.
    pub fn parse(text: &str) -> Result<Price> {
        let example = "write e.g. `2 credits`, `0.5 credits/s`, `1 credit/call + 3 credits/1k-tokens`";
        let mut price = Price::default();
        for part in text.split('+') {
            let part = part.trim();
            let (amount, unit) = match part.split_once('/') {
                Some((amount, unit)) => (amount.trim(), unit.trim()),
                None => (part, "call"),
            };
            let number = amount.trim_end_matches("credits").trim_end_matches("credit").trim();
            let millicredits = parse_credits(number).with_context(|| format!("`{part}` in `{text}`: {example}"))?;
            let slot = match unit {
                "call" => &mut price.millicredits_per_call,
                "s" | "sec" | "second" => &mut price.millicredits_per_second,
                "1k-tokens" | "1k tokens" | "1000 tokens" => &mut price.millicredits_per_1k_tokens,
                other => bail!("`{part}` in `{text}`: unknown unit `{other}` (call, s, 1k-tokens); {example}"),
            };
            *slot += millicredits;
        }
        Ok(price)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_free() {
            return f.write_str("free");
        }
        let parts: Vec<String> = [
            (self.millicredits_per_call, "call"),
            (self.millicredits_per_second, "s"),
            (self.millicredits_per_1k_tokens, "1k-tokens"),
        ]
        .into_iter()
        .filter(|(rate, _)| *rate > 0)
        .map(|(rate, unit)| format!("{} credits/{unit}", credits(rate)))
        .collect();
        f.write_str(&parts.join(" + "))
    }
}

/// A decimal amount of credits with at most three decimals, in millicredits.
pub fn parse_credits(text: &str) -> Result<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() {
        bail!("no amount");
    }
    if fraction.len() > 3 || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        bail!("`{text}` is not an amount of credits (a number with at most 3 decimals)");
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().context("the amount is too large")? };
    let fraction: u64 = format!("{fraction:0<3}").parse().unwrap_or(0);
    whole.checked_mul(MILLI).and_then(|w| w.checked_add(fraction)).context("the amount is too large")
}

/// Millicredits as credits (`1.25`).
pub fn credits(millicredits: u64) -> String {
    let (whole, fraction) = (millicredits / MILLI, millicredits % MILLI);
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
    }
}

/// This node's terms: its prices and whether it refuses callers who owe it too much.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    /// Price per command (`plugin/function`); a command not listed is free.
    pub commands: BTreeMap<String, Price>,
    /// Price per alloy fetched, by plugin name.
    pub alloys: BTreeMap<String, u64>,
    /// The most a caller may owe this node (millicredits) before its priced calls are refused;
    /// none (the default) refuses nobody for lack of credits.
    pub credit_limit: Option<u64>,
}

impl Terms {
    /// Reads `[grid]` (`prices`, `alloy-prices`, `credit-limit`); an error names the entry.
    pub fn from_config(grid: &GridSection) -> Result<Terms> {
        let mut commands = BTreeMap::new();
        for (command, text) in &grid.prices {
            commands
                .insert(command.clone(), Price::parse(text).with_context(|| format!("[grid.prices] \"{command}\""))?);
        }
        let mut alloys = BTreeMap::new();
        for (plugin, text) in &grid.alloy_prices {
            let price = Price::parse(text).with_context(|| format!("[grid.alloy-prices] \"{plugin}\""))?;
            if price.millicredits_per_second > 0 || price.millicredits_per_1k_tokens > 0 {
                bail!("[grid.alloy-prices] \"{plugin}\": an alloy is priced per fetch (`5 credits`), not per second or token");
            }
            alloys.insert(plugin.clone(), price.millicredits_per_call);
        }
        let credit_limit = match &grid.credit_limit {
            Some(text) => Some(parse_credits(text.trim_end_matches("credits").trim()).context("[grid] credit-limit")?),
            None => None,
        };
        Ok(Terms { commands, alloys, credit_limit })
    }

    /// The price of `command` (free unless listed).
    pub fn price_of(&self, command: &str) -> Price {
        self.commands.get(command).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_and_charge_rounding_up() {
        let price = Price::parse("1 credit/call + 0.5 credits/s + 2 credits/1k-tokens").unwrap();
        assert_eq!(
            price,
            Price { millicredits_per_call: 1000, millicredits_per_second: 500, millicredits_per_1k_tokens: 2000 }
        );
        assert_eq!(price.charge(&Units { calls: 1, ms: 3, tokens: 1 }), 1000 + 2 + 2);
        assert_eq!(Price::parse("2").unwrap().millicredits_per_call, 2000);
        assert_eq!(Price::parse("0.125 credits").unwrap().to_string(), "0.125 credits/call");
        assert!(Price::parse("2 credits/hour").unwrap_err().to_string().contains("unknown unit `hour`"));
        assert!(format!("{:#}", Price::parse("0.0001").unwrap_err()).contains("at most 3 decimals"));
        assert!(Price::parse("lots").is_err());
        assert_eq!(credits(1250), "1.25");
        assert_eq!(Price::default().charge(&Units { calls: 9, ms: 9, tokens: 9 }), 0);
    }
}
