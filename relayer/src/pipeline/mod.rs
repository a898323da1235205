//! The delivery pipeline, one module per step.
//!
//! A source's **observer** ([`observe`]) records the outbox's messages with its
//! cursor. A destination's delivery round ([`round`]) then takes a batch through the
//! steps, each taking the previous step's typed state and returning its own:
//!
//! ```text
//! claim::Claimed -> triage::Triaged -> verify::Verified -> attest::Attested
//!               -> submit::Submitted -> record
//! ```
//!
//! Each state can only be built by the step that produces it (its fields are private
//! to that module), so a step cannot be skipped or reordered without a compile error:
//! nothing reaches the submitter unattested, and nothing is attested unverified.
//! [`watch`] follows the destination's deliveries by every member; [`turns`] decides
//! whose turn a message is and when a member looks stopped. A route paused on its
//! destination is not claimed from ([`paused`]).
//!
//! Every status change is a compare-and-set with its log row; a crash at any point
//! leaves a state from which the next round continues, and the inbox's replay
//! protection makes a repeated submission harmless.

pub mod attest;
pub mod claim;
mod error;
pub mod evidence;
pub mod fit;
pub mod leases;
pub mod observe;
pub mod paused;
pub mod quiet;
pub mod receipts;
pub mod reconcile;
pub mod record;
pub mod signer_sets;
pub mod submit;
pub mod triage;
pub mod turns;
pub mod verify;
pub mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use isthmus_schema::{MessageId, RetryPolicy, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info_span, warn, Instrument};

pub use error::PipelineError;

use crate::attest::{Attester, Consortium, Peers};
use crate::ledger::LedgerHandle;
use crate::metrics::Metrics;

/// How long a delivery may take to become final on the destination.
pub const FINALITY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a claimed message stays leased to this worker. The lease survives the
/// in-flight statuses, so it must outlast a whole round (peers' answers, the
/// submission and its finality): a replica of this member takes the message over
/// only after a crash, and then the destination's replay check decides.
pub const LEASE: Duration = Duration::from_secs(300);
/// How often a held-back message is looked at (delivered by its member yet?) where
/// the destination's deliveries are not followed as they land.
pub const HOLD_STEP: Duration = Duration::from_secs(4);

/// How often a message held on its destination is submitted again to see whether a
/// quorum decided its hold (a decision submitted from this member makes it due at
/// once; another member's is seen by this recheck). Each recheck is one cheap
/// submission: the destination executes nothing while the hold waits.
pub const HOLD_RECHECK: Duration = Duration::from_secs(30);

/// A route this relayer serves, with its delivery settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Source ledger id.
    pub source: u32,
    /// Destination ledger id.
    pub destination: u32,
    /// Messages per batch (before fitting to the destination's blocks).
    pub batch_size: u32,
    /// Batches in flight at once towards the destination.
    pub in_flight: u32,
    /// The most gas one message's delivery may need (see [`fit`]).
    pub max_message_gas: Option<u64>,
}

/// What every step works with: the store, the ledgers, this member's key and the
/// consortium.
pub struct Context {
    /// The history store.
    pub store: Store,
    /// Ledgers by protocol id.
    pub ledgers: BTreeMap<u32, LedgerHandle>,
    /// The enabled routes between ledgers this relayer reaches.
    pub routes: Vec<Route>,
    /// This member's attestation key.
    pub attester: Arc<Attester>,
    /// The consortium.
    pub consortium: Consortium,
    /// The other members' attestation endpoints.
    pub peers: Arc<dyn Peers>,
    /// Metrics.
    pub metrics: Metrics,
    /// Worker id for claim leases: member name and process id.
    pub worker: String,
    /// Retry budget of failed deliveries.
    pub retry: RetryPolicy,
    /// How long another member's turn is waited for.
    pub takeover: Duration,
    /// When each member last delivered a message of its turn.
    pub progress: turns::Progress,
    /// Repeated warnings, summarised.
    pub quiet: quiet::Quiet,
    /// Unsigned refusals already in the history, by checkpoint digest and member:
    /// each is recorded once, not once per round that asks again.
    pub refusals: std::sync::Mutex<std::collections::HashSet<([u8; 32], String)>>,
    /// The messages whose leases a step of this process holds.
    pub leases: leases::InUse,
    /// The signer sets each destination accepts, as last read.
    pub signer_sets: signer_sets::Following,
    /// Which routes are paused on their destinations, as last read.
    pub paused: paused::Routes,
}

