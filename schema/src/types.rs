//! Domain values as the store persists them.
//!
//! The store takes plain integers and byte arrays, not the protocol crate's types, so
//! the schema can be read and audited without them (the protocol crate only checks a
//! message's canonical bytes before they are stored). Every enum here whose value is
//! written to Postgres is PERSISTED: variants may be added (with a migration
//! extending the CHECK constraint) but never renamed or removed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// A protocol ledger id (u32 domain assigned in config).
pub type LedgerId = u32;

/// A 32-byte message id: keccak256 of the message's canonical encoding (the
/// protocol's type; it prints as `0x` and 64 hex digits).
pub use isthmus_protocol::MessageId;

/// A route: messages from `source` to `destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// Ledger the messages are dispatched on.
    pub source: LedgerId,
    /// Ledger the messages are delivered to.
    pub destination: LedgerId,
}

/// Defines a persisted string enum with `as_str`, `FromStr` and `Display`.
macro_rules! persisted_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];

            /// The value stored in Postgres (PERSISTED: never change it).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl FromStr for $name {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(StoreError::Decode {
                        what: $what,
                        reason: format!("unknown value {other:?}"),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

persisted_enum! {
    /// Kind of ledger. PERSISTED in `ledgers.kind`.
    LedgerKind, "ledger kind" {
        /// An EVM chain.
        Evm = "evm",
        /// A Substrate chain.
        Substrate = "substrate",
    }
}

persisted_enum! {
    /// How finality is established on a ledger. PERSISTED in `ledgers.finality`.
    FinalityMode, "finality mode" {
        /// QBFT seals (consortium EVM).
        Qbft = "qbft",
        /// IBFT 2.0 seals (consortium EVM).
        Ibft2 = "ibft2",
        /// IBFT 1.0 seals (GoQuorum's "istanbul", consortium EVM).
        Ibft = "ibft",
        /// Clique seals (consortium EVM).
        Clique = "clique",
        /// The node's `finalized` block tag is trusted (development chains).
        FinalizedTag = "finalized-tag",
        /// GRANDPA justifications verified by the light client (Substrate).
        Grandpa = "grandpa",
    }
}

persisted_enum! {
    /// Pipeline stage owning a progress cursor. PERSISTED in `progress_cursors.stage`.
    Stage, "cursor stage" {
        /// Scanning finalized source blocks for outbox messages.
        Observe = "observe",
        /// Verifying observed messages with light clients.
        Verify = "verify",
        /// Signing and collecting attestations.
        Attest = "attest",
        /// Submitting to the destination.
        Deliver = "deliver",
        /// Waiting for final receipts on the destination.
        Confirm = "confirm",
    }
}

persisted_enum! {
    /// Status of a message. PERSISTED in `messages.status`.
    ///
    /// Changes only along [`MessageStatus::can_transition_to`], by compare-and-set.
    MessageStatus, "message status" {
        /// Seen in a finalized source block, not yet verified.
        Observed = "observed",
        /// Inclusion and finality verified by a light client.
        Verified = "verified",
        /// Enough consortium attestations collected for its checkpoint.
        Attested = "attested",
        /// A delivery transaction was sent to the destination.
        Submitted = "submitted",
        /// Final on the destination (terminal).
        Delivered = "delivered",
        /// Delivery failed; retried after `next_attempt_at`.
        Failed = "failed",
        /// Retry budget exhausted; waits for an operator.
        DeadLetter = "dead_letter",
        /// Deadline passed before delivery (terminal).
        Expired = "expired",
        /// Malformed or not provable on the source ledger (terminal).
        Rejected = "rejected",
        /// Refused for good by its recipient on the destination, which consumed it
        /// with a `refused` receipt (terminal).
        Refused = "refused",
        /// Held on the destination by its recipient's controls (a value limit): not
        /// executed, still deliverable; submitted again after `next_attempt_at` to see
        /// whether a quorum released or rejected it (docs/protocol.md, "Holds").
        Held = "held",
    }
}

