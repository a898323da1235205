//! Step 1, claim: lease a batch of due messages towards a destination, so that
//! replicas and lanes never work on the same message (`FOR UPDATE SKIP LOCKED`).

use std::collections::BTreeMap;
use std::time::Instant;

use isthmus_schema::{Claim, MessageId, MessageRecord, MessageStatus};

use super::{Context, PipelineError, LEASE};

/// Messages of one origin leased to this worker for one round.
#[derive(Debug)]
pub struct Claimed {
    origin: u32,
    destination: u32,
    messages: Vec<MessageRecord>,
}

impl Claimed {
    /// The source ledger.
    pub fn origin(&self) -> u32 {
        self.origin
    }

    /// The destination ledger.
    pub fn destination(&self) -> u32 {
        self.destination
    }

    /// The leased messages' ids.
    pub fn ids(&self) -> Vec<MessageId> {
        self.messages.iter().map(|m| m.id).collect()
    }

    /// The leased messages, for the next step.
    pub(super) fn into_messages(self) -> Vec<MessageRecord> {
        self.messages
    }
}

/// Leases up to a batch of due messages towards `destination` from the origins of its
/// enabled routes that are not paused, this member's own turns first, and groups
/// them by origin.
pub async fn claim(ctx: &Context, destination: u32) -> Result<Vec<Claimed>, PipelineError> {
    let mut routes = Vec::new();
    for route in ctx.routes.iter().filter(|r| r.destination == destination) {
        // A paused route's messages stay where they are until a quorum resumes it.
        if !ctx.paused.paused(ctx, destination, route.source).await {
            routes.push(route);
        }
    }
    let origins: Vec<u32> = routes.iter().map(|r| r.source).collect();
    if origins.is_empty() {
        return Ok(Vec::new());
    }
    let requested = routes.iter().map(|r| r.batch_size).max().unwrap_or(16);
    // Sized so that whole delivery transactions fill the destination's blocks.
    let limit = ctx.ledger(destination)?.destination.batch_for(requested);
    let started = Instant::now();
    let claimed = ctx
        .store
        .claim(&Claim {
            destination,
            origins: &origins,
            statuses: MessageStatus::PENDING,
            limit,
            worker: &ctx.worker,
            lease: LEASE,
            turn: ctx.consortium.turns_of(ctx.attester.address()),
        })
        .await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    ctx.leases.take(claimed.iter().map(|m| m.id));
    ctx.phase(destination, "claim", started);
    let mut by_origin: BTreeMap<u32, Vec<MessageRecord>> = BTreeMap::new();
    for m in claimed {
        by_origin.entry(m.origin).or_default().push(m);
    }
    Ok(by_origin
        .into_iter()
        .map(|(origin, messages)| Claimed {
            origin,
            destination,
            messages,
        })
        .collect())
}
