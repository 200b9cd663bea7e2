//! Test fixture: a resource in an exported signature, which the host refuses at install.

use std::cell::Cell;

wit_bindgen::generate!({ path: "wit", world: "resourceful" });

use exports::continuum_tests::resourceful::counters::{CounterBorrow, Guest, GuestCounter};

struct Fixture;

/// The counter resource.
pub struct Counter(Cell<u32>);

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter(Cell::new(start))
    }
    fn bump(&self) -> u32 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

impl Guest for Fixture {
    type Counter = Counter;
    fn peek(c: CounterBorrow<'_>) -> u32 {
        c.get::<Counter>().0.get()
    }
}

export!(Fixture);