impl Context {
    /// The ledger with `id` (every id the pipeline handles is configured).
    pub fn ledger(&self, id: u32) -> Result<&LedgerHandle, PipelineError> {
        self.ledgers
            .get(&id)
            .ok_or(PipelineError::UnknownLedger { id })
    }

    /// The name of ledger `id`, or `#id`.
    pub fn name(&self, id: u32) -> String {
        self.ledgers
            .get(&id)
            .map_or_else(|| format!("#{id}"), |l| l.name.clone())
    }

    /// Observes the seconds since `since` as `phase` of a delivery round towards
    /// `destination`; returns now, the start of the next phase.
    pub fn phase(&self, destination: u32, phase: &str, since: Instant) -> Instant {
        let now = Instant::now();
        self.metrics
            .round_phase
            .with_label_values(&[&self.name(destination), phase])
            .observe(now.duration_since(since).as_secs_f64());
        now
    }

    /// Gives back this worker's leases on `ids` (those still held: final states and
    /// failures already cleared theirs).
    pub async fn release(&self, ids: &[MessageId]) {
        self.leases.give_back(ids);
        if let Err(e) = self.store.release_claims(ids, &self.worker).await {
            warn!(messages = ids.len(), error = %e, "could not release claims; the stray-lease check takes them back");
        }
    }
}

/// One delivery round towards `destination`: claim a batch, then per origin take it
/// through the steps. Returns how many messages reached a final state.
pub async fn round(
    ctx: &Context,
    destination: u32,
    stop: &CancellationToken,
) -> Result<usize, PipelineError> {
    let mut done = 0;
    let mut failure = None;
    for claimed in claim::claim(ctx, destination).await? {
        let ids = claimed.ids();
        if stop.is_cancelled() || failure.is_some() {
            ctx.release(&ids).await;
            continue;
        }
        let span =
            info_span!("route", src = %ctx.name(claimed.origin()), dst = %ctx.name(destination));
        match relay(ctx, claimed).instrument(span).await {
            Ok(n) => {
                done += n;
                ctx.leases.give_back(&ids);
            }
            Err(e) => {
                // Whatever this round left in flight is retried from its stored status
                // by the next round (here or in a replica), not after the lease.
                ctx.release(&ids).await;
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// One origin's batch through triage, verification, attestation, submission and
/// recording. Returns how many messages reached a final state.
async fn relay(ctx: &Context, claimed: claim::Claimed) -> Result<usize, PipelineError> {
    let destination = claimed.destination();
    let started = Instant::now();
    let (finished, triaged) = triage::triage(ctx, claimed).await?;
    let Some(triaged) = triaged else {
        return Ok(finished);
    };
    let phase = ctx.phase(destination, "checks", started);
    let verified = verify::verify(ctx, triaged).await?;
    let phase = ctx.phase(destination, "verify", phase);
    let Some(attested) = attest::attest(ctx, verified).await? else {
        return Ok(finished);
    };
    let phase = ctx.phase(destination, "attest", phase);
    let (unfit, fitted) = fit::fit(ctx, attested).await?;
    let Some(fitted) = fitted else {
        return Ok(finished + unfit);
    };
    let submitted = submit::submit(ctx, fitted).await?;
    let phase = ctx.phase(destination, "submit", phase);
    let recorded = record::record(ctx, submitted).await?;
    ctx.phase(destination, "record", phase);
    Ok(finished + unfit + recorded)
}

/// `0x` and the hex of 32 bytes, as the history's evidence writes hashes.
pub(crate) fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(b))
}
