//! Reducers: how the answers of several peers become one result, and which peers it used.
//!
//! Every reducer returns the peers whose answers went into the result: only those are
//! credited (SPEC §8).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::{Map, Value};

/// A built-in reducer, or a command to call with `{"results": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reducer {
    /// The value a strict majority of the answers agree on.
    Majority,
    /// Every distinct value (array answers are flattened), in arrival order.
    Union,
    /// Federated averaging: every numeric leaf averaged, weighted by the answer's `samples`.
    FedAvg,
    /// Every numeric leaf averaged, weighted by the answer's `weight` (or `confidence`).
    WeightedAverage,
    /// The answer with the highest `score` (or `confidence`).
    BestOfN,
    /// The first successful answer.
    FirstGood,
    /// Array answers merged and cut to the `k` items with the highest `score`.
    MergeTopK(usize),
    /// A command on this node that receives `{"results": [{"peer":…, "value":…}, …]}`.
    Command(String),
}

impl Reducer {
    /// Parses a `--reduce` value; `k` is used by `merge-top-k`.
    pub fn parse(text: &str, k: usize) -> Result<Reducer> {
        Ok(match text {
            "majority" => Reducer::Majority,
            "union" => Reducer::Union,
            "fedavg" => Reducer::FedAvg,
            "weighted-average" => Reducer::WeightedAverage,
            "best-of-n" => Reducer::BestOfN,
            "first-good" => Reducer::FirstGood,
            "merge-top-k" => Reducer::MergeTopK(k.max(1)),
            c if c.contains('/') => Reducer::Command(c.to_string()),
            other => bail!(
                "unknown reducer `{other}`; use majority, union, fedavg, weighted-average, best-of-n, first-good, merge-top-k, or a command name (plugin/function)"
            ),
        })
    }

    /// The reducer's name.
    pub fn name(&self) -> String {
        match self {
            Reducer::Majority => "majority".into(),
            Reducer::Union => "union".into(),
            Reducer::FedAvg => "fedavg".into(),
            Reducer::WeightedAverage => "weighted-average".into(),
            Reducer::BestOfN => "best-of-n".into(),
            Reducer::FirstGood => "first-good".into(),
            Reducer::MergeTopK(k) => format!("merge-top-k({k})"),
            Reducer::Command(c) => c.clone(),
        }
    }

    /// Reduces `answers` (peer, value) with a built-in reducer: the value and the peers used.
    /// A command reducer is run by the dispatcher, not here.
    pub fn reduce(&self, answers: &[(String, Value)]) -> Result<(Value, Vec<String>)> {
        if answers.is_empty() {
            bail!("no answers to reduce");
        }
        let all = || answers.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        match self {
            Reducer::Majority => majority(answers),
            Reducer::Union => Ok((union(answers), all())),
            Reducer::FedAvg => Ok((average(answers, &["samples", "count"])?, all())),
            Reducer::WeightedAverage => Ok((average(answers, &["weight", "confidence"])?, all())),
            Reducer::BestOfN => {
                let best =
                    answers.iter().max_by(|a, b| score(&a.1).total_cmp(&score(&b.1))).expect("answers is not empty");
                Ok((best.1.clone(), vec![best.0.clone()]))
            }
            Reducer::FirstGood => Ok((answers[0].1.clone(), vec![answers[0].0.clone()])),
            Reducer::MergeTopK(k) => merge_top_k(answers, *k),
            Reducer::Command(c) => bail!("`{c}` is a reducer command; the dispatcher calls it"),
        }
    }
}

fn majority(answers: &[(String, Value)]) -> Result<(Value, Vec<String>)> {
    let mut votes: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for (peer, value) in answers {
        votes.entry(value.to_string()).or_default().push(peer);
    }
    let (text, peers) = votes.iter().max_by_key(|(_, p)| p.len()).expect("answers is not empty");
    if peers.len() * 2 <= answers.len() {
        bail!(
            "no majority: {} answers in {} different versions (the largest group has {})",
            answers.len(),
            votes.len(),
            peers.len()
        );
    }
    Ok((serde_json::from_str(text)?, peers.iter().map(|p| p.to_string()).collect()))
}

fn union(answers: &[(String, Value)]) -> Value {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (_, value) in answers {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for item in items {
            if seen.insert(item.to_string()) {
                out.push(item.clone());
            }
        }
    }
    Value::Array(out)
}

fn score(v: &Value) -> f64 {
    ["score", "confidence"].iter().find_map(|k| v.get(k).and_then(Value::as_f64)).unwrap_or(f64::NEG_INFINITY)
}

/// Averages every numeric leaf over answers of the same shape, weighted by the first of
/// `weight_keys` each answer has (1 otherwise). The weight members are summed, not averaged.
fn average(answers: &[(String, Value)], weight_keys: &[&str]) -> Result<Value> {
    let weight_key = weight_keys.iter().find(|k| answers.iter().all(|(_, v)| v.get(**k).is_some_and(Value::is_number)));
    let weights: Vec<f64> = answers
        .iter()
        .map(|(_, v)| weight_key.and_then(|k| v.get(*k)).and_then(Value::as_f64).unwrap_or(1.0))
        .collect();
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
        bail!("the answers' weights must be non-negative numbers with a positive sum");
    }
    let values: Vec<&Value> = answers.iter().map(|(_, v)| v).collect();
    let mut merged = merge(&values, &weights, "")?;
    if let (Some(k), Value::Object(m)) = (weight_key, &mut merged) {
        m.insert(k.to_string(), serde_json::json!(weights.iter().sum::<f64>()));
    }
    Ok(merged)
}