/// The legal status changes: `(from, to)`. The migration seeds the same table into
/// `message_status_transitions`, whose trigger refuses every other change.
pub const TRANSITIONS: &[(MessageStatus, MessageStatus)] = {
    use MessageStatus::*;
    &[
        (Observed, Verified),
        (Observed, Expired),
        (Observed, Rejected),
        (Observed, Delivered),
        (Verified, Attested),
        (Verified, Expired),
        (Verified, Delivered),
        (Attested, Submitted),
        (Attested, Delivered),
        (Attested, Failed),
        (Attested, DeadLetter),
        (Attested, Expired),
        (Submitted, Delivered),
        (Submitted, Failed),
        (Submitted, DeadLetter),
        (Submitted, Attested),
        (Submitted, Expired),
        (Submitted, Refused),
        (Observed, Refused),
        (Verified, Refused),
        (Attested, Refused),
        (Failed, Refused),
        (DeadLetter, Refused),
        (DeadLetter, Expired),
        (Failed, Attested),
        (Failed, Delivered),
        (Failed, DeadLetter),
        (Failed, Expired),
        (DeadLetter, Attested),
        (DeadLetter, Delivered),
        (Expired, Delivered),
        (Submitted, Held),
        (Held, Attested),
        (Held, Delivered),
        (Held, Refused),
        (Held, Expired),
        (Held, DeadLetter),
    ]
};

impl MessageStatus {
    /// The statuses a delivery round claims (see [`crate::Store::claim`]): every
    /// status from which a delivery can still happen without an operator, that is
    /// all but the final ones (`delivered`, `expired`, `rejected`, `refused`) and
    /// `dead_letter`.
    ///
    /// They are the predicate of the partial index of due messages
    /// (`messages_due_idx`, migrations `0004_due_index.sql` and `0014_holds.sql`), which a claim can use
    /// only when it asks for these statuses or some of them.
    pub const PENDING: &'static [MessageStatus] = &[
        MessageStatus::Observed,
        MessageStatus::Verified,
        MessageStatus::Attested,
        MessageStatus::Submitted,
        MessageStatus::Failed,
        MessageStatus::Held,
    ];

    /// Whether `self -> to` is a legal status change.
    pub fn can_transition_to(self, to: MessageStatus) -> bool {
        TRANSITIONS.iter().any(|&(f, t)| f == self && t == to)
    }

    /// Whether no transition leaves this status.
    pub fn is_terminal(self) -> bool {
        !TRANSITIONS.iter().any(|&(f, _)| f == self)
    }

    /// The lifecycle event logged when a message enters this status.
    pub const fn event(self) -> LogEvent {
        match self {
            MessageStatus::Observed => LogEvent::Observed,
            MessageStatus::Verified => LogEvent::Verified,
            MessageStatus::Attested => LogEvent::Attested,
            MessageStatus::Submitted => LogEvent::Submitted,
            MessageStatus::Delivered => LogEvent::Delivered,
            MessageStatus::Failed => LogEvent::Failed,
            MessageStatus::DeadLetter => LogEvent::DeadLetter,
            MessageStatus::Expired => LogEvent::Expired,
            MessageStatus::Rejected => LogEvent::Rejected,
            MessageStatus::Refused => LogEvent::Refused,
            MessageStatus::Held => LogEvent::Held,
        }
    }
}

persisted_enum! {
    /// Kind of a lifecycle log row. PERSISTED in `lifecycle_log.event`.
    LogEvent, "log event" {
        /// The message was recorded as observed.
        Observed = "observed",
        /// The message entered `verified`.
        Verified = "verified",
        /// The message entered `attested`.
        Attested = "attested",
        /// The message entered `submitted`.
        Submitted = "submitted",
        /// The message entered `delivered`.
        Delivered = "delivered",
        /// The message entered `failed`.
        Failed = "failed",
        /// The message entered `dead_letter`.
        DeadLetter = "dead_letter",
        /// The message entered `expired`.
        Expired = "expired",
        /// The message entered `rejected`.
        Rejected = "rejected",
        /// The message entered `refused`.
        Refused = "refused",
        /// The message entered `held`.
        Held = "held",
        /// A decision on a held message: this member signed its release or
        /// rejection, or a quorum's decision was submitted (no status change).
        HoldDecision = "hold_decision",
        /// A receipt of the message was observed: how it ended on its destination,
        /// carried back by a receipt batch (no status change).
        Receipt = "receipt",
        /// A checkpoint was recorded (no message).
        Checkpoint = "checkpoint",
        /// An attestation was recorded, accepted or refused (no message).
        Attestation = "attestation",
        /// An operator acted (message optional).
        Operator = "operator",
        /// A light client refused a ledger's header and halted its observer; the
        /// evidence holds the header(s) and the rule (no message).
        ConsensusFault = "consensus_fault",
    }
}

