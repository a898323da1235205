//! Step 4, attest: this member signs the verified checkpoint, the other members are
//! asked for theirs, every answer is recorded with its verdict, and the batch goes on
//! only with a quorum of a signer set the destination accepts.

use std::collections::HashMap;
use std::time::Instant;

use isthmus_protocol::{ActiveSigners, Attestation, Checkpoint, MerkleTree};
use isthmus_schema::{MessageId, MessageRecord, MessageStatus, NewAttestation};
use tracing::warn;

use super::evidence::{self, Attested as Evidence};
use super::verify::Verified;
use super::{hex32, signer_sets, Context, PipelineError};
use crate::attest::PeerVerdict;

/// Unsigned refusals remembered as recorded; past that the set starts over (a
/// refusal is then recorded once more).
const REFUSALS_KEPT: usize = 100_000;

/// Live messages under a checkpoint a quorum of the consortium signed.
pub struct Attested {
    origin: u32,
    destination: u32,
    live: Vec<MessageRecord>,
    checkpoint: Checkpoint,
    tree: MerkleTree,
    /// A quorum's attestations, in the signer set's order.
    quorum: Vec<Attestation>,
}

impl Attested {
    /// The attested checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The quorum's attestations.
    pub fn quorum(&self) -> &[Attestation] {
        &self.quorum
    }

    pub(super) fn into_parts(
        self,
    ) -> (
        u32,
        u32,
        Vec<MessageRecord>,
        Checkpoint,
        MerkleTree,
        Vec<Attestation>,
    ) {
        (
            self.origin,
            self.destination,
            self.live,
            self.checkpoint,
            self.tree,
            self.quorum,
        )
    }
}

/// Collects attestations of `verified`'s checkpoint. None when the quorum is not met
/// (the messages' leases are given back; the next round asks again).
///
/// A signature counts only if the destination's signer sets for the origin hold its
/// signer ([`super::signer_sets`]); one that does not (a retired key, a member that
/// has not switched to its new key) is recorded as refused with the set's version.
pub async fn attest(ctx: &Context, verified: Verified) -> Result<Option<Attested>, PipelineError> {
    let checkpoint = *verified.checkpoint().checkpoint();
    let digest = ctx.attester.digest(&checkpoint);
    let destination = verified.destination();
    let sets = match ctx
        .signer_sets
        .get(
            ctx.ledger(destination)?.destination.as_ref(),
            destination,
            checkpoint.origin,
        )
        .await
    {
        Ok(sets) => sets,
        Err(e) if e.is_retryable() => return Err(e.into()),
        // The destination has no signer set for the origin (not set up, or
        // retired): nothing can be delivered on this route until it has one; the
        // messages wait and the other origins' batches go on.
        Err(e) => {
            let kind = format!("no signer set: {}->{destination}", checkpoint.origin);
            if let Some(held_back) = ctx.quiet.check(&kind, Instant::now()) {
                warn!(error = %e, held_back, "the destination accepts no signer set for this origin; its messages wait");
            }
            ctx.release(&verified.live().iter().map(|m| m.id).collect::<Vec<_>>())
                .await;
            return Ok(None);
        }
    };
    ctx.metrics
        .signer_set_version
        .with_label_values(&[&ctx.name(destination), &ctx.name(checkpoint.origin)])
        .set(i64::try_from(sets.version).unwrap_or(i64::MAX));
    let now = signer_sets::unix_now();
    let held = Held {
        ctx,
        sets: &sets,
        now,
        destination,
        origin: checkpoint.origin,
    };
    let mut names = HashMap::from([(ctx.attester.address(), ctx.attester.member().to_owned())]);
    let mut accepted: Vec<Attestation> = own_signature(ctx, &verified, &held, digest)
        .await?
        .into_iter()
        .collect();
    for mut verdict in ctx.peers.attest(&checkpoint).await {
        if verdict.attestation.is_some() && verdict.verdict.is_ok() {
            verdict.verdict = held.check(&verdict.signer);
        }
        if verdict.verdict.is_ok() {
            names.insert(verdict.signer, verdict.member.clone());
            accepted.extend(verdict.attestation);
        }
        record_peer(ctx, digest, verdict).await?;
    }
    let (origin, destination, live, _, tree) = verified.into_parts();
    // The destination counts one set at a time: the current one, or the replaced one
    // while its overlap lasts past the submission.
    let quorum = match sets.quorum(
        &digest,
        &accepted,
        now + signer_sets::LANDING_MARGIN_S,
        crate::verified::recover_signer,
    ) {
        Ok((_, q)) => q,
        Err(e) => {
            let kind = format!("no quorum: {origin}->{destination}");
            if let Some(held_back) = ctx.quiet.check(&kind, Instant::now()) {
                warn!(
                    have = e.have,
                    need = e.need,
                    version = sets.version,
                    held_back,
                    "not enough attestations yet; will ask again"
                );
            }
            ctx.release(&live.iter().map(|m| m.id).collect::<Vec<_>>())
                .await;
            return Ok(None);
        }
    };
    let signers: Vec<String> = quorum
        .signers
        .iter()
        .map(|s| names.get(s).cloned().unwrap_or_else(|| hex::encode(s)))
        .collect();
    let evidence = evidence::json(&Evidence {
        checkpoint_digest: hex32(&digest),
        signers,
    });
    for from in [
        MessageStatus::Observed,
        MessageStatus::Verified,
        MessageStatus::Failed,
        MessageStatus::Submitted,
        MessageStatus::Held,
    ] {
        let ids: Vec<MessageId> = live
            .iter()
            .filter(|m| m.status == from)
            .map(|m| m.id)
            .collect();
        // Observed messages were moved to verified by the previous step.
        let from = if from == MessageStatus::Observed {
            MessageStatus::Verified
        } else {
            from
        };
        ctx.store
            .transition_many(&ids, from, MessageStatus::Attested, &evidence, &ctx.worker)
            .await?;
    }
    let quorum = quorum
        .signers
        .iter()
        .filter_map(|s| {
            accepted
                .iter()
                .find(|a| crate::verified::recover_signer(a, &digest).ok() == Some(*s))
                .copied()
        })
        .collect();
    Ok(Some(Attested {
        origin,
        destination,
        live,
        checkpoint,
        tree,
        quorum,
    }))
}

