//! The leases this process is using right now, so that the ones it is not can be
//! taken back. A live process leaves a lease behind when the answer to its claim,
//! or its release, is lost to a database fault (a reset connection, a restart): the
//! claim committed but the process never learnt it, or the release never arrived.
//! Such a lease would hold its messages until it runs out ([`super::LEASE`]);
//! [`release_stray`] frees it [`STRAY_GRACE`] after the claim instead.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use isthmus_schema::MessageId;

use super::{Context, PipelineError, LEASE};

/// How long after its claim a lease this process does not use is taken back: far
/// more than a claim's answer takes to arrive and be noted.
pub const STRAY_GRACE: Duration = Duration::from_secs(30);

/// The messages whose leases a step of this process holds.
#[derive(Debug, Default)]
pub struct InUse(Mutex<HashSet<MessageId>>);

impl InUse {
    /// A step claimed `ids`.
    pub fn take(&self, ids: impl IntoIterator<Item = MessageId>) {
        self.lock().extend(ids);
    }

    /// A step is done with `ids` (released, or settled).
    pub fn give_back(&self, ids: &[MessageId]) {
        let mut held = self.lock();
        for id in ids {
            held.remove(id);
        }
    }

    /// The messages in use now.
    pub fn list(&self) -> Vec<MessageId> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<MessageId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Frees this process's leases that no step uses and that were taken more than
/// [`STRAY_GRACE`] ago. Returns how many.
pub async fn release_stray(ctx: &Context) -> Result<u64, PipelineError> {
    Ok(ctx
        .store
        .release_stray_leases(&ctx.worker, &ctx.leases.list(), LEASE, STRAY_GRACE)
        .await?)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn leases_are_in_use_from_their_claim_until_given_back() {
        let in_use = InUse::default();
        let (a, b) = (MessageId([1; 32]), MessageId([2; 32]));
        in_use.take([a, b]);
        in_use.give_back(&[a]);
        assert_eq!(in_use.list(), vec![b]);
        in_use.give_back(&[a, b]);
        assert!(in_use.list().is_empty());
    }
}
