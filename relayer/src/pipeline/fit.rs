//! Step 5, fit: the attested batch is built, and the messages the destination could
//! never take as things stand (their delivery alone needs more gas than the route's
//! `max_message_gas`, or than a block holds) are dead-lettered with the reason before
//! any submission, instead of failing every batch they ride in until their attempts
//! run out.

use isthmus_protocol::{Batch, Message};
use isthmus_schema::{MessageRecord, MessageStatus, RetryPolicy};
use tracing::error;

use super::attest::Attested;
use super::{Context, PipelineError};

/// An attested batch whose every message the destination can take.
pub struct Fitted {
    origin: u32,
    destination: u32,
    live: Vec<MessageRecord>,
    digest: [u8; 32],
    batch: Batch,
}

impl Fitted {
    /// The batch to submit.
    pub fn batch(&self) -> &Batch {
        &self.batch
    }

    pub(super) fn into_parts(self) -> (u32, u32, Vec<MessageRecord>, [u8; 32], Batch) {
        (
            self.origin,
            self.destination,
            self.live,
            self.digest,
            self.batch,
        )
    }
}

/// Builds `attested`'s batch and sets aside the messages the destination could never
/// take. Returns how many were dead-lettered, and the rest (None if nothing is left).
pub async fn fit(
    ctx: &Context,
    attested: Attested,
) -> Result<(usize, Option<Fitted>), PipelineError> {
    let (origin, destination, mut live, checkpoint, tree, quorum) = attested.into_parts();
    let mut messages = Vec::with_capacity(live.len());
    for m in &live {
        let corrupt = |reason: String| PipelineError::CorruptRecord { id: m.id, reason };
        let message =
            Message::decode(&m.canonical).map_err(|e| corrupt(format!("does not decode: {e}")))?;
        let branch = tree
            .branch(message.nonce)
            .map_err(|e| corrupt(format!("no branch under the checkpoint: {e}")))?;
        messages.push((message, branch));
    }
    let mut batch = Batch {
        checkpoint,
        attestations: quorum,
        messages,
    };
    let cap = ctx
        .routes
        .iter()
        .find(|r| r.source == origin && r.destination == destination)
        .and_then(|r| r.max_message_gas);
    let unfit = ctx
        .ledger(destination)?
        .destination
        .unfit(&batch, cap)
        .await?;
    // One attempt is all it takes: no submission could deliver it until an operator
    // changes something (the cap, the recipient) and retries it.
    let once = RetryPolicy {
        max_attempts: 1,
        ..ctx.retry
    };
    for (id, why) in &unfit {
        let reason = format!("not submitted: {why}");
        ctx.store
            .set_failure(*id, MessageStatus::Attested, &reason, &once, &ctx.worker)
            .await?;
        error!(msg_id = %id, %why, "dead-lettered before any submission: the destination cannot take it; an operator must act (`isthmus status`, then `isthmus retry`)");
    }
    let rejected = unfit.len();
    if rejected > 0 {
        live.retain(|m| unfit.iter().all(|(id, _)| *id != m.id));
        batch
            .messages
            .retain(|(m, _)| unfit.iter().all(|(id, _)| *id != m.id()));
    }
    if live.is_empty() {
        return Ok((rejected, None));
    }
    Ok((
        rejected,
        Some(Fitted {
            origin,
            destination,
            live,
            digest: ctx.attester.digest(&checkpoint),
            batch,
        }),
    ))
}
