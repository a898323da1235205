//! Paused routes, as the claim step follows them.
//!
//! Any member can pause a route on its destination (`isthmus route pause`); the
//! destination then refuses every submission of the origin's checkpoints until a
//! quorum resumes it. The claim step leaves a paused route's messages where they
//! are: no attempt is spent on a submission the destination would refuse, nothing
//! is dead-lettered, and the messages are delivered after the resume. A route's
//! state is read from its destination and kept for [`REFRESH`]; a refused
//! submission drops it, so a pause that lands between the read and a submission
//! costs that one attempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use isthmus_protocol::RouteState;
use tracing::{info, warn};

use super::Context;

/// How long a read of a route's state is used before it is read again: a pause
/// stops this relayer's submissions within this time, a resume starts them again.
pub const REFRESH: Duration = Duration::from_secs(4);

/// What was read of each (destination, origin), and when.
type Reads = HashMap<(u32, u32), (Instant, RouteState)>;

/// The state of every route this relayer delivers on.
#[derive(Default)]
pub struct Routes {
    read: Mutex<Reads>,
}

impl Routes {
    /// Whether the route from `origin` is paused on `destination`: the last read if
    /// it is recent, else a new read. A destination that does not answer is taken as
    /// open: its submissions fail on their own, and count as attempts as before.
    pub async fn paused(&self, ctx: &Context, destination: u32, origin: u32) -> bool {
        let key = (destination, origin);
        if let Some((at, state)) = self.lock().get(&key) {
            if at.elapsed() < REFRESH {
                return state.paused;
            }
        }
        let Ok(ledger) = ctx.ledger(destination) else {
            return false;
        };
        let state = match ledger.destination.route_state(origin).await {
            Ok(state) => state,
            Err(e) => {
                // Every round asks again while the node is down: one line per
                // period, with the count of those held back.
                let kind = format!("route state {destination} {origin}");
                if let Some(held_back) = ctx.quiet.check(&kind, Instant::now()) {
                    warn!(destination, origin, error = %e, held_back, "could not read the route's state; taking it as open");
                }
                return false;
            }
        };
        let before = self
            .lock()
            .insert(key, (Instant::now(), state))
            .map(|(_, s)| s);
        let route = format!("{}->{}", ctx.name(origin), ctx.name(destination));
        ctx.metrics
            .route_paused
            .with_label_values(&[&route])
            .set(i64::from(state.paused));
        if before.map(|s| s.paused) != Some(state.paused) && (state.paused || before.is_some()) {
            info!(
                %route,
                paused = state.paused,
                epoch = state.epoch,
                "{}",
                if state.paused {
                    "the route is paused on its destination: its messages wait for a quorum's resume"
                } else {
                    "the route was resumed: delivering its messages again"
                }
            );
        }
        state.paused
    }

    /// Drops what was read of the route from `origin` to `destination` (a submission
    /// was refused: it may have been paused meanwhile).
    pub fn forget(&self, destination: u32, origin: u32) {
        self.lock().remove(&(destination, origin));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}
