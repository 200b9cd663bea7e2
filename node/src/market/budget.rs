//! Budgets: what a grant may spend on this node per period (calls, credits, tokens), kept per
//! grant and period in SQLite. A call reserves its call and its per-call price before it runs,
//! in one conditional update, so concurrent calls can never spend past a limit; what it cost
//! beyond that (time, tokens) is added when it ends.

use anyhow::Result;
use rusqlite::{params, Connection, OptionalExtension};

use continuum_core::grants::{Budget, Grant};

/// What each grant spent in each period.
pub const SCHEMA: continuum_core::db::Schema = continuum_core::db::Schema {
    owner: "budgets",
    migrations: &["
CREATE TABLE IF NOT EXISTS budget_spent (
    grant_id     TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    millicredits INTEGER NOT NULL,
    tokens       INTEGER NOT NULL,
    PRIMARY KEY (grant_id, period_start)
) STRICT;
"],
};

/// A reservation made for one call: where to settle what it cost beyond it.
#[derive(Debug, Clone)]
pub struct Reservation {
    grant_id: String,
    period_start: i64,
    /// Millicredits already reserved.
    reserved: u64,
}

/// The start (unix seconds) of the period containing `now` for a grant issued at `issued`.
fn period_start(budget: &Budget, issued: i64, now: i64) -> i64 {
    let period = budget.period_secs.max(1) as i64;
    issued + (now - issued).max(0) / period * period
}

/// Why a call was refused: what was spent of what, and when it resets.
fn exhausted(budget: &Budget, spent: (u64, u64, u64), start: i64, need_credits: u64) -> String {
    let (calls, millicredits, tokens) = spent;
    let what = if budget.calls.is_some_and(|c| calls + 1 > c) {
        format!("{calls} of {} calls", budget.calls.unwrap_or(0))
    } else if budget.millicredits.is_some_and(|c| millicredits + need_credits > c) {
        format!(
            "{} of {} credits (this call costs {})",
            super::terms::credits(millicredits),
            super::terms::credits(budget.millicredits.unwrap_or(0)),
            super::terms::credits(need_credits)
        )
    } else {
        format!("{tokens} of {} tokens", budget.tokens.unwrap_or(0))
    };
    let resets = start + budget.period_secs as i64;
    let stamp = |secs: i64| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
    };
    format!(
        "budget exhausted: this grant spent {what} in the period since {}; it resets at {} (in {} s)",
        stamp(start),
        stamp(resets),
        (resets - continuum_core::now_secs()).max(0)
    )
}

/// Reserves one call costing at least `millicredits` on `grant`'s budget at `now` (unix
/// seconds): `Ok(None)` when the grant has no budget, `Err(reason)` when the call would go past
/// a limit (nothing is reserved then).
pub fn reserve(
    conn: &Connection,
    grant: &Grant,
    millicredits: u64,
    now: i64,
) -> Result<Result<Option<Reservation>, String>> {
    let Some(budget) = grant.budget else { return Ok(Ok(None)) };
    let start = period_start(&budget, grant.issued, now);
    conn.execute(
        "INSERT OR IGNORE INTO budget_spent (grant_id, period_start, calls, millicredits, tokens) VALUES (?1, ?2, 0, 0, 0)",
        params![grant.id, start],
    )?;
    let limit = |l: Option<u64>| l.map(|v| v.min(i64::MAX as u64) as i64);
    // One statement: checked and spent together, whatever else runs at the same time.
    let changed = conn.execute(
        "UPDATE budget_spent SET calls = calls + 1, millicredits = millicredits + ?3
         WHERE grant_id = ?1 AND period_start = ?2
           AND (?4 IS NULL OR calls + 1 <= ?4)
           AND (?5 IS NULL OR millicredits + ?3 <= ?5)
           AND (?6 IS NULL OR tokens < ?6)",
        params![
            grant.id,
            start,
            millicredits.min(i64::MAX as u64) as i64,
            limit(budget.calls),
            limit(budget.millicredits),
            limit(budget.tokens)
        ],
    )?;
    if changed == 1 {
        return Ok(Ok(Some(Reservation { grant_id: grant.id.clone(), period_start: start, reserved: millicredits })));
    }
    let spent = spent(conn, &grant.id, start)?.unwrap_or_default();
    Ok(Err(exhausted(&budget, spent, start, millicredits)))
}

/// Adds what a reserved call cost beyond its reservation: `millicredits` in all, `tokens`.
pub fn settle(conn: &Connection, reservation: &Reservation, millicredits: u64, tokens: u64) -> Result<()> {
    let extra = millicredits.saturating_sub(reservation.reserved);
    conn.execute(
        "UPDATE budget_spent SET millicredits = millicredits + ?3, tokens = tokens + ?4
         WHERE grant_id = ?1 AND period_start = ?2",
        params![reservation.grant_id, reservation.period_start, extra as i64, tokens as i64],
    )?;
    Ok(())
}

/// What grant `grant_id` spent in the period starting at `start`: calls, millicredits, tokens.
fn spent(conn: &Connection, grant_id: &str, start: i64) -> Result<Option<(u64, u64, u64)>> {
    Ok(conn
        .query_row(
            "SELECT calls, millicredits, tokens FROM budget_spent WHERE grant_id = ?1 AND period_start = ?2",
            params![grant_id, start],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(budget: Budget) -> Grant {
        Grant {
            id: "g".into(),
            root: "r".into(),
            holder: "h".into(),
            caps: vec!["kv/".into()],
            expires: i64::MAX,
            epoch: 1,
            issued: 1_000,
            budget: Some(budget),
        }
    }

    #[test]
    fn a_budget_refuses_past_its_limits_and_resets_each_period() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA.migrations[0]).unwrap();
        let g = grant(Budget { calls: Some(2), millicredits: Some(2500), tokens: None, period_secs: 60 });
        assert!(reserve(&conn, &g, 1000, 1_010).unwrap().is_ok());
        assert!(reserve(&conn, &g, 1000, 1_020).unwrap().is_ok());
        let refused = reserve(&conn, &g, 1000, 1_030).unwrap().unwrap_err();
        assert!(refused.contains("2 of 2 calls") && refused.contains("resets at"), "{refused}");
        // The next period starts at issued + 60.
        let r = reserve(&conn, &g, 2000, 1_060).unwrap().unwrap().unwrap();
        settle(&conn, &r, 2400, 7).unwrap();
        let refused = reserve(&conn, &g, 200, 1_070).unwrap().unwrap_err();
        assert!(refused.contains("2.4 of 2.5 credits"), "{refused}");
        let free = Grant { budget: None, ..g };
        assert!(reserve(&conn, &free, 1, 1_070).unwrap().unwrap().is_none());
    }
}
