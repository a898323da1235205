//! The observer of a source: scans final blocks in bounded ranges and records the
//! outbox's entries (messages, and rejected entries with their reason) with the
//! cursor in one transaction, so a restart resumes from the stored cursor and
//! nowhere else. Messages of another member's turn are held back from the start.

use std::collections::BTreeMap;
use std::time::Duration;

use isthmus_schema::{CursorKey, MessageId, ObservedRange, RejectedEntry, Stage};
use tracing::{info, warn};

use super::{hex32, Context, PipelineError, HOLD_STEP};
use crate::ledger::{LedgerError, Observed};

/// How long another member's message is held back at observation: `wait`, but no
/// later than just past its `deadline` (Unix seconds, 0 = none), so that every
/// member records an expired message as expired soon after its deadline instead of
/// keeping it `observed` for a whole takeover period.
pub fn hold_for(wait: Duration, deadline: u64, now: u64) -> Duration {
    if deadline == 0 {
        return wait;
    }
    let until_expired = Duration::from_secs(deadline.saturating_sub(now).saturating_add(1));
    wait.min(until_expired)
}

/// One observer round: blocks `from..=to` scanned, `finalized` the final head then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// First block scanned.
    pub from: u64,
    /// Last block scanned.
    pub to: u64,
    /// The final head when the round started, with the blocks the source's light
    /// client has still to follow (more remain when `to < finalized`).
    pub finalized: u64,
}

/// Scans the next bounded range of final blocks of `id`. None when there was
/// nothing new.
pub async fn observe(ctx: &Context, id: u32) -> Result<Option<Round>, PipelineError> {
    let ledger = ctx.ledger(id)?;
    let source = &ledger.source;
    let key = CursorKey {
        ledger: id,
        destination: None,
        stage: Stage::Observe,
    };
    let cursor = ctx.store.load_cursor(key).await?;
    if let Some(c) = cursor {
        source.check_linkage(c.block).await?;
    }
    let finalized = source.finalized().await?;
    ctx.metrics
        .height
        .with_label_values(&[&ledger.name, "finalized"])
        .set(finalized.number as i64);
    let from = cursor.map_or(source.first_block(), |c| c.block.number + 1);
    if from > finalized.number {
        return Ok(None);
    }
    let to = finalized.number.min(from + source.scan_range() - 1);
    let to_ref = source
        .block_ref(to)
        .await?
        .ok_or_else(|| LedgerError::BlockMissing {
            ledger: ledger.name.clone(),
            number: to,
        })?;
    let mut messages = Vec::new();
    let mut rejected = Vec::new();
    for scanned in source.scan(from, to).await? {
        match scanned {
            Observed::Message(m) => messages.push(m),
            Observed::Rejected {
                block,
                tx_hash,
                log_index,
                reason,
                raw,
            } => {
                warn!(block = block.number, tx = ?tx_hash.map(|t| hex32(&t)), log_index, %reason, "outbox entry rejected; recorded in the history");
                rejected.push(RejectedEntry {
                    block,
                    tx_hash,
                    index: log_index,
                    reason,
                    raw,
                });
            }
        }
    }
    // Receipt batches (from this ledger's Inbox to another ledger's) carry the
    // receipts of the messages that ended here; they are recorded with the batch.
    let from_inbox = ledger.destination.receipt_endpoint();
    let mut receipts = Vec::new();
    for m in &messages {
        let to_inbox = ctx
            .ledgers
            .get(&m.destination)
            .and_then(|l| l.destination.receipt_endpoint());
        match super::receipts::carried(m, from_inbox, to_inbox) {
            Ok(carried) => receipts.extend(carried),
            Err(reason) => {
                warn!(msg_id = %m.id, %reason, "a receipt batch that is not receipts; its destination refuses it");
            }
        }
    }
    // The entries are recorded with the range, so the history shows every outbox
    // entry: a message, or a rejection with its reason.
    // The light client's state (sealed finality) commits with the cursor it covers.
    let light_client = source.light_client().await;
    let outcome = ctx
        .store
        .record_observed_round(
            key,
            ObservedRange {
                block: to_ref,
                messages: &messages,
                rejected: &rejected,
                receipts: &receipts,
                light_client: light_client.as_ref(),
            },
            &ctx.worker,
        )
        .await?;
    if let Some(lc) = &light_client {
        source.light_client_committed(lc.state.head.number).await;
    }
    ctx.metrics
        .rejected_logs
        .with_label_values(&[&ledger.name])
        .inc_by(outcome.rejected as u64);
    // Another member's turn is held back until it is `consortium.takeover_s` old
    // where the destination's deliveries are followed as they land (the watcher
    // records them); elsewhere it is looked at every HOLD_STEP, so other members'
    // deliveries reach this history soon.
    let me = ctx.attester.address();
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let mut others: BTreeMap<Duration, Vec<MessageId>> = BTreeMap::new();
    for m in &messages {
        if ctx.consortium.turn_of(m.nonce) != Some(me) {
            let followed = ctx
                .ledgers
                .get(&m.destination)
                .is_some_and(|l| l.destination.feed().is_some());
            let wait = if followed { ctx.takeover } else { HOLD_STEP };
            others
                .entry(hold_for(wait, m.deadline, now))
                .or_default()
                .push(m.id);
        }
    }
    for (wait, held) in others {
        ctx.store.defer_observed(&held, wait).await?;
    }
    ctx.metrics
        .height
        .with_label_values(&[&ledger.name, "observed"])
        .set(to as i64);
    // A light client still following the node's chain (sealed EVM finality) has
    // final blocks beyond `finalized` that count as remaining too.
    let lag = source.lag();
    let remaining = finalized.number - to + lag;
    if outcome.inserted > 0 || remaining > 0 {
        info!(
            from,
            to,
            inserted = outcome.inserted,
            remaining_blocks = remaining,
            "observed"
        );
    }
    Ok(Some(Round {
        from,
        to,
        finalized: finalized.number + lag,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_message_is_looked_at_again_just_after_its_deadline() {
        let takeover = Duration::from_secs(20);
        // No deadline, or one after the takeover: the whole takeover period.
        assert_eq!(hold_for(takeover, 0, 1_000), takeover);
        assert_eq!(hold_for(takeover, 1_100, 1_000), takeover);
        // A deadline inside the period: just past it.
        assert_eq!(hold_for(takeover, 1_005, 1_000), Duration::from_secs(6));
        // Already past: at once (one second of slack for clock rounding).
        assert_eq!(hold_for(takeover, 900, 1_000), Duration::from_secs(1));
    }
}
