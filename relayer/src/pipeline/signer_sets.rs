//! The signer sets each destination accepts, as the attest step follows them.
//!
//! A destination's Inbox (or pallet) holds, per origin, the current signer set and,
//! during an update's overlap, the set it replaced. The attest step counts only
//! signatures those sets hold, of one set at a time, as the destination will: a
//! member's rotated key counts as soon as the destination's set holds it, a retired
//! key stops counting when the overlap ends, and no submission is made that the
//! destination would refuse for its quorum. The sets are read from the destination
//! and kept for [`REFRESH`]; a refused submission drops them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use isthmus_protocol::ActiveSigners;

use crate::ledger::{Destination, LedgerError};

/// How long a read of a destination's signer sets is used before it is read again.
/// An update takes effect on the relayer within this time; an update's overlap
/// should be longer (docs/operations.md, "Rotating a signer").
pub const REFRESH: Duration = Duration::from_secs(15);

/// Seconds a submission may take to land after the quorum is chosen: the replaced
/// set is only chosen if its overlap lasts that long still.
pub const LANDING_MARGIN_S: u64 = 60;

/// What was read of each (destination, origin), and when.
type Reads = HashMap<(u32, u32), (Instant, Arc<ActiveSigners>)>;

/// The signer sets of every (destination, origin) this relayer delivers on.
#[derive(Default)]
pub struct Following {
    read: Mutex<Reads>,
}

impl Following {
    /// The sets `destination` (the ledger `ledger`) accepts for `origin`: the last
    /// read if it is recent, else a new read.
    pub async fn get(
        &self,
        ledger: &dyn Destination,
        destination: u32,
        origin: u32,
    ) -> Result<Arc<ActiveSigners>, LedgerError> {
        let key = (destination, origin);
        if let Some((at, sets)) = self.lock().get(&key) {
            if at.elapsed() < REFRESH {
                return Ok(sets.clone());
            }
        }
        let sets = Arc::new(ledger.signer_sets(origin).await?);
        let previous = self
            .lock()
            .insert(key, (Instant::now(), sets.clone()))
            .map(|(_, s)| s.version);
        if previous.is_some_and(|v| v != sets.version) {
            tracing::info!(
                destination,
                origin,
                version = sets.version,
                signers = sets.current.signers().len(),
                threshold = sets.current.threshold(),
                "the destination's signer set changed; following it"
            );
        }
        Ok(sets)
    }

    /// Drops what was read of `destination`'s sets for `origin` (a submission was
    /// refused for its quorum: read them again).
    pub fn forget(&self, destination: u32, origin: u32) {
        self.lock().remove(&(destination, origin));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds since the unix epoch on this machine's clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