persisted_enum! {
    /// Whether this relayer accepted an attestation. PERSISTED in `attestations.outcome`.
    AttestationOutcome, "attestation outcome" {
        /// Valid signature by a current member over a checkpoint we verified.
        Accepted = "accepted",
        /// Refused; the row's reason says why.
        Refused = "refused",
    }
}

persisted_enum! {
    /// Kind of operator intervention. PERSISTED in `operator_actions.action`.
    OperatorActionKind, "operator action" {
        /// Send a dead-lettered or failed message back to delivery.
        Retry = "retry",
        /// Stop retrying a message.
        DeadLetter = "dead_letter",
        /// Give up on a message whose deadline is irrelevant.
        Expire = "expire",
        /// Stop processing a route.
        PauseRoute = "pause_route",
        /// Resume processing a route.
        ResumeRoute = "resume_route",
        /// A note for the record.
        Note = "note",
        /// Discard a ledger's stored light-client state, so that it starts again from
        /// the configured checkpoint.
        ResetLightClient = "reset_light_client",
        /// Propose an update of an origin's signer set on a destination.
        SignerSetPropose = "signer_set_propose",
        /// Sign a proposed signer-set update with this member's attestation key.
        SignerSetSign = "signer_set_sign",
        /// Submit a signer-set update with a quorum's signatures (or have it refused).
        SignerSetSubmit = "signer_set_submit",
    }
}

/// A ledger known to the relayer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// Protocol ledger id.
    pub id: LedgerId,
    /// Human name from config (unique).
    pub name: String,
    /// EVM or Substrate.
    pub kind: LedgerKind,
    /// How finality is established.
    pub finality: FinalityMode,
}

/// Identifies a progress cursor: a ledger (optionally per destination) and a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CursorKey {
    /// The ledger whose blocks the cursor counts.
    pub ledger: LedgerId,
    /// The route's destination, or `None` for a ledger-wide cursor.
    pub destination: Option<LedgerId>,
    /// The stage owning the cursor.
    pub stage: Stage,
}

impl fmt::Display for CursorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.destination {
            Some(d) => write!(f, "{}->{}/{}", self.ledger, d, self.stage),
            None => write!(f, "{}/{}", self.ledger, self.stage),
        }
    }
}

/// A block position by number and hash (the protocol's type).
pub use isthmus_protocol::BlockRef;

/// A stored cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Last processed block.
    pub block: BlockRef,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// A message seen on a source ledger, with where it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// keccak256 of `canonical`; checked on insert.
    pub id: MessageId,
    /// Protocol version.
    pub version: u8,
    /// Per-outbox nonce.
    pub nonce: u64,
    /// Source ledger id.
    pub origin: LedgerId,
    /// Sender address (Address32).
    pub sender: [u8; 32],
    /// Destination ledger id.
    pub destination: LedgerId,
    /// Recipient address (Address32).
    pub recipient: [u8; 32],
    /// Unix seconds, 0 = none.
    pub deadline: u64,
    /// Application payload.
    pub body: Vec<u8>,
    /// Canonical protocol encoding of the message.
    pub canonical: Vec<u8>,
    /// Source block holding the dispatch.
    pub source_block: BlockRef,
    /// Source transaction (or extrinsic) hash, when known.
    pub source_tx_hash: Option<[u8; 32]>,
}

