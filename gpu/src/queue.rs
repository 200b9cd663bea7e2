//! The request queue: at most `slots` model computations run at once (each already uses
//! several threads); the rest wait in arrival order until a slot frees or their deadline passes.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::InferenceError;

/// A first-come, first-served gate over the compute slots.
#[derive(Debug)]
pub struct Queue {
    slots: u32,
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    busy: u32,
    next_ticket: u64,
    waiting: VecDeque<u64>,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot<'a> {
    queue: &'a Queue,
}

impl Queue {
    /// A queue with `slots` concurrent computations (at least one).
    pub fn new(slots: u32) -> Self {
        Queue { slots: slots.max(1), state: Mutex::default(), changed: Condvar::new() }
    }

    /// How many requests are waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).waiting.len()
    }

    /// Waits for a slot until `deadline`.
    pub fn acquire(&self, deadline: Option<Instant>) -> Result<Slot<'_>, InferenceError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(ticket);
        while state.busy >= self.slots || state.waiting.front() != Some(&ticket) {
            let left = match deadline {
                Some(d) => d.checked_duration_since(Instant::now()),
                None => Some(Duration::from_secs(3600)),
            };
            let Some(left) = left else {
                state.waiting.retain(|t| *t != ticket);
                self.changed.notify_all();
                return Err(InferenceError::BudgetExceeded(
                    "the time budget ran out while waiting for a free compute slot".into(),
                ));
            };
            state = self.changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        state.waiting.pop_front();
        state.busy += 1;
        // The next in line may fit too, when several slots are free.
        self.changed.notify_all();
        Ok(Slot { queue: self })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock().unwrap_or_else(|p| p.into_inner());
        state.busy -= 1;
        self.queue.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_times_out_with_a_budget_error_and_frees_on_drop() {
        let queue = Queue::new(1);
        let held = queue.acquire(None).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(matches!(queue.acquire(Some(soon)), Err(InferenceError::BudgetExceeded(_))));
        assert_eq!(queue.waiting(), 0, "a timed-out waiter leaves the line");
        drop(held);
        assert!(queue.acquire(Some(Instant::now() + Duration::from_millis(20))).is_ok());
    }
}
