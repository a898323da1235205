//! Step 2, triage: settle what needs no submission, and hold back what is another
//! member's turn. In order:
//! - **reject** a message the destination can never accept (decided before any
//!   submission);
//! - **expire** a message whose deadline passed before it was sent;
//! - **record** a delivery another submission already made (the destination says
//!   so);
//! - **hold** another member's turn until its takeover, unless that member looks
//!   stopped.
//!
//! What is left is live: this member submits it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use isthmus_schema::{MessageId, MessageRecord, MessageStatus};
use tracing::{info, warn};

use super::claim::Claimed;
use super::evidence::{self, ExpiredUnsent, Rejected};
use super::observe::hold_for;
use super::{record, Context, PipelineError, HOLD_STEP};
use crate::ledger::Sent;

/// The messages of one origin this member submits in this round.
#[derive(Debug)]
pub struct Triaged {
    origin: u32,
    destination: u32,
    live: Vec<MessageRecord>,
}

impl Triaged {
    /// The source ledger.
    pub fn origin(&self) -> u32 {
        self.origin
    }

    /// The destination ledger.
    pub fn destination(&self) -> u32 {
        self.destination
    }

    /// The messages to submit.
    pub fn live(&self) -> &[MessageRecord] {
        &self.live
    }

    pub(super) fn into_live(self) -> Vec<MessageRecord> {
        self.live
    }
}

/// Triage of `claimed`: how many messages reached a final state, and the live ones
/// (None when nothing is left to submit; held messages' leases are given back).
pub async fn triage(
    ctx: &Context,
    claimed: Claimed,
) -> Result<(usize, Option<Triaged>), PipelineError> {
    let (origin, destination) = (claimed.origin(), claimed.destination());
    let target = ctx.ledger(destination)?;
    let now = Utc::now().timestamp().max(0) as u64;
    let mut done = 0;
    let mut open = Vec::new();
    let mut expiring = Vec::new();
    for m in claimed.into_messages() {
        if m.status == MessageStatus::Observed {
            if let Some(reason) = target.destination.refuses_recipient(&m.recipient) {
                ctx.store
                    .transition(
                        m.id,
                        MessageStatus::Observed,
                        MessageStatus::Rejected,
                        &evidence::json(&Rejected { reason: &reason }),
                        &ctx.worker,
                    )
                    .await?;
                warn!(msg_id = %m.id, %reason, "rejected: the destination cannot take this message; never submitted");
                done += 1;
                continue;
            }
        }
        // A destination that ends expired messages gets them submitted: the expiry is
        // then proven there (and its receipt sent), not only recorded here.
        let expired = m.deadline != 0 && now > m.deadline;
        if expired && m.status != MessageStatus::Submitted && !target.destination.ends_expired() {
            expiring.push(m);
        } else {
            open.push(m);
        }
    }
    // Past its deadline by this member's clock: expired, unless the destination shows
    // it delivered (another member's submission before the deadline).
    if !expiring.is_empty() {
        let sent: Vec<Sent> = expiring.iter().map(Sent::from).collect();
        let delivered = target.destination.delivered_among(&sent).await?;
        let (elsewhere, expired): (Vec<_>, Vec<_>) = expiring
            .into_iter()
            .partition(|m| delivered.contains(&m.id));
        done += record::foreign_deliveries(ctx, destination, &elsewhere).await?;
        for m in expired {
            ctx.store
                .transition(
                    m.id,
                    m.status,
                    MessageStatus::Expired,
                    &evidence::json(&ExpiredUnsent {
                        deadline: m.deadline,
                        now,
                    }),
                    &ctx.worker,
                )
                .await?;
            info!(msg_id = %m.id, deadline = m.deadline, "expired before delivery; never submitted");
            done += 1;
        }
    }

    // Skip what the destination already processed (another member's submission, or
    // this member's before a restart): record that delivery instead. A message of
    // this member's turn that was never attempted can only have been delivered by a
    // member taking it over, which the delivery watcher records; the inbox would skip
    // it anyway.
    let me = ctx.attester.address();
    let mine = |m: &MessageRecord| {
        m.status == MessageStatus::Observed
            && m.attempts == 0
            && ctx.consortium.turn_of(m.nonce) == Some(me)
    };
    let ask: Vec<Sent> = open.iter().filter(|m| !mine(m)).map(Sent::from).collect();
    let delivered = target.destination.delivered_among(&ask).await?;
    let (already, open): (Vec<_>, Vec<_>) =
        open.into_iter().partition(|m| delivered.contains(&m.id));
    done += record::foreign_deliveries(ctx, destination, &already).await?;

    let takeover = chrono::Duration::from_std(ctx.takeover).unwrap_or(chrono::Duration::MAX);
    let instant = Instant::now();
    let mut live = Vec::new();
    let mut young = Vec::new();
    let mut busy = Vec::new();
    for m in open {
        let turn = ctx.consortium.turn_of(m.nonce);
        if m.status != MessageStatus::Observed || turn == Some(me) {
            live.push(m);
        } else if Utc::now() - m.observed_at < takeover {
            // Another member's turn, not delivered yet: look again shortly.
            young.push(m.id);
        } else if turn.is_some_and(|member| {
            !ctx.progress
                .idle(destination, member, ctx.takeover, instant)
        }) {
            // Its member keeps delivering (a queue, not a stop): the watcher records
            // the delivery when it lands; look again after a takeover period, or
            // just past its deadline.
            busy.push(m);
        } else {
            live.push(m);
        }
    }
    let mut holds: BTreeMap<Duration, Vec<MessageId>> = BTreeMap::new();
    if !young.is_empty() {
        holds.insert(HOLD_STEP, young);
    }
    for m in busy {
        holds
            .entry(hold_for(ctx.takeover, m.deadline, now))
            .or_default()
            .push(m.id);
    }
    for (wait, held) in holds {
        ctx.store.defer_observed(&held, wait).await?;
        ctx.release(&held).await;
    }
    let live = (!live.is_empty()).then_some(Triaged {
        origin,
        destination,
        live,
    });
    Ok((done, live))
}