impl NewMessage {
    /// The row of `message` (whose id the caller already has: the outbox event
    /// carries it) seen in `block`, emitted by `tx_hash` where the ledger has one.
    pub fn from_protocol(
        message: &isthmus_protocol::Message,
        id: MessageId,
        block: BlockRef,
        tx_hash: Option<[u8; 32]>,
    ) -> Self {
        Self {
            id,
            version: isthmus_protocol::VERSION,
            nonce: message.nonce,
            origin: message.origin,
            sender: message.sender.0,
            destination: message.destination,
            recipient: message.recipient.0,
            deadline: message.deadline,
            body: message.body.clone(),
            canonical: message.encode(),
            source_block: block,
            source_tx_hash: tx_hash,
        }
    }
}

/// A message row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// Message id.
    pub id: MessageId,
    /// Protocol version.
    pub version: u8,
    /// Per-outbox nonce.
    pub nonce: u64,
    /// Source ledger id.
    pub origin: LedgerId,
    /// Sender address.
    pub sender: [u8; 32],
    /// Destination ledger id.
    pub destination: LedgerId,
    /// Recipient address.
    pub recipient: [u8; 32],
    /// Unix seconds, 0 = none.
    pub deadline: u64,
    /// Application payload.
    pub body: Vec<u8>,
    /// Canonical protocol encoding.
    pub canonical: Vec<u8>,
    /// Current status.
    pub status: MessageStatus,
    /// Source block holding the dispatch.
    pub source_block: BlockRef,
    /// Source transaction hash, when known.
    pub source_tx_hash: Option<[u8; 32]>,
    /// When the relayer recorded it.
    pub observed_at: DateTime<Utc>,
    /// Last change of any mutable column.
    pub updated_at: DateTime<Utc>,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// Earliest time a failed message may be retried.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Worker holding the delivery lease.
    pub claimed_by: Option<String>,
    /// When the lease ends.
    pub claimed_until: Option<DateTime<Utc>>,
}

impl MessageRecord {
    /// The message's route.
    pub fn route(&self) -> Route {
        Route {
            source: self.origin,
            destination: self.destination,
        }
    }
}

/// One lifecycle log row.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The message concerned, if any.
    pub message_id: Option<MessageId>,
    /// What happened.
    pub event: LogEvent,
    /// Evidence of the step (heights, hashes, signers, tx, gas...).
    pub evidence: serde_json::Value,
    /// The evidence exactly as Postgres renders it (`evidence::text`), which is what
    /// `row_hash` covers: numbers keep their written form (`1.50`), which `evidence`
    /// may not.
    pub evidence_text: String,
    /// Who did it (worker, member or operator name).
    pub actor: String,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
    /// `row_hash` of the previous row (zeros for seq 1).
    pub prev_hash: [u8; 32],
    /// sha256 of the row's canonical bytes.
    pub row_hash: [u8; 32],
}

/// A message with its full log, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageHistory {
    /// The message row.
    pub message: MessageRecord,
    /// Its log rows in chain order.
    pub log: Vec<LogEntry>,
}

/// An outbox entry of a scanned range that is not a valid message (it cannot be
/// decoded, or it names another origin): no message row can hold it, so it is
/// recorded as a `rejected` log row without a message id, with this as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedEntry {
    /// The block that holds it.
    pub block: BlockRef,
    /// The transaction (or extrinsic) that emitted it, when the ledger has one.
    pub tx_hash: Option<[u8; 32]>,
    /// Its position in the block (log index or event index).
    pub index: u64,
    /// Why it was refused.
    pub reason: String,
    /// The raw payload as the ledger gave it.
    pub raw: Vec<u8>,
}

/// A receipt observed in a receipt batch (docs/protocol.md, "Receipts"): how the
/// message `message_id` ended on its destination, carried back to its origin by the
/// message `carried_by`. Recorded with the batch's own row
/// ([`crate::Store::record_observed_round`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedReceipt {
    /// The message the receipt ends.
    pub message_id: MessageId,
    /// The receipt batch message carrying it.
    pub carried_by: MessageId,
    /// How the message ended.
    pub outcome: isthmus_protocol::ReceiptOutcome,
    /// The recipient's answer or refusal code.
    pub result: [u8; 32],
}

