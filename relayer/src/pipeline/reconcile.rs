//! The chain is the truth: a message this member dead-lettered (its recipient
//! refused every attempt here) may be delivered on the destination afterwards, by
//! another member's submission. Before such a dead letter pages an operator, and
//! periodically after, the destination is asked; a delivery it shows moves the
//! message to `delivered` with the destination's evidence (transaction and block),
//! a legal transition with its log row.

use isthmus_schema::{MessageFilter, MessageStatus, Route};
use tracing::info;

use super::{record, Context, PipelineError, LEASE};
use crate::ledger::Sent;

/// Dead letters of one route looked at per pass.
const PER_PASS: u32 = 1_000;

/// Looks up this member's dead letters towards `destination` on the destination and
/// records the deliveries it shows. Returns how many were corrected.
pub async fn dead_letters(ctx: &Context, destination: u32) -> Result<usize, PipelineError> {
    let target = ctx.ledger(destination)?;
    let mut corrected = 0;
    for route in ctx.routes.iter().filter(|r| r.destination == destination) {
        let dead = ctx
            .store
            .list_messages(&MessageFilter {
                route: Some(Route {
                    source: route.source,
                    destination,
                }),
                statuses: vec![MessageStatus::DeadLetter],
                limit: Some(PER_PASS),
                ..MessageFilter::default()
            })
            .await?;
        if dead.is_empty() {
            continue;
        }
        let sent: Vec<Sent> = dead.iter().map(Sent::from).collect();
        let delivered = target.destination.delivered_among(&sent).await?;
        if delivered.is_empty() {
            continue;
        }
        let ids: Vec<_> = dead
            .iter()
            .filter(|m| delivered.contains(&m.id))
            .map(|m| m.id)
            .collect();
        let claimed = ctx
            .store
            .claim_ids(&ids, &[MessageStatus::DeadLetter], &ctx.worker, LEASE)
            .await?;
        ctx.leases.take(claimed.iter().map(|m| m.id));
        let recorded = record::foreign_deliveries(ctx, destination, &claimed).await;
        ctx.release(&claimed.iter().map(|m| m.id).collect::<Vec<_>>())
            .await;
        let recorded = recorded?;
        if recorded > 0 {
            info!(
                messages = recorded,
                "dead-lettered here, delivered on the destination by another submission; \
                 history corrected from the destination's evidence"
            );
        }
        corrected += recorded;
    }
    Ok(corrected)
}
