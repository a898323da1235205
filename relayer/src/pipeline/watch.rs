//! The delivery watcher of a destination: follows the deliveries its inbox makes, by
//! any member, over final blocks. It records those of messages held here (another
//! member's turn) as soon as they land, and notes when each member last delivered a
//! message of its turn, so a member that keeps delivering is not taken over however
//! long its queue. On destinations with no [`crate::ledger::DeliveryFeed`], held
//! messages are looked up one by one by triage instead, and takeover goes by age.

use std::time::Instant;

use isthmus_schema::{MessageId, MessageStatus};

use super::{record, Context, PipelineError, LEASE};

/// Final blocks below the head from which a watcher starts (older deliveries are
/// looked up when a held message's takeover comes).
pub const LOOKBACK: u64 = 64;

/// The statuses a delivery seen on the destination can end here: every pending one
/// but `submitted`, which a delivery lane of this member holds in flight, and the
/// final ones the destination may contradict (`expired`: another member delivered
/// before the deadline; `dead_letter`: another member's submission succeeded).
const HELD: &[MessageStatus] = &[
    MessageStatus::Observed,
    MessageStatus::Verified,
    MessageStatus::Attested,
    MessageStatus::Failed,
    MessageStatus::Held,
    MessageStatus::Expired,
    MessageStatus::DeadLetter,
];

/// One step from block `next` (None: from [`LOOKBACK`] below the final head).
/// Returns the next block to look at, or None when the destination has no feed.
pub async fn watch(
    ctx: &Context,
    destination: u32,
    next: Option<u64>,
) -> Result<Option<u64>, PipelineError> {
    let target = ctx.ledger(destination)?;
    let Some(feed) = target.destination.feed() else {
        return Ok(None);
    };
    let head = feed.head().await?;
    let from = next.unwrap_or_else(|| head.saturating_sub(LOOKBACK));
    if from > head {
        return Ok(Some(from));
    }
    let to = head.min(from + feed.range() - 1);
    let seen = feed.deliveries_between(from, to).await?;
    if seen.is_empty() {
        return Ok(Some(to + 1));
    }
    // A member's progress: deliveries of its turns sent by another submitter than
    // this relayer's. This relayer's own takeovers do not count, or its first
    // takeover would make a stopped member look alive to it.
    let now = Instant::now();
    for d in seen.iter().filter(|d| !d.by_this_submitter) {
        if let Some(member) = ctx.consortium.turn_of(d.nonce) {
            ctx.progress.delivered(destination, member, now);
        }
    }
    let ids: Vec<MessageId> = seen.iter().map(|d| d.id).collect();
    let held = ctx.store.claim_ids(&ids, HELD, &ctx.worker, LEASE).await?;
    ctx.leases.take(held.iter().map(|m| m.id));
    if !held.is_empty() {
        let found = seen.iter().map(|d| (d.id, d.at)).collect();
        let recorded = record::found_deliveries(ctx, destination, &held, &found).await;
        ctx.release(&held.iter().map(|m| m.id).collect::<Vec<_>>())
            .await;
        recorded?;
    }
    Ok(Some(to + 1))
}