/// A message's receipt as the history holds it, with the receipt batch's progress
/// towards the origin ([`crate::Store::receipt`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// How the message ended on its destination.
    pub outcome: isthmus_protocol::ReceiptOutcome,
    /// The recipient's answer or refusal code.
    pub result: [u8; 32],
    /// The receipt batch message carrying it.
    pub carried_by: MessageId,
    /// That batch's status (`delivered`: the origin took the receipt).
    pub batch_status: MessageStatus,
    /// The transaction that delivered the batch to the origin, once final.
    pub taken_tx: Option<[u8; 32]>,
    /// When the receipt was observed.
    pub observed_at: DateTime<Utc>,
}

/// What an observer found in one range of a source's final blocks, recorded in one
/// transaction with the cursor ([`crate::Store::record_observed_round`]).
#[derive(Clone, Copy, Debug)]
pub struct ObservedRange<'a> {
    /// The range's last block: where the cursor moves.
    pub block: BlockRef,
    /// The messages of the range.
    pub messages: &'a [NewMessage],
    /// Outbox entries that are no message.
    pub rejected: &'a [RejectedEntry],
    /// The receipts the range's receipt batches carry.
    pub receipts: &'a [ObservedReceipt],
    /// The source's light-client state covering the range, where it keeps one.
    pub light_client: Option<&'a LightClientCommit>,
}

/// Result of [`crate::Store::record_observed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedOutcome {
    /// Messages newly inserted (each with an `observed` log row).
    pub inserted: usize,
    /// Messages already present, left untouched.
    pub already_known: usize,
    /// Whether the cursor moved (false when the same block was recorded again).
    pub cursor_advanced: bool,
    /// Rejected entries recorded (none when the same block was recorded again: the
    /// first recording holds them).
    pub rejected: usize,
}

/// A checkpoint to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCheckpoint {
    /// Domain-separated digest members sign.
    pub digest: [u8; 32],
    /// Source ledger.
    pub origin: LedgerId,
    /// Outbox address (Address32).
    pub outbox: [u8; 32],
    /// Outbox Merkle root.
    pub root: [u8; 32],
    /// Number of messages committed.
    pub count: u32,
    /// Final source block at which root/count were proved.
    pub block: BlockRef,
}

/// A stored checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRecord {
    /// The checkpoint.
    pub checkpoint: NewCheckpoint,
    /// Proof summary recorded with it.
    pub evidence: serde_json::Value,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// An attestation to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAttestation {
    /// Digest of the attested checkpoint.
    pub checkpoint_digest: [u8; 32],
    /// Signer address (20 bytes).
    pub signer: [u8; 20],
    /// Consortium member name, when known.
    pub member: Option<String>,
    /// secp256k1 signature r ‖ s ‖ v.
    pub signature: [u8; 65],
    /// `Ok(())` if accepted, `Err(reason)` if refused.
    pub verdict: Result<(), String>,
}

/// A stored attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestationRecord {
    /// Row id.
    pub id: i64,
    /// The attestation as recorded.
    pub attestation: NewAttestation,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// A final delivery on the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// The delivered message.
    pub message_id: MessageId,
    /// Destination ledger.
    pub destination: LedgerId,
    /// Destination transaction hash.
    pub tx_hash: [u8; 32],
    /// Destination block holding it.
    pub block_number: u64,
    /// Hash of that block, when known.
    pub block_hash: Option<[u8; 32]>,
    /// Gas used by the transaction (EVM), if any.
    pub gas_used: Option<u64>,
    /// Checkpoint the proof was anchored to.
    pub checkpoint_digest: Option<[u8; 32]>,
    /// Position of the message in its batch.
    pub batch_index: u32,
    /// Number of messages in the batch transaction.
    pub batch_size: u32,
}

/// An operator intervention to record.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorAction {
    /// Who acted.
    pub operator: String,
    /// What they did.
    pub action: OperatorActionKind,
    /// Why.
    pub reason: String,
    /// The message concerned, if any.
    pub message_id: Option<MessageId>,
    /// The route concerned, if any.
    pub route: Option<Route>,
    /// The ledger concerned, if any (a light-client reset).
    pub ledger: Option<LedgerId>,
    /// Anything else worth keeping.
    pub details: serde_json::Value,
}

