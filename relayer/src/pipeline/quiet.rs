//! Repeated identical warnings, summarised. With members down, every round meets
//! the same refusals; a line per request buried everything else (hundreds of lines
//! in half a minute). The first of a kind is logged at once, then at most one line
//! per period that says how many were held back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most kinds remembered; past that the oldest are forgotten (and logged again).
const KINDS: usize = 1_024;

/// Decides which of a repeated warning's occurrences are logged.
#[derive(Debug)]
pub struct Quiet {
    every: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    /// At most one line per kind per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the warning of kind `key` occurring at `now` is logged: `Some(n)`
    /// when it is, `n` being how many of the kind were held back since its last
    /// line; `None` when it is held back.
    pub fn check(&self, key: &str, now: Instant) -> Option<u64> {
        let Ok(mut seen) = self.seen.lock() else {
            return Some(0);
        };
        match seen.get_mut(key) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now;
                *held = 0;
                Some(n)
            }
            None => {
                if seen.len() >= KINDS {
                    if let Some(oldest) = seen
                        .iter()
                        .min_by_key(|(_, (t, _))| *t)
                        .map(|(k, _)| k.clone())
                    {
                        seen.remove(&oldest);
                    }
                }
                seen.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_one_summary_per_period() {
        let q = Quiet::new(Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(q.check("bank-b refused", t), Some(0));
        for s in 1..=59 {
            assert_eq!(q.check("bank-b refused", t + Duration::from_secs(s)), None);
        }
        // Another kind is not held back by the first.
        assert_eq!(
            q.check("bank-c refused", t + Duration::from_secs(5)),
            Some(0)
        );
        assert_eq!(
            q.check("bank-b refused", t + Duration::from_secs(60)),
            Some(59)
        );
        assert_eq!(q.check("bank-b refused", t + Duration::from_secs(61)), None);
        assert_eq!(
            q.check("bank-b refused", t + Duration::from_secs(200)),
            Some(1)
        );
    }

    #[test]
    fn kinds_are_bounded() {
        let q = Quiet::new(Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..(KINDS + 10) {
            assert_eq!(
                q.check(&format!("kind {i}"), t + Duration::from_millis(i as u64)),
                Some(0)
            );
        }
        assert!(q.seen.lock().map(|s| s.len()).unwrap_or(0) <= KINDS);
    }
}
