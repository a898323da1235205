//! Step 6, submit: the batch is recorded as submitted before its transaction leaves
//! (so a crash after sending is resolved by the destination's replay check next
//! round), then sent, and its finality awaited.

use isthmus_schema::{MessageId, MessageRecord, MessageStatus};

use super::evidence::{self, Submitted as Evidence};
use super::fit::Fitted;
use super::{hex32, Context, PipelineError, FINALITY_TIMEOUT};
use crate::ledger::{Delivered, LedgerError};

/// A batch that was sent: the destination's final answer, or why there is none.
pub struct Submitted {
    origin: u32,
    destination: u32,
    live: Vec<MessageRecord>,
    digest: [u8; 32],
    result: Result<Delivered, LedgerError>,
}

impl Submitted {
    /// The destination's answer.
    pub fn result(&self) -> &Result<Delivered, LedgerError> {
        &self.result
    }

    pub(super) fn into_parts(
        self,
    ) -> (
        u32,
        u32,
        Vec<MessageRecord>,
        [u8; 32],
        Result<Delivered, LedgerError>,
    ) {
        (
            self.origin,
            self.destination,
            self.live,
            self.digest,
            self.result,
        )
    }
}

/// Sends `fitted`'s messages with their branches and the quorum's attestations.
pub async fn submit(ctx: &Context, fitted: Fitted) -> Result<Submitted, PipelineError> {
    let (origin, destination, live, digest, batch) = fitted.into_parts();
    let ids: Vec<MessageId> = live.iter().map(|m| m.id).collect();
    ctx.store
        .transition_many(
            &ids,
            MessageStatus::Attested,
            MessageStatus::Submitted,
            &evidence::json(&Evidence {
                checkpoint_digest: hex32(&digest),
                batch_size: ids.len(),
            }),
            &ctx.worker,
        )
        .await?;
    let target = ctx.ledger(destination)?;
    let result = target.destination.deliver(&batch, FINALITY_TIMEOUT).await;
    if result.is_err() {
        // A refusal may come from a signer set that changed since it was read, or
        // from a pause.
        ctx.signer_sets.forget(destination, origin);
        ctx.paused.forget(destination, origin);
    }
    Ok(Submitted {
        origin,
        destination,
        live,
        digest,
        result,
    })
}
