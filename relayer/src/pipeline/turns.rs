//! Submission turns: each message has one member whose turn it is to submit it
//! ([`crate::attest::Consortium::turn_of`]). The others hold it back until it is
//! `consortium.takeover_s` old and its member looks stopped; then they take it over.
//! The inbox's replay check keeps delivery exactly once either way; the turns spare
//! the duplicate transactions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When each member was last seen delivering a message of its turn, per destination.
/// A member never seen counts from the moment this process started.
#[derive(Debug)]
pub struct Progress {
    last: Mutex<HashMap<(u32, [u8; 20]), Instant>>,
    started: Instant,
}

impl Progress {
    /// No member seen yet, counting from `started`.
    pub fn new(started: Instant) -> Self {
        Self {
            last: Mutex::new(HashMap::new()),
            started,
        }
    }

    /// `member` delivered a message of its turn on `destination` at `at`.
    pub fn delivered(&self, destination: u32, member: [u8; 20], at: Instant) {
        if let Ok(mut last) = self.last.lock() {
            let entry = last.entry((destination, member)).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// Whether `member` looks stopped on `destination` at `now`: no delivery of its
    /// turns seen for `takeover` (counted from the start when none was seen).
    pub fn idle(
        &self,
        destination: u32,
        member: [u8; 20],
        takeover: Duration,
        now: Instant,
    ) -> bool {
        let last = self
            .last
            .lock()
            .ok()
            .and_then(|p| p.get(&(destination, member)).copied())
            .unwrap_or(self.started);
        now.saturating_duration_since(last) >= takeover
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_idle_only_after_takeover_without_deliveries() {
        let start = Instant::now();
        let p = Progress::new(start);
        let takeover = Duration::from_secs(20);
        let a = [1; 20];
        assert!(!p.idle(9, a, takeover, start + Duration::from_secs(19)));
        assert!(p.idle(9, a, takeover, start + Duration::from_secs(20)));
        p.delivered(9, a, start + Duration::from_secs(15));
        assert!(!p.idle(9, a, takeover, start + Duration::from_secs(34)));
        assert!(p.idle(9, a, takeover, start + Duration::from_secs(35)));
        // Per destination, and an older sighting never moves progress back.
        assert!(p.idle(8, a, takeover, start + Duration::from_secs(34)));
        p.delivered(9, a, start + Duration::from_secs(1));
        assert!(!p.idle(9, a, takeover, start + Duration::from_secs(34)));
    }
}