/// Retry budget and exponential backoff for failed deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after which a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay after the first failure; doubled on each further failure.
    pub base_delay: std::time::Duration,
    /// Upper bound of the delay.
    pub max_delay: std::time::Duration,
}

impl RetryPolicy {
    /// Delay before retrying after the `attempts`-th failure (1-based).
    pub fn delay_after(&self, attempts: u32) -> std::time::Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        self.base_delay
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// [`RetryPolicy::delay_after`] spread over 75–100 % of its value by `seed` (a
    /// message id), so messages that failed together do not all retry in the same
    /// instant. Deterministic per (seed, attempts): a repeated computation agrees.
    pub fn jittered_delay_after(&self, attempts: u32, seed: &[u8]) -> std::time::Duration {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(seed);
        hasher.update(attempts.to_be_bytes());
        let digest = hasher.finalize();
        // 0..=255 -> 75 %..=100 % of the delay.
        let per_mille = 750 + u32::from(digest[0]) * 250 / 255;
        self.delay_after(attempts) * per_mille / 1000
    }
}

/// Result of [`crate::Store::set_failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Will be retried at `next_attempt_at`.
    Failed {
        /// Attempts so far.
        attempts: u32,
        /// Earliest retry time.
        next_attempt_at: DateTime<Utc>,
    },
    /// Retry budget exhausted.
    DeadLettered {
        /// Attempts so far.
        attempts: u32,
    },
}

/// A member's place in the submission turns, for [`Claim::turn`]: the message with
/// nonce `n` is the turn of member `n % members`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn {
    /// How many members take turns.
    pub members: u32,
    /// This member's index among them.
    pub index: u32,
}

/// What [`crate::Store::claim`] leases: up to `limit` ready messages towards
/// `destination`, to `worker` for `lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<'a> {
    /// Ledger the messages are addressed to.
    pub destination: LedgerId,
    /// Only messages from these ledgers (empty = any origin), so a relayer never
    /// leases messages of routes it does not serve.
    pub origins: &'a [LedgerId],
    /// Only messages in these statuses; usually [`MessageStatus::PENDING`] (a subset
    /// of it keeps the claim on the partial index of due messages). Empty claims
    /// nothing.
    pub statuses: &'a [MessageStatus],
    /// Most messages to lease.
    pub limit: u32,
    /// Who holds the leases (must not be empty): relayer processes use their worker
    /// id, which is also their sessions' `application_name`.
    pub worker: &'a str,
    /// How long the leases last unless given back or ended by a status change.
    pub lease: std::time::Duration,
    /// This member's submission turns, if members take turns: its own turns are
    /// claimed before the messages it would only hold back.
    pub turn: Option<Turn>,
}