fn merge(values: &[&Value], weights: &[f64], path: &str) -> Result<Value> {
    let here = if path.is_empty() { "the answer" } else { path };
    match values[0] {
        Value::Number(_) => {
            let total: f64 = weights.iter().sum();
            let mut sum = 0.0;
            for (v, w) in values.iter().zip(weights) {
                let Some(x) = v.as_f64() else { bail!("answers differ in shape at {here}: a number and {v}") };
                sum += x * w;
            }
            Ok(serde_json::json!(sum / total))
        }
        Value::Array(first) => {
            let mut out = Vec::with_capacity(first.len());
            for i in 0..first.len() {
                let items = values
                    .iter()
                    .map(|v| v.as_array().filter(|a| a.len() == first.len()).map(|a| &a[i]))
                    .collect::<Option<Vec<_>>>();
                let Some(items) = items else {
                    bail!("answers differ in shape at {here}: arrays of different lengths")
                };
                out.push(merge(&items, weights, &format!("{path}[{i}]"))?);
            }
            Ok(Value::Array(out))
        }
        Value::Object(first) => {
            let mut out = Map::new();
            for key in first.keys() {
                let items = values.iter().map(|v| v.get(key)).collect::<Option<Vec<_>>>();
                let Some(items) = items else { bail!("answers differ in shape at {here}: only some have `{key}`") };
                out.insert(key.clone(), merge(&items, weights, &format!("{path}.{key}"))?);
            }
            Ok(Value::Object(out))
        }
        other => {
            if values.iter().any(|v| *v != other) {
                bail!("answers differ at {here}, which is not a number and cannot be averaged");
            }
            Ok(other.clone())
        }
    }
}

fn merge_top_k(answers: &[(String, Value)], k: usize) -> Result<(Value, Vec<String>)> {
    let mut items: Vec<(f64, &String, &Value)> = Vec::new();
    for (peer, value) in answers {
        let Some(list) = value.as_array() else { bail!("merge-top-k needs list answers; {peer} answered {value}") };
        items.extend(list.iter().map(|item| (score(item), peer, item)));
    }
    items.sort_by(|a, b| b.0.total_cmp(&a.0));
    items.truncate(k);
    let mut used: Vec<String> = items.iter().map(|(_, p, _)| (*p).clone()).collect();
    used.sort();
    used.dedup();
    Ok((Value::Array(items.into_iter().map(|(_, _, v)| v.clone()).collect()), used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(values: &[Value]) -> Vec<(String, Value)> {
        values.iter().enumerate().map(|(i, v)| (format!("p{i}"), v.clone())).collect()
    }

    #[test]
    fn majority_credits_only_the_agreeing_peers() {
        let (v, used) = Reducer::Majority.reduce(&answers(&[json!(1), json!(2), json!(1)])).unwrap();
        assert_eq!((v, used), (json!(1), vec!["p0".to_string(), "p2".to_string()]));
        let err = Reducer::Majority.reduce(&answers(&[json!(1), json!(2)])).unwrap_err();
        assert!(err.to_string().contains("no majority"), "{err}");
    }

    #[test]
    fn fedavg_weights_by_samples_and_refuses_mismatched_shapes() {
        let a = answers(&[json!({"w": [1.0, 2.0], "samples": 1}), json!({"w": [4.0, 5.0], "samples": 2})]);
        let (v, used) = Reducer::FedAvg.reduce(&a).unwrap();
        assert_eq!(v, json!({"w": [3.0, 4.0], "samples": 3.0}));
        assert_eq!(used.len(), 2);
        let (v, _) = Reducer::FedAvg.reduce(&answers(&[json!({"number": 2.0}), json!({"number": 4.0})])).unwrap();
        assert_eq!(v, json!({"number": 3.0}));
        let err = Reducer::FedAvg.reduce(&answers(&[json!([1.0]), json!([1.0, 2.0])])).unwrap_err();
        assert!(err.to_string().contains("different lengths"), "{err}");
        assert!(Reducer::FedAvg.reduce(&answers(&[json!("a"), json!("b")])).is_err());
    }

    #[test]
    fn union_best_of_n_and_top_k() {
        let (v, _) = Reducer::Union.reduce(&answers(&[json!([1, 2]), json!([2, 3])])).unwrap();
        assert_eq!(v, json!([1, 2, 3]));
        let (v, used) = Reducer::BestOfN.reduce(&answers(&[json!({"score": 0.2}), json!({"score": 0.9})])).unwrap();
        assert_eq!((v, used), (json!({"score": 0.9}), vec!["p1".to_string()]));
        let a = answers(&[json!([{"score": 0.1}, {"score": 0.8}]), json!([{"score": 0.5}])]);
        let (v, used) = Reducer::MergeTopK(2).reduce(&a).unwrap();
        assert_eq!(v, json!([{"score": 0.8}, {"score": 0.5}]));
        assert_eq!(used, vec!["p0".to_string(), "p1".to_string()]);
        assert!(Reducer::parse("average", 1).unwrap_err().to_string().contains("unknown reducer"));
    }
}