/// This member's signature of `verified`'s checkpoint, recorded with its verdict;
/// None when the destination's signer sets do not hold this member's key (the
/// refusal is recorded and warned about).
async fn own_signature(
    ctx: &Context,
    verified: &Verified,
    held: &Held<'_>,
    digest: [u8; 32],
) -> Result<Option<Attestation>, PipelineError> {
    let own = ctx
        .attester
        .sign(verified.checkpoint())
        .await
        .map_err(Box::new)?;
    let verdict = held.check(&ctx.attester.address());
    if let Err(reason) = &verdict {
        let kind = format!("own key not in set: {}", held.destination);
        if let Some(held_back) = ctx.quiet.check(&kind, Instant::now()) {
            warn!(%reason, held_back, "this member's attestation key does not count on the destination: switch to the key the consortium's update installed (docs/operations.md, \"Rotating a signer\")");
        }
    }
    let counts = verdict.is_ok();
    record(
        ctx,
        digest,
        ctx.attester.address(),
        ctx.attester.member(),
        own,
        verdict,
    )
    .await?;
    Ok(counts.then_some(own))
}

/// Whether the destination's signer sets for the origin hold a signer, at `now`.
struct Held<'a> {
    ctx: &'a Context,
    sets: &'a ActiveSigners,
    now: u64,
    destination: u32,
    origin: u32,
}

impl Held<'_> {
    /// Ok, or the refusal to record: the signer and the set's version.
    fn check(&self, signer: &[u8; 20]) -> Result<(), String> {
        if self.sets.accepts(signer, self.now) {
            return Ok(());
        }
        Err(format!(
            "signer 0x{} is not in the signer set {} accepts for {} (version {})",
            hex::encode(signer),
            self.ctx.name(self.destination),
            self.ctx.name(self.origin),
            self.sets.version
        ))
    }
}

/// Records a peer's answer with its verdict; a refusal also counts in the metrics
/// and the log. A refusal without a signature (unreachable, an error answer, an
/// unreadable one) is recorded once per checkpoint and member, not once per round
/// that asks again.
async fn record_peer(
    ctx: &Context,
    digest: [u8; 32],
    verdict: PeerVerdict,
) -> Result<(), PipelineError> {
    if let Err(reason) = &verdict.verdict {
        ctx.metrics
            .refused_attestations
            .with_label_values(&[&verdict.member])
            .inc();
        let kind = format!("attestation refused: {}", verdict.member);
        if let Some(held_back) = ctx.quiet.check(&kind, Instant::now()) {
            warn!(member = %verdict.member, %reason, held_back, "attestation refused");
        }
    }
    match (verdict.attestation, &verdict.verdict) {
        (Some(attestation), _) => {
            record(
                ctx,
                digest,
                verdict.signer,
                &verdict.member,
                attestation,
                verdict.verdict.clone(),
            )
            .await
        }
        (None, Err(reason)) => {
            let first = ctx
                .refusals
                .lock()
                .map(|mut seen| {
                    if seen.len() >= REFUSALS_KEPT {
                        seen.clear();
                    }
                    seen.insert((digest, verdict.member.clone()))
                })
                .unwrap_or(true);
            if first {
                ctx.store
                    .record_unsigned_refusal(
                        digest,
                        verdict.signer,
                        &verdict.member,
                        reason,
                        &ctx.worker,
                    )
                    .await?;
            }
            Ok(())
        }
        (None, Ok(())) => Ok(()),
    }
}

async fn record(
    ctx: &Context,
    digest: [u8; 32],
    signer: [u8; 20],
    member: &str,
    attestation: Attestation,
    verdict: Result<(), String>,
) -> Result<(), PipelineError> {
    ctx.store
        .record_attestation(
            &NewAttestation {
                checkpoint_digest: digest,
                signer,
                member: Some(member.to_owned()),
                signature: attestation.0,
                verdict,
            },
            &ctx.worker,
        )
        .await?;
    Ok(())
}