/// Filter for [`crate::Store::list_messages`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageFilter {
    /// Only this route.
    pub route: Option<Route>,
    /// Only these statuses (empty = all).
    pub statuses: Vec<MessageStatus>,
    /// Only messages with a receipt of one of these outcomes (empty = any message,
    /// with a receipt or not).
    pub outcomes: Vec<isthmus_protocol::ReceiptOutcome>,
    /// Observed at or after.
    pub observed_from: Option<DateTime<Utc>>,
    /// Observed strictly before.
    pub observed_to: Option<DateTime<Utc>>,
    /// Maximum rows (default 1000).
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse::<MessageStatus>().expect("round trip"), *s);
            assert_eq!(
                s.event().as_str(),
                s.as_str(),
                "status events share the status name"
            );
        }
        for e in LogEvent::ALL {
            assert_eq!(e.as_str().parse::<LogEvent>().expect("round trip"), *e);
        }
        assert!("delivering".parse::<MessageStatus>().is_err());
    }

    #[test]
    fn pending_statuses_are_the_live_ones_without_dead_letters() {
        let live: Vec<MessageStatus> = MessageStatus::ALL
            .iter()
            .copied()
            // A dead letter waits for an operator; an expiry is final unless the
            // destination contradicts it: neither is claimed for delivery.
            .filter(|s| {
                !s.is_terminal() && ![MessageStatus::DeadLetter, MessageStatus::Expired].contains(s)
            })
            .collect();
        assert_eq!(MessageStatus::PENDING, live.as_slice());
    }

    #[test]
    fn transition_table_shape() {
        use MessageStatus::*;
        assert!(Observed.can_transition_to(Verified));
        // Another member's delivery, seen before this relayer verified the message.
        assert!(Observed.can_transition_to(Delivered));
        assert!(!Observed.can_transition_to(Submitted));
        assert!(!Observed.can_transition_to(Attested));
        assert!(!Verified.can_transition_to(Observed));
        assert!(DeadLetter.can_transition_to(Attested));
        // The destination shows a delivery after this relayer gave up.
        assert!(DeadLetter.can_transition_to(Delivered));
        // The destination shows a delivery before the deadline, final only after it.
        assert!(Expired.can_transition_to(Delivered));
        assert!(!Expired.can_transition_to(Attested));
        for terminal in [Delivered, Rejected, Refused] {
            assert!(terminal.is_terminal(), "{terminal} is terminal");
        }
        for live in [
            Observed, Verified, Attested, Submitted, Failed, DeadLetter, Expired,
        ] {
            assert!(!live.is_terminal(), "{live} has an exit");
        }
        // Nothing goes back to observed, nothing loops on itself.
        assert!(TRANSITIONS.iter().all(|&(f, t)| t != Observed && f != t));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: std::time::Duration::from_secs(2),
            max_delay: std::time::Duration::from_secs(60),
        };
        assert_eq!(p.delay_after(1).as_secs(), 2);
        assert_eq!(p.delay_after(2).as_secs(), 4);
        assert_eq!(p.delay_after(4).as_secs(), 16);
        assert_eq!(p.delay_after(10).as_secs(), 60);
        assert_eq!(p.delay_after(u32::MAX).as_secs(), 60);
        // Jitter stays within 75-100 % and differs between messages.
        let delays: Vec<_> = (0u8..32)
            .map(|i| p.jittered_delay_after(3, &[i; 32]))
            .collect();
        assert!(
            delays
                .iter()
                .all(|d| d.as_millis() >= 6_000 && d.as_millis() <= 8_000),
            "{delays:?}"
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "no spread: {delays:?}"
        );
        assert_eq!(
            p.jittered_delay_after(3, &[1; 32]),
            p.jittered_delay_after(3, &[1; 32])
        );
    }
}

/// A sealed EVM ledger's light-client state as stored with the observe cursor it
/// covers (`light_client_states`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightClientRecord {
    /// The ledger.
    pub ledger: LedgerId,
    /// The consensus protocol in force at the head.
    pub finality: FinalityMode,
    /// The trusted checkpoint the client started from.
    pub checkpoint: BlockRef,
    /// The last verified header.
    pub head: BlockRef,
    /// The validator (signer) set in force after the head, sorted.
    pub validators: Vec<[u8; 20]>,
    /// The client's whole state, as it resumes it.
    pub state: serde_json::Value,
}

/// A header the light client verified (`light_client_headers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHeaderRecord {
    /// Block number.
    pub number: u64,
    /// Block hash (under the protocol's hashing rule).
    pub hash: [u8; 32],
    /// Parent hash.
    pub parent_hash: [u8; 32],
    /// State root (what outbox proofs are checked against).
    pub state_root: [u8; 32],
    /// The protocol whose seals finalized it.
    pub finality: FinalityMode,
    /// The validators whose seals were recovered.
    pub sealed_by: Vec<[u8; 20]>,
    /// The set the seals were checked against, sorted.
    pub validators: Vec<[u8; 20]>,
    /// The header as served: RLP (EVM, seals included) or SCALE (Substrate).
    pub header_rlp: Vec<u8>,
    /// GRANDPA: the justification that finalized it (its own or a descendant's);
    /// None for EVM headers.
    pub finality_proof: Option<serde_json::Value>,
}

/// What an observe round commits of a light client: its state and the headers it
/// verified since the last commit. `keep` headers at most stay stored per ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightClientCommit {
    /// The state after the last of `headers`.
    pub state: LightClientRecord,
    /// Newly verified headers, ascending.
    pub headers: Vec<VerifiedHeaderRecord>,
    /// How many of the most recent headers to keep.
    pub keep: u64,
}
