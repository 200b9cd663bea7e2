//! Locking shared state so that a panic in one holder does not take the lock down for all.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering from a panic in another holder (the data stays consistent: every
/// critical section here is a single insert, lookup or SQLite call).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
