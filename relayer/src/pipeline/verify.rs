//! Step 3, verify: prove the source's outbox commitment at the observer's cursor
//! through the source's light client, check that the recorded messages produce the
//! proven root, and record the checkpoint with its evidence.

use isthmus_protocol::MerkleTree;
use isthmus_schema::{
    BlockRef, CursorKey, MessageId, MessageRecord, MessageStatus, NewCheckpoint, Stage,
};

use super::evidence::{self, Verified as Evidence};
use super::triage::Triaged;
use super::{hex32, Context, PipelineError};
use crate::verified::VerifiedCheckpoint;

/// Live messages under a checkpoint the light client proved, with the outbox's tree.
pub struct Verified {
    origin: u32,
    destination: u32,
    live: Vec<MessageRecord>,
    checkpoint: VerifiedCheckpoint,
    tree: MerkleTree,
}

impl Verified {
    /// The destination ledger.
    pub fn destination(&self) -> u32 {
        self.destination
    }

    /// The proven checkpoint.
    pub fn checkpoint(&self) -> &VerifiedCheckpoint {
        &self.checkpoint
    }

    /// The messages to submit.
    pub fn live(&self) -> &[MessageRecord] {
        &self.live
    }

    pub(super) fn into_parts(
        self,
    ) -> (u32, u32, Vec<MessageRecord>, VerifiedCheckpoint, MerkleTree) {
        (
            self.origin,
            self.destination,
            self.live,
            self.checkpoint,
            self.tree,
        )
    }
}

/// Verifies the checkpoint at the observer's cursor, which covers every claimed
/// message, and moves the observed ones to `verified`.
pub async fn verify(ctx: &Context, triaged: Triaged) -> Result<Verified, PipelineError> {
    let (origin, destination) = (triaged.origin(), triaged.destination());
    let source = ctx.ledger(origin)?;
    let cursor = ctx
        .store
        .load_cursor(CursorKey {
            ledger: origin,
            destination: None,
            stage: Stage::Observe,
        })
        .await?
        .ok_or_else(|| PipelineError::NotObserved {
            ledger: source.name.clone(),
        })?;
    let verified = source.source.verify_checkpoint(cursor.block).await?;
    let checkpoint = *verified.checkpoint();
    // Below the outbox's first nonce the tree holds zero leaves (an Outbox that
    // replaced another; the history may hold the old one's messages there).
    let first = source.source.first_nonce().await?;
    let leaves = ctx
        .store
        .outbox_leaves(origin, first, u64::from(checkpoint.count))
        .await?;
    let incomplete = || PipelineError::IncompleteHistory {
        ledger: source.name.clone(),
        block: checkpoint.block_number,
    };
    let tree = MerkleTree::from_leaves_at(first, leaves).map_err(|_| incomplete())?;
    if tree.root() != checkpoint.root {
        return Err(incomplete());
    }
    let digest = ctx.attester.digest(&checkpoint);
    let evidence = evidence::json(&Evidence {
        checkpoint_digest: hex32(&digest),
        source_block: checkpoint.block_number,
        source_block_hash: hex32(&checkpoint.block_hash),
        root: hex32(&checkpoint.root),
        count: checkpoint.count,
        finality: verified.finality(),
    });
    ctx.store
        .record_checkpoint(
            &NewCheckpoint {
                digest,
                origin,
                outbox: checkpoint.outbox.0,
                root: checkpoint.root,
                count: checkpoint.count,
                block: BlockRef {
                    number: checkpoint.block_number,
                    hash: checkpoint.block_hash,
                },
            },
            &evidence,
            &ctx.worker,
        )
        .await?;
    let live = triaged.into_live();
    let observed: Vec<MessageId> = live
        .iter()
        .filter(|m| m.status == MessageStatus::Observed)
        .map(|m| m.id)
        .collect();
    ctx.store
        .transition_many(
            &observed,
            MessageStatus::Observed,
            MessageStatus::Verified,
            &evidence,
            &ctx.worker,
        )
        .await?;
    Ok(Verified {
        origin,
        destination,
        live,
        checkpoint: verified,
        tree,
    })
}
