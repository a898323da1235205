//! Step 7, record: what the destination did with each message of a batch goes into
//! the history (one transaction for the batch's deliveries), and deliveries made by
//! other submissions are recorded from the destination's evidence.

use std::collections::HashMap;

use chrono::Utc;
use isthmus_schema::{FailureOutcome, MessageRecord, MessageStatus, NewDelivery};
use tracing::{debug, error, info, warn};

use super::evidence::{
    self, DeliveredElsewhere, EndedElsewhere, ExpiredInTransaction, HeldInTransaction,
    RefusedInTransaction,
};
use super::submit::Submitted;
use super::{hex32, Context, PipelineError, HOLD_RECHECK};
use crate::ledger::{DeliveryRef, Sent};
use isthmus_protocol::MessageOutcome;

/// Records a sent batch's outcome. Returns how many messages reached a final state.
pub async fn record(ctx: &Context, submitted: Submitted) -> Result<usize, PipelineError> {
    let (origin, destination, live, digest, result) = submitted.into_parts();
    let target = ctx.ledger(destination)?;
    let delivered = match result {
        Ok(d) => d,
        Err(e) => {
            ctx.metrics
                .rpc_errors
                .with_label_values(&[&target.name])
                .inc();
            warn!(error = %e, retryable = e.is_retryable(), "delivery failed");
            let mut dead = Vec::new();
            for m in &live {
                let failure = ctx
                    .store
                    .set_failure(
                        m.id,
                        MessageStatus::Submitted,
                        &e.to_string(),
                        &ctx.retry,
                        &ctx.worker,
                    )
                    .await?;
                if let FailureOutcome::DeadLettered { attempts } = failure {
                    dead.push((m.clone(), attempts));
                }
            }
            return dead_lettered(ctx, destination, dead).await;
        }
    };
    let route = format!("{}->{}", ctx.name(origin), target.name);
    let mut done = 0;
    let mut deliveries = Vec::new();
    let mut latencies = Vec::new();
    let mut foreign = Vec::new();
    let mut dead = Vec::new();
    let size = delivered.outcomes.len() as u32;
    for (index, (id, outcome)) in delivered.outcomes.iter().enumerate() {
        let Some(record) = live.iter().find(|m| m.id == *id) else {
            continue;
        };
        match outcome {
            MessageOutcome::Delivered => {
                deliveries.push(NewDelivery {
                    message_id: record.id,
                    destination,
                    tx_hash: delivered.at.tx_hash,
                    block_number: delivered.at.block.number,
                    block_hash: Some(delivered.at.block.hash),
                    gas_used: delivered.gas_used,
                    checkpoint_digest: Some(digest),
                    batch_index: index as u32,
                    batch_size: size,
                });
                latencies.push(
                    (Utc::now() - record.observed_at).num_milliseconds().max(0) as f64 / 1000.0,
                );
            }
            MessageOutcome::AlreadyDelivered => {
                ctx.store
                    .transition(
                        record.id,
                        MessageStatus::Submitted,
                        MessageStatus::Attested,
                        &evidence::json(&DeliveredElsewhere {
                            note: "delivered by another submission",
                        }),
                        &ctx.worker,
                    )
                    .await?;
                foreign.push(MessageRecord {
                    status: MessageStatus::Attested,
                    ..record.clone()
                });
            }
            MessageOutcome::HandlerFailed(reason) => {
                let failure = ctx
                    .store
                    .set_failure(
                        record.id,
                        MessageStatus::Submitted,
                        &format!("recipient refused: {reason}"),
                        &ctx.retry,
                        &ctx.worker,
                    )
                    .await?;
                match failure {
                    FailureOutcome::Failed {
                        attempts,
                        next_attempt_at,
                    } => {
                        warn!(msg_id = %record.id, %reason, attempts, %next_attempt_at, "recipient refused the message; it stays deliverable and is retried")
                    }
                    FailureOutcome::DeadLettered { attempts } => {
                        dead.push((record.clone(), attempts));
                    }
                }
            }
            MessageOutcome::Refused(code) => {
                ctx.store
                    .transition(
                        record.id,
                        MessageStatus::Submitted,
                        MessageStatus::Refused,
                        &evidence::json(&RefusedInTransaction {
                            tx: hex32(&delivered.at.tx_hash),
                            code,
                        }),
                        &ctx.worker,
                    )
                    .await?;
                warn!(msg_id = %record.id, %code, "the recipient refused the message for good; it ended refused");
                done += 1;
            }
            MessageOutcome::Held(reason) => {
                let due = ctx
                    .store
                    .set_held(
                        record.id,
                        MessageStatus::Submitted,
                        &evidence::json(&HeldInTransaction {
                            tx: hex32(&delivered.at.tx_hash),
                            reason,
                        }),
                        HOLD_RECHECK,
                        &ctx.worker,
                    )
                    .await?;
                ctx.metrics.holds.with_label_values(&[&route]).inc();
                warn!(msg_id = %record.id, %reason, %due, "the destination app held the message: it is executed once a quorum of the origin's signers releases it (`isthmus holds`, `isthmus approve`)");
            }
            MessageOutcome::Expired => {
                ctx.store
                    .transition(
                        record.id,
                        MessageStatus::Submitted,
                        MessageStatus::Expired,
                        &evidence::json(&ExpiredInTransaction {
                            tx: hex32(&delivered.at.tx_hash),
                        }),
                        &ctx.worker,
                    )
                    .await?;
                done += 1;
            }
        }
    }
    // One transaction for the batch's deliveries: all are recorded or none.
    ctx.store
        .record_deliveries(&deliveries, MessageStatus::Submitted, &ctx.worker)
        .await?;
    for (d, latency) in deliveries.iter().zip(latencies) {
        ctx.metrics
            .latency
            .with_label_values(&[&route])
            .observe(latency);
        info!(msg_id = %d.message_id, tx = %hex32(&delivered.at.tx_hash), block = delivered.at.block.number, "delivered");
    }
    done += deliveries.len();
    done += foreign_deliveries(ctx, destination, &foreign).await?;
    done += dead_lettered(ctx, destination, dead).await?;
    Ok(done)
}

