//! How a ledger's RPC endpoints share the calls, for both adapters: endpoints are
//! listed by preference; a call goes to the first one that is not resting; an
//! endpoint that fails rests for [`FIRST_REST`], doubling with each failure in a row
//! up to [`MAX_REST`], and the call moves on to the next; a rested endpoint gets
//! calls again, so a recovered primary takes the traffic back. When every endpoint
//! rests, a call still tries them all rather than fail without asking.
//!
//! What counts as an endpoint's failure (rather than the ledger's answer) is the
//! adapter's to say; every attempt is reported to an [`RpcObserver`].

use std::time::{Duration, Instant};

/// How long an endpoint rests after its first failure in a row.
pub const FIRST_REST: Duration = Duration::from_secs(2);
/// The longest rest.
pub const MAX_REST: Duration = Duration::from_secs(60);

/// What became of one attempt at one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint answered (possibly with the ledger's own error, such as a revert).
    Answered,
    /// The endpoint failed; the call moved on (or gave up, if it was the last).
    Failed,
}

impl Attempt {
    /// The metric label: `ok` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "ok",
            Self::Failed => "error",
        }
    }
}

/// Receives every attempt, for per-endpoint metrics.
pub trait RpcObserver: Send + Sync {
    /// `endpoint` (its label: scheme, host and port) was asked `method`; it took
    /// `elapsed` and ended as `attempt`.
    fn attempt(&self, endpoint: &str, method: &str, elapsed: Duration, attempt: Attempt);
}

/// One endpoint's failures in a row and the rest they earned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    failures: u32,
    resting_until: Option<Instant>,
}

impl Health {
    /// Whether the endpoint is resting at `now`.
    pub fn resting(&self, now: Instant) -> bool {
        self.resting_until.is_some_and(|t| t > now)
    }

    /// Until when it rests, if it failed last.
    pub fn resting_until(&self) -> Option<Instant> {
        self.resting_until
    }

    /// A failure at `now`: the rest doubles with each failure in a row.
    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let doublings = self.failures.saturating_sub(1).min(16);
        let rest = FIRST_REST
            .checked_mul(1 << doublings)
            .unwrap_or(MAX_REST)
            .min(MAX_REST);
        self.resting_until = Some(now + rest);
    }

    /// An answer: awake, with no failures counted.
    pub fn answered(&mut self) {
        *self = Self::default();
    }
}

/// Settles one attempt at endpoint `label` that began at `started`: its health
/// (rest on failure, awake on an answer) and the observer's report.
pub fn settle(
    health: &std::sync::Mutex<Health>,
    observer: Option<&dyn RpcObserver>,
    label: &str,
    method: &str,
    started: Instant,
    failed: bool,
) {
    if let Some(observer) = observer {
        let attempt = if failed {
            Attempt::Failed
        } else {
            Attempt::Answered
        };
        observer.attempt(label, method, started.elapsed(), attempt);
    }
    let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
    if failed {
        health.failed(Instant::now());
    } else {
        health.answered();
    }
}

/// The order in which to try endpoints whose health is `health` at `now`: those not
/// resting, by preference, then the resting ones.
pub fn order(health: &[Health], now: Instant) -> Vec<usize> {
    let (awake, resting): (Vec<usize>, Vec<usize>) =
        (0..health.len()).partition(|&i| !health[i].resting(now));
    awake.into_iter().chain(resting).collect()
}

/// Whether a node's JSON-RPC error answer says the endpoint is overloaded or broken
/// (`-32005` limit exceeded, `-32603` internal error, a rate limit), so another
/// endpoint should be asked, rather than being the ledger's answer.
pub fn is_overloaded(code: i64, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    code == -32005
        || code == -32603
        || message.contains("rate limit")
        || message.contains("too many requests")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_endpoint_rests_longer_each_time_and_an_answer_wakes_it() {
        let now = Instant::now();
        let mut h = Health::default();
        assert!(!h.resting(now));
        h.failed(now);
        assert_eq!(h.resting_until(), Some(now + FIRST_REST));
        h.failed(now);
        assert_eq!(h.resting_until(), Some(now + FIRST_REST * 2));
        for _ in 0..20 {
            h.failed(now);
        }
        assert_eq!(h.resting_until(), Some(now + MAX_REST), "bounded");
        assert!(h.resting(now + MAX_REST - Duration::from_millis(1)));
        assert!(!h.resting(now + MAX_REST), "rested: tried again");
        h.answered();
        assert_eq!(h, Health::default());
    }

    #[test]
    fn endpoints_are_tried_by_preference_resting_ones_last() {
        let now = Instant::now();
        let mut health = vec![Health::default(); 3];
        assert_eq!(order(&health, now), vec![0, 1, 2]);
        health[0].failed(now);
        assert_eq!(order(&health, now), vec![1, 2, 0]);
        health[1].failed(now);
        health[2].failed(now);
        assert_eq!(
            order(&health, now),
            vec![0, 1, 2],
            "all rest: all are tried"
        );
        // The primary's rest ends first: it takes the traffic back.
        assert_eq!(order(&health, now + FIRST_REST), vec![0, 1, 2]);
        health[1].answered();
        assert_eq!(order(&health, now), vec![1, 0, 2]);
    }

    #[test]
    fn overload_answers_are_told_from_the_ledgers_own() {
        assert!(is_overloaded(-32005, "limit exceeded"));
        assert!(is_overloaded(-32603, "internal error"));
        assert!(is_overloaded(-32000, "Rate limit reached"));
        assert!(is_overloaded(429, "Too Many Requests"));
        assert!(!is_overloaded(3, "execution reverted"));
        assert!(!is_overloaded(-32000, "nonce too low"));
        assert!(!is_overloaded(1010, "Invalid Transaction"));
    }
}