/// Messages this round dead-lettered: before they page an operator, the destination
/// is asked whether another submission delivered them; those it shows delivered
/// are recorded so (`dead_letter -> delivered`), the rest are reported as needing
/// an operator. Returns how many were found delivered.
async fn dead_lettered(
    ctx: &Context,
    destination: u32,
    dead: Vec<(MessageRecord, u32)>,
) -> Result<usize, PipelineError> {
    if dead.is_empty() {
        return Ok(0);
    }
    let sent: Vec<Sent> = dead.iter().map(|(m, _)| Sent::from(m)).collect();
    // A destination that cannot answer now (often why the delivery failed) shows
    // nothing: the dead letters are reported, and the periodic check
    // (`reconcile::dead_letters`) asks again.
    let shown = match ctx
        .ledger(destination)?
        .destination
        .delivered_among(&sent)
        .await
    {
        Ok(shown) => shown,
        Err(e) => {
            warn!(error = %e, messages = sent.len(), "could not ask the destination about new dead letters; the periodic check will");
            Default::default()
        }
    };
    let (elsewhere, dead): (Vec<_>, Vec<_>) =
        dead.into_iter().partition(|(m, _)| shown.contains(&m.id));
    for (m, attempts) in &dead {
        error!(msg_id = %m.id, attempts, "dead-lettered: every attempt failed; an operator must act (`isthmus status`, then `isthmus retry`)");
    }
    let elsewhere: Vec<MessageRecord> = elsewhere
        .into_iter()
        .map(|(m, _)| MessageRecord {
            status: MessageStatus::DeadLetter,
            ..m
        })
        .collect();
    foreign_deliveries(ctx, destination, &elsewhere).await
}

/// Records how other submissions (another member, an earlier run of this one, or
/// anyone) ended `messages`, each found where the inbox records it: delivered, or
/// (on an inbox that ends messages otherwise too) refused or expired. Returns how
/// many.
pub async fn foreign_deliveries(
    ctx: &Context,
    destination: u32,
    messages: &[MessageRecord],
) -> Result<usize, PipelineError> {
    if messages.is_empty() {
        return Ok(0);
    }
    let target = ctx.ledger(destination)?;
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();
    let mut endings = target.destination.find_ends(&ids).await?;
    let found: HashMap<_, _> = endings
        .iter()
        .filter(|(_, (_, outcome))| *outcome == MessageOutcome::Delivered)
        .map(|(id, (at, _))| (*id, *at))
        .collect();
    endings.retain(|id, _| !found.contains_key(id));
    let (delivered, other): (Vec<_>, Vec<_>) = messages
        .iter()
        .cloned()
        .partition(|m| found.contains_key(&m.id));
    if let Some(missing) = other.iter().find(|m| !endings.contains_key(&m.id)) {
        return Err(PipelineError::DeliveryNotFound {
            ledger: ctx.name(destination),
            id: missing.id,
        });
    }
    for m in &other {
        let (at, outcome) = &endings[&m.id];
        let (to, code) = match outcome {
            MessageOutcome::Refused(code) => (MessageStatus::Refused, Some(code.as_str())),
            _ => (MessageStatus::Expired, None),
        };
        ctx.store
            .transition(
                m.id,
                m.status,
                to,
                &evidence::json(&EndedElsewhere {
                    tx: hex32(&at.tx_hash),
                    block: at.block.number,
                    code,
                }),
                &ctx.worker,
            )
            .await?;
        info!(msg_id = %m.id, status = %to, "ended by another submission; recorded");
    }
    let done = other.len();
    Ok(done + found_deliveries(ctx, destination, &delivered, &found).await?)
}

/// Records the deliveries of `messages` (claimed by this worker) that another
/// submission made, as `found` gives them (every message must be in it).
pub async fn found_deliveries(
    ctx: &Context,
    destination: u32,
    messages: &[MessageRecord],
    found: &HashMap<isthmus_protocol::MessageId, DeliveryRef>,
) -> Result<usize, PipelineError> {
    if let Some(missing) = messages.iter().find(|m| !found.contains_key(&m.id)) {
        return Err(PipelineError::DeliveryNotFound {
            ledger: ctx.name(destination),
            id: missing.id,
        });
    }
    let mut by_status: HashMap<MessageStatus, Vec<NewDelivery>> = HashMap::new();
    // A message this relayer had not verified or attested goes straight to
    // delivered: its history shows only what this relayer did.
    for m in messages {
        let at = found[&m.id];
        by_status.entry(m.status).or_default().push(NewDelivery {
            message_id: m.id,
            destination,
            tx_hash: at.tx_hash,
            block_number: at.block.number,
            block_hash: Some(at.block.hash),
            gas_used: None,
            checkpoint_digest: None,
            batch_index: 0,
            batch_size: 1,
        });
    }
    for (from, deliveries) in by_status {
        ctx.store
            .record_deliveries(&deliveries, from, &ctx.worker)
            .await?;
        debug!(
            messages = deliveries.len(),
            "delivered by another submission; recorded"
        );
    }
    Ok(messages.len())
}
