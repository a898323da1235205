//! `pallet-isthmus`: the Isthmus protocol v1 endpoints of a FRAME runtime.
//!
//! The pallet mirrors the Solidity `Outbox` and `Inbox` (`onchain/evm`) so that a
//! message behaves the same whichever ledger it leaves or reaches:
//!
//! - **Outbox.** [`Pallet::dispatch`] gives the next nonce to a message from a signed
//!   account, builds its canonical v1 encoding with `isthmus-protocol`, appends its id
//!   to the depth-32 incremental Merkle tree and emits [`Event::Dispatch`] with the
//!   whole encoding. The tree's root and count live in the storage values
//!   [`OutboxRoot`] and [`OutboxCount`] so that one trie read proof at a finalized
//!   block proves both (`docs/substrate.md` gives the keys). Every block's header
//!   also carries them: `on_finalize` deposits an [`OutboxCommitment`] as a
//!   consensus digest item under [`COMMITMENT_ENGINE_ID`], so a GRANDPA
//!   justification of the header alone proves the outbox's state at that block.
//! - **Inbox.** A privileged origin ([`Config::AdminOrigin`], Root in the dev runtime)
//!   sets up each origin ledger once: the trusted outbox id, the signer set and the
//!   threshold. From then on only a quorum of the origin's current signers replaces
//!   its set ([`Pallet::update_signers`]), and the replaced set stays valid for the
//!   overlap the update names; the admin can still retire an origin for good
//!   ([`Pallet::remove_origin`]), never set it up again.
//!   [`Pallet::process`] and [`Pallet::process_batch`] check the attestations with the
//!   keccak and secp256k1 host functions, the message's branch under the attested
//!   root and count, the origin, the destination and replays, then end the message:
//!   `expired` past its deadline (the runtime's [`UnixTime`], i.e. the timestamp
//!   pallet), else handed to the runtime's [`MessageHandler`], which accepts it
//!   (`delivered`) or refuses it for good (`refused`).
//! - **Receipts** (docs/protocol.md, "Receipts"). The receipts of the messages one
//!   call ends for an origin go back as one ordinary message of this outbox, from
//!   [`INBOX_ID`] to the origin's receipt endpoint ([`ReceiptEndpoints`]). A receipt
//!   batch from that endpoint is taken here: each receipt once, only for a message
//!   this outbox sent there ([`Sent`], [`ReceiptsTaken`]), and handed to the
//!   runtime's [`ReceiptHandler`].
//!
//! **A failing handler does not consume the message.** The id is marked processed
//! before the handler runs (a re-entrant delivery is a replay); the handler runs in
//! its own storage transaction; if it fails, its writes and the mark are rolled back,
//! [`Event::MessageHandlerFailed`] is emitted and the extrinsic still succeeds, so the
//! message can be delivered again later. Business refusals of an application are not
//! handler failures: the handler answers [`Handled::Refused`] and the message ends.
//!
//! **Outbox id.** The checkpoint's `outbox` field for this pallet is
//! [`OUTBOX_ID`] = `keccak256("isthmus pallet outbox")`: there is one outbox per
//! runtime, and the origin's ledger id already separates runtimes.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
pub mod verify;
pub mod weights;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;

pub use pallet::*;
pub use verify::{AttestationOutcome, InvalidSignature, SignerAddress};
pub use weights::WeightInfo;

use alloc::{boxed::Box, vec::Vec};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::weights::Weight;
use scale_info::TypeInfo;
use sp_runtime::DispatchError;

/// The id of this pallet's outbox in checkpoints: `keccak256("isthmus pallet outbox")`.
///
/// Fixed rather than derived from the pallet's index or name, so renaming the pallet in
/// a runtime does not change what the consortium attests to.
pub const OUTBOX_ID: [u8; 32] = [
    0xe3, 0xaa, 0x7d, 0x24, 0xf5, 0x76, 0x97, 0x7d, 0xa1, 0xda, 0x14, 0x01, 0xb3, 0x05, 0xd8, 0x11,
    0x2b, 0x56, 0x8c, 0x22, 0x5a, 0x55, 0x43, 0xb4, 0x37, 0xb0, 0x0c, 0xc2, 0x7c, 0x87, 0x37, 0x6e,
];

/// The inbox's own `Address32`: `keccak256("isthmus pallet inbox")`. Receipt batches
/// leave from it and come to it (docs/protocol.md, "Receipts"): an origin that takes
/// this ledger's receipts names it as this ledger's receipt endpoint.
pub const INBOX_ID: [u8; 32] = [
    0x39, 0x13, 0xda, 0xe7, 0x84, 0x29, 0xb6, 0x11, 0x3d, 0xcf, 0x79, 0x53, 0x2b, 0x15, 0xc4, 0xd7,
    0x2c, 0xb2, 0x04, 0xaf, 0x1c, 0x84, 0xf4, 0xfb, 0x46, 0xa4, 0x1d, 0xd9, 0x5a, 0xe0, 0x53, 0xca,
];

/// A refusal code or short answer as the Solidity endpoints write a `bytes32` string
/// constant: the ASCII text left-aligned, zero-padded (at most 32 bytes).
pub const fn code(text: &str) -> [u8; 32] {
    let bytes = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < bytes.len() && i < 32 {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Refusal codes of the inbox itself, the Solidity Inbox's.
pub mod codes {
    use super::code;
    /// No recipient at the message's address on this ledger.
    pub const NO_RECIPIENT: [u8; 32] = code("no recipient contract");
    /// A message to the inbox from someone other than the origin's receipt endpoint.
    pub const NOT_RECEIPTS: [u8; 32] = code("not the origin's inbox");
    /// A would-be receipt batch from the origin's endpoint that is not receipts.
    pub const MALFORMED_RECEIPTS: [u8; 32] = code("malformed receipt batch");
    /// A receipt for a message this ledger did not send to that destination.
    pub const UNKNOWN_MESSAGE: [u8; 32] = code("not sent there from here");
    /// A second receipt for the same message.
    pub const DUPLICATE_RECEIPT: [u8; 32] = code("receipt taken before");
    /// A held message whose hold outlived [`super::HOLD_PERIOD_S`] undecided.
    pub const HOLD_EXPIRED: [u8; 32] = code("hold expired");
    /// A held message a quorum rejected.
    pub const HOLD_REJECTED: [u8; 32] = code("hold rejected");
}

/// How long a hold may wait for a quorum's decision, in seconds (the Solidity Inbox's
/// `HOLD_PERIOD`): a held message processed later ends refused with
/// [`codes::HOLD_EXPIRED`].
pub const HOLD_PERIOD_S: u64 = 2 * 86_400;

/// Where a held message stands (docs/protocol.md, "Holds").
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum HoldState {
    /// Waiting for a quorum's decision: not executed.
    Held,
    /// A quorum released it: its next processing executes it
    /// ([`MessageHandler::handle_released`]).
    Released,
    /// A quorum rejected it: its next processing ends it refused.
    Rejected,
}

/// The hold of a message its handler held ([`Handled::Held`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct Hold {
    /// Held, released or rejected.
    pub state: HoldState,
    /// The message's origin ledger.
    pub origin: u32,
    /// When it was first held (unix seconds).
    pub since: u64,
    /// Why, as the handler said.
    pub reason: [u8; 32],
}

/// Engine id of the digest item carrying the outbox's [`OutboxCommitment`].
pub const COMMITMENT_ENGINE_ID: [u8; 4] = *b"ISTH";

/// The outbox's root and count after a block, deposited in the block's header digest
/// as `DigestItem::Consensus(COMMITMENT_ENGINE_ID, commitment.encode())`: 36 bytes,
/// the root then the count as SCALE `u32` (little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct OutboxCommitment {
    /// Merkle root of the outbox's tree.
    pub root: [u8; 32],
    /// Number of dispatched messages.
    pub count: u32,
}

/// A Merkle branch as submitted: the 32 siblings from the leaf level upwards. The leaf
/// index is the message's nonce.
pub type BranchSiblings = [[u8; 32]; isthmus_protocol::TREE_DEPTH];

/// A 65-byte attestation `r ‖ s ‖ v` over a checkpoint digest.
pub type AttestationBytes = [u8; 65];

/// A checkpoint as submitted to [`Pallet::process`]: the protocol's checkpoint fields.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub struct CheckpointArg {
    /// Ledger id of the source ledger.
    pub origin: u32,
    /// The source outbox (contract address left-padded, or a pallet's [`OUTBOX_ID`]).
    pub outbox: [u8; 32],
    /// Merkle root of the outbox at `block_number`.
    pub root: [u8; 32],
    /// Message count of the outbox at `block_number`.
    pub count: u32,
    /// Source block at which root and count were read.
    pub block_number: u64,
    /// Hash of that block.
    pub block_hash: [u8; 32],
}

impl From<CheckpointArg> for isthmus_protocol::Checkpoint {
    fn from(c: CheckpointArg) -> Self {
        Self {
            origin: c.origin,
            outbox: isthmus_protocol::Address32(c.outbox),
            root: c.root,
            count: c.count,
            block_number: c.block_number,
            block_hash: c.block_hash,
        }
    }
}

/// Why a batch item was skipped rather than refusing the whole batch (the Solidity
/// Inbox's `SkipReason`): it happens to an honest relayer racing another member. A
/// message past its deadline is not skipped: it ends expired.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum SkipReason {
    /// The message ended here before (delivered, refused or expired).
    AlreadyProcessed,
}

/// How a handler ended a message it decided on. Either way the message is consumed
/// and its receipt says so.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handled {
    /// Accepted, with the recipient's short answer (the receipt's `result`).
    Accepted([u8; 32]),
    /// Refused for good, with a code (see [`code`]): it will never be delivered.
    Refused([u8; 32]),
    /// Not executed: held, for this reason, until a quorum of the origin's signers
    /// releases or rejects it (or the hold expires). The handler's writes are rolled
    /// back and the message stays deliverable.
    Held([u8; 32]),
}

/// Where the runtime routes delivered messages, chosen by the runtime (the analogue of
/// the Solidity recipient contract, selected by the message's `recipient`).
pub trait MessageHandler {
    /// Handles one verified, not yet processed, unexpired message.
    ///
    /// `Ok` ends the message (accepted or refused for good). `Err` means "not handled
    /// yet": the pallet rolls back the handler's writes, does not consume the message
    /// and reports the error in [`Event::MessageHandlerFailed`], so a refusal that
    /// depends on state can change on a later delivery.
    fn handle(message: &isthmus_protocol::Message) -> Result<Handled, DispatchError>;

    /// Handles a message a quorum released from its hold: past the controls that held
    /// it. A handler that never holds has nothing to release: by default, `handle`.
    /// A [`Handled::Held`] from here is a handler failure.
    fn handle_released(message: &isthmus_protocol::Message) -> Result<Handled, DispatchError> {
        Self::handle(message)
    }

    /// An upper bound of [`MessageHandler::handle`]'s weight for a body of `body_len`
    /// bytes, charged by the pallet before the call.
    fn weight(body_len: u32) -> Weight;
}

/// A runtime with no recipients: every message is refused (as the Solidity Inbox
/// refuses a recipient that is no contract).
impl MessageHandler for () {
    fn handle(_message: &isthmus_protocol::Message) -> Result<Handled, DispatchError> {
        Ok(Handled::Refused(codes::NO_RECIPIENT))
    }

    fn weight(_body_len: u32) -> Weight {
        Weight::zero()
    }
}

/// The consortium's word on this ledger, for apps whose settings its members change
/// together (a clearing app's value limits): the origin's current signer set, as the
/// inbox holds it, counts the attestations.
pub trait OriginQuorum {
    /// Distinct current signers of `origin` among the valid `attestations` of
    /// `digest`, and the origin's threshold; `None` for an origin not set up.
    fn signed_by(
        origin: u32,
        digest: &[u8; 32],
        attestations: &[AttestationBytes],
    ) -> Option<(u32, u32)>;

    /// This ledger's genesis hash and ledger id, which app digests bind.
    fn endpoint() -> ([u8; 32], u32);
}

impl<T: pallet::Config> OriginQuorum for pallet::Pallet<T> {
    fn signed_by(
        origin: u32,
        digest: &[u8; 32],
        attestations: &[AttestationBytes],
    ) -> Option<(u32, u32)> {
        let config = pallet::Origins::<T>::get(origin)?;
        let (have, _) = verify::check_quorum(digest, &config.signers, attestations);
        Some((have, config.threshold))
    }

    fn endpoint() -> ([u8; 32], u32) {
        use frame_support::traits::Get;
        (
            pallet::Pallet::<T>::genesis_hash(),
            <T as pallet::Config>::LedgerId::get(),
        )
    }
}

/// Where the runtime hands the receipts of messages this ledger sent (the analogue of
/// `IReceiptRecipient.onReceipt`), chosen by the message's sender.
pub trait ReceiptHandler {
    /// Takes the receipt of a message `sender` sent to `destination`. Called once per
    /// message, after the pallet checked that this ledger sent it there.
    ///
    /// `Err` rolls back the handler's writes; the receipt stays taken and waits in
    /// [`PendingReceipts`] until [`Pallet::retry_receipt`] succeeds.
    fn on_receipt(
        sender: &[u8; 32],
        destination: u32,
        receipt: &isthmus_protocol::Receipt,
    ) -> Result<(), DispatchError>;

    /// An upper bound of one [`ReceiptHandler::on_receipt`]'s weight.
    fn weight() -> Weight;
}

/// A runtime whose senders take no receipts: they are recorded only.
impl ReceiptHandler for () {
    fn on_receipt(
        _sender: &[u8; 32],
        _destination: u32,
        _receipt: &isthmus_protocol::Receipt,
    ) -> Result<(), DispatchError> {
        Ok(())
    }

    fn weight() -> Weight {
        Weight::zero()
    }
}

/// Sending through the outbox on behalf of another pallet (an application such as the
/// clearing pallet sends as its own `Address32`).
pub trait Dispatcher {
    /// Dispatches a message from `sender`; returns its id. Refuses as
    /// [`Pallet::dispatch`] does.
    fn dispatch_from(
        sender: [u8; 32],
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: Vec<u8>,
    ) -> Result<[u8; 32], DispatchError>;

    /// The weight of dispatching a body of `body_len` bytes.
    fn dispatch_weight(body_len: u32) -> Weight;
}

/// A message this ledger's outbox sent, kept so that its receipt can be checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct SentMessage {
    /// Who sent it (an account, or an application's `Address32`).
    pub sender: [u8; 32],
    /// Its destination ledger.
    pub destination: u32,
    /// Its nonce (leaf index).
    pub nonce: u64,
}

/// A taken receipt whose [`ReceiptHandler`] failed, waiting for
/// [`Pallet::retry_receipt`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct PendingReceipt {
    /// The destination the receipt came from.
    pub destination: u32,
    /// Outcome code (1 delivered, 2 refused, 3 expired).
    pub outcome: u8,
    /// The recipient's answer.
    pub result: [u8; 32],
}

/// What the benchmarks need from the rest of the runtime (feature `runtime-benchmarks`).
#[cfg(feature = "runtime-benchmarks")]
pub trait BenchmarkHelper {
    /// Sets the time [`Config::UnixTime`] reads to `secs` seconds, as a block of a
    /// running chain has it (benchmarks start from genesis, where it is 0).
    fn set_time(secs: u64);
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_support::traits::UnixTime;
    use frame_system::pallet_prelude::*;
    use isthmus_protocol::{Address32, Message, MAX_BODY_LEN};

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// The pallet's configuration.
    #[pallet::config]
    pub trait Config: frame_system::Config<AccountId = sp_runtime::AccountId32> {
        /// This ledger's id (consortium-assigned domain).
        #[pallet::constant]
        type LedgerId: Get<u32>;
        /// The consortium network this endpoint belongs to: checkpoint digests bind it,
        /// so only signatures made for this network count here (docs/protocol.md,
        /// "Networks"). Never all zero.
        #[pallet::constant]
        type Network: Get<[u8; 32]>;
        /// Who may configure origins: Root in the dev runtime.
        type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// Block time, for deadlines: the timestamp pallet.
        type UnixTime: UnixTime;
        /// Where delivered messages go.
        type MessageHandler: MessageHandler;
        /// Where the receipts of sent messages go.
        type ReceiptHandler: ReceiptHandler;
        /// Largest signer set per origin.
        #[pallet::constant]
        type MaxSigners: Get<u32>;
        /// Largest number of attestations one call may carry.
        #[pallet::constant]
        type MaxAttestations: Get<u32>;
        /// Largest number of messages in one [`Pallet::process_batch`].
        #[pallet::constant]
        type MaxBatch: Get<u32>;
        /// Blocks an ended message's `Processed` entry is kept after its end before
        /// [`Pallet::prune`] may remove it: the time relayers have to find the block
        /// and its event.
        #[pallet::constant]
        type KeepEnded: Get<BlockNumberFor<Self>>;
        /// Weights of the calls.
        type WeightInfo: WeightInfo;
        /// What the benchmarks need from the rest of the runtime.
        #[cfg(feature = "runtime-benchmarks")]
        type BenchmarkHelper: BenchmarkHelper;
    }

    /// The root of the outbox's tree. Stored at genesis and after every dispatch, so
    /// a read proof always finds it (an absent value still reads as the empty root).
    #[pallet::storage]
    pub type OutboxRoot<T> = StorageValue<_, [u8; 32], ValueQuery, EmptyRoot>;

    /// Number of dispatched messages, which is also the next nonce.
    #[pallet::storage]
    pub type OutboxCount<T> = StorageValue<_, u32, ValueQuery>;

    /// The tree's left frontier (`branch[0..32]` of the deposit contract).
    #[pallet::storage]
    pub type OutboxFrontier<T> = StorageValue<_, verify::Frontier, ValueQuery>;

    /// Per origin ledger: trusted outbox, signer set and threshold.
    #[pallet::storage]
    pub type Origins<T: Config> =
        StorageMap<_, Twox64Concat, u32, OriginConfig<T::MaxSigners>, OptionQuery>;

    /// Per origin ledger: whether its route is paused here (every submission of its
    /// checkpoints refused) and its epoch, the resumes so far, which the pause and
    /// resume digests name ([`Pallet::pause_route`], [`Pallet::resume_route`]).
    #[pallet::storage]
    pub type RouteStates<T: Config> = StorageMap<_, Twox64Concat, u32, (bool, u64), ValueQuery>;

    /// Origins retired by [`Pallet::remove_origin`]: never set up again, so the admin
    /// cannot replace a signer set by removing the origin and setting it up anew.
    #[pallet::storage]
    pub type RetiredOrigins<T: Config> = StorageMap<_, Twox64Concat, u32, (), OptionQuery>;

    /// Ids of ended messages (replay protection), with the block that ended them.
    /// Hashed with blake2: ids are chosen by remote senders. Entries below an
    /// origin's [`LowWater`] mark are pruned ([`Pallet::prune`]); the mark keeps
    /// their protection.
    #[pallet::storage]
    pub type Processed<T: Config> =
        StorageMap<_, Blake2_128Concat, [u8; 32], BlockNumberFor<T>, OptionQuery>;

    /// The id of each ended message by (origin, nonce), so that pruning finds the
    /// `Processed` entries below a mark. Removed with them.
    #[pallet::storage]
    pub type EndedIds<T: Config> =
        StorageDoubleMap<_, Twox64Concat, u32, Twox64Concat, u64, [u8; 32], OptionQuery>;

    /// Per origin, the low-water mark: every nonce below it ended here and its entries
    /// were pruned. A message below it is a replay.
    #[pallet::storage]
    pub type LowWater<T: Config> = StorageMap<_, Twox64Concat, u32, u64, ValueQuery>;

    /// Messages this outbox sent, by id: who sent each, where, at which nonce. A
    /// receipt is taken only for a message found here with that destination and
    /// nonce.
    #[pallet::storage]
    pub type Sent<T: Config> = StorageMap<_, Identity, [u8; 32], SentMessage, OptionQuery>;

    /// Per origin ledger: the `Address32` of its inbox, which this inbox sends the
    /// receipts of that origin's messages to and takes that origin's receipt batches
    /// from. An origin without one takes no receipts (its messages still end exactly
    /// once here).
    #[pallet::storage]
    pub type ReceiptEndpoints<T: Config> = StorageMap<_, Twox64Concat, u32, [u8; 32], OptionQuery>;

    /// Ids of sent messages whose receipt was taken (each is taken once).
    #[pallet::storage]
    pub type ReceiptsTaken<T: Config> = StorageMap<_, Identity, [u8; 32], (), OptionQuery>;

    /// Taken receipts whose handler failed, by message id, for
    /// [`Pallet::retry_receipt`].
    #[pallet::storage]
    pub type PendingReceipts<T: Config> =
        StorageMap<_, Identity, [u8; 32], PendingReceipt, OptionQuery>;

    /// Holds of messages held and not ended yet, by message id (removed when the
    /// message ends).
    #[pallet::storage]
    pub type Holds<T: Config> = StorageMap<_, Identity, [u8; 32], Hold, OptionQuery>;

    /// Messages of an origin held and not ended yet: while it is 0, processing reads
    /// no hold.
    #[pallet::storage]
    pub type HeldCount<T: Config> = StorageMap<_, Twox64Concat, u32, u32, ValueQuery>;

    /// Default of [`OutboxRoot`]: the empty tree's root.
    pub struct EmptyRoot;
    impl Get<[u8; 32]> for EmptyRoot {
        fn get() -> [u8; 32] {
            verify::tree_root(&[[0u8; 32]; isthmus_protocol::TREE_DEPTH], 0)
        }
    }

    /// The trust configuration of one origin ledger.
    #[derive(
        CloneNoBound,
        PartialEqNoBound,
        EqNoBound,
        DebugNoBound,
        Encode,
        Decode,
        TypeInfo,
        MaxEncodedLen,
    )]
    #[scale_info(skip_type_params(S))]
    pub struct OriginConfig<S: Get<u32>> {
        /// The outbox whose checkpoints are trusted.
        pub outbox: [u8; 32],
        /// Distinct signer addresses.
        pub signers: BoundedVec<SignerAddress, S>,
        /// How many distinct members must attest, `1 ≤ threshold ≤ signers`.
        pub threshold: u32,
        /// Version of the signer set: 0 as set up, +1 per update.
        pub version: u64,
        /// The set before the last update (empty before the first one).
        pub previous_signers: BoundedVec<SignerAddress, S>,
        /// Its threshold (0 before the first update).
        pub previous_threshold: u32,
        /// The last second (unix time) the previous set is accepted.
        pub previous_until: u64,
    }

    /// Genesis: origins trusted from block 0 (the outbox root is always stored).
    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// `(origin, outbox, signers, threshold)` per trusted origin.
        pub origins: Vec<(u32, [u8; 32], Vec<SignerAddress>, u32)>,
        #[serde(skip)]
        #[doc(hidden)]
        pub _config: core::marker::PhantomData<T>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            OutboxRoot::<T>::put(EmptyRoot::get());
            OutboxCount::<T>::put(0);
            for (origin, outbox, signers, threshold) in &self.origins {
                let config = Pallet::<T>::validated_origin(*origin, *outbox, signers, *threshold)
                    .expect("genesis origin configuration is valid");
                Origins::<T>::insert(origin, config);
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        /// Every message must be deliverable in one extrinsic: the runtime's handler
        /// weight for the largest message, with `process` and the most attestations,
        /// must fit a normal extrinsic's limit, or such a message could never land.
        fn integrity_test() {
            let limits = T::BlockWeights::get();
            let room = limits
                .get(DispatchClass::Normal)
                .max_extrinsic
                .unwrap_or(limits.max_block);
            let largest = Self::largest_delivery();
            assert!(
                largest.all_lte(room),
                "the largest delivery declares {largest:?}, more than a normal extrinsic's \
                 {room:?}: lower the runtime's MessageHandler::weight, ReceiptHandler::weight \
                 or MaxAttestations"
            );
        }

        fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
            // `on_finalize` reads the root and the count.
            T::DbWeight::get().reads(2)
        }

        fn on_finalize(_n: BlockNumberFor<T>) {
            let commitment = OutboxCommitment {
                root: OutboxRoot::<T>::get(),
                count: OutboxCount::<T>::get(),
            };
            frame_system::Pallet::<T>::deposit_log(sp_runtime::DigestItem::Consensus(
                COMMITMENT_ENGINE_ID,
                commitment.encode(),
            ));
        }
    }

    /// Events.
    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A message entered the outbox; `message` is its whole canonical encoding.
        Dispatch {
            /// keccak256 of `message`.
            id: [u8; 32],
            /// Destination ledger id.
            destination: u32,
            /// The message's nonce (its leaf index).
            nonce: u64,
            /// The canonical v1 encoding.
            message: Vec<u8>,
        },
        /// An origin's trust configuration was set or replaced.
        OriginConfigured {
            /// Origin ledger id.
            origin: u32,
            /// Trusted outbox.
            outbox: [u8; 32],
            /// Signer set.
            signers: Vec<SignerAddress>,
            /// Threshold.
            threshold: u32,
        },
        /// A current signer of `origin` (`by`) paused its route in `epoch`: nothing of
        /// it is processed until a quorum resumes it.
        RoutePaused {
            /// Origin ledger id.
            origin: u32,
            /// The signer whose attestation paused it.
            by: SignerAddress,
            /// The route's epoch.
            epoch: u64,
        },
        /// A quorum resumed the route of `origin`; the next controls name `epoch`.
        RouteResumed {
            /// Origin ledger id.
            origin: u32,
            /// The route's new epoch.
            epoch: u64,
        },
        /// A quorum of the current signers replaced the signer set of `origin`; the
        /// replaced set is accepted until `previous_until` (unix seconds).
        SignersUpdated {
            /// Origin ledger id.
            origin: u32,
            /// The new set's version.
            version: u64,
            /// The new signers.
            signers: Vec<SignerAddress>,
            /// The new threshold.
            threshold: u32,
            /// Until when the replaced set is accepted.
            previous_until: u64,
        },
        /// An origin was removed: its messages are refused from now on.
        OriginRemoved {
            /// Origin ledger id.
            origin: u32,
        },
        /// A checkpoint reached its quorum; the outcome of every attestation, in order.
        CheckpointAccepted {
            /// Origin ledger id.
            origin: u32,
            /// The checkpoint digest.
            digest: [u8; 32],
            /// One outcome per attestation.
            outcomes: Vec<AttestationOutcome>,
        },
        /// The handler accepted a message; it is consumed.
        MessageProcessed {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Nonce in the origin outbox.
            nonce: u64,
        },
        /// The handler failed; the message was not consumed and can be delivered again.
        MessageHandlerFailed {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Nonce in the origin outbox.
            nonce: u64,
            /// The handler's error.
            error: DispatchError,
        },
        /// A batch item was skipped (it ended before).
        MessageSkipped {
            /// Message id.
            id: [u8; 32],
            /// Why.
            reason: SkipReason,
        },
        /// The message ended refused: its recipient refused it for good with `code`
        /// (or there is no recipient). It is consumed.
        MessageRefused {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Nonce in the origin outbox.
            nonce: u64,
            /// The refusal code.
            code: [u8; 32],
        },
        /// The message was submitted after its deadline: consumed undelivered.
        MessageExpired {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Nonce in the origin outbox.
            nonce: u64,
        },
        /// `count` receipts for `origin` left in the outbox message `message`.
        ReceiptsSent {
            /// The origin the receipts go back to.
            origin: u32,
            /// Id of the receipt batch message.
            message: [u8; 32],
            /// Receipts in it.
            count: u32,
        },
        /// The receipt of message `id`, sent from here to `destination`, was taken.
        ReceiptTaken {
            /// The sent message's id.
            id: [u8; 32],
            /// Where it was sent.
            destination: u32,
            /// Outcome code (1 delivered, 2 refused, 3 expired).
            outcome: u8,
            /// The recipient's answer.
            result: [u8; 32],
        },
        /// A receipt in a batch from `destination` was not taken, for `code`.
        ReceiptRefused {
            /// The id it names.
            id: [u8; 32],
            /// The batch's origin.
            destination: u32,
            /// Why ([`codes`]).
            code: [u8; 32],
        },
        /// The runtime's receipt handler failed; the receipt stands and waits in
        /// [`PendingReceipts`].
        ReceiptHandlerFailed {
            /// The sent message's id.
            id: [u8; 32],
            /// The handler's error.
            error: DispatchError,
        },
        /// A pending receipt's handler succeeded on a retry.
        ReceiptHandled {
            /// The sent message's id.
            id: [u8; 32],
        },
        /// The receipt endpoint of `origin` was set.
        ReceiptEndpointSet {
            /// Origin ledger id.
            origin: u32,
            /// Its inbox's `Address32`.
            endpoint: [u8; 32],
        },
        /// Every nonce of `origin` below `low_water` ended, and the entries of those
        /// below were removed ([`Pallet::prune`]).
        EndedPruned {
            /// Origin ledger id.
            origin: u32,
            /// The new mark.
            low_water: u64,
        },
        /// The message is held (its handler held it for `reason`, or it was processed
        /// again while held): not executed, still deliverable.
        MessageHeld {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Its nonce.
            nonce: u64,
            /// Why, as the handler said.
            reason: [u8; 32],
        },
        /// A quorum (`approvals` current signers of the origin) released the hold.
        HoldReleased {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Distinct current signers that signed.
            approvals: u32,
        },
        /// A quorum rejected the hold: the message ends refused when next processed.
        HoldRejected {
            /// Message id.
            id: [u8; 32],
            /// Origin ledger id.
            origin: u32,
            /// Distinct current signers that signed.
            approvals: u32,
        },
    }

    /// Refusals, named as in the Solidity endpoints where they correspond.
    #[pallet::error]
    pub enum Error<T> {
        /// The body exceeds the protocol's 65,536 bytes.
        BodyTooLong,
        /// A message to this very ledger (the Outbox's `DestinationIsLocal`).
        DestinationIsLocal,
        /// The outbox holds 2^32 − 1 messages.
        OutboxFull,
        /// Bad signer set: empty, too large, duplicate or zero address, bad threshold,
        /// or the origin is this ledger.
        BadSignerSet,
        /// No configuration for the checkpoint's origin.
        UnknownOrigin,
        /// The checkpoint is not of the trusted outbox.
        OutboxMismatch,
        /// Fewer distinct valid member attestations than the threshold.
        QuorumNotReached,
        /// More attestations than [`Config::MaxAttestations`].
        TooManyAttestations,
        /// The bytes are not a canonical v1 message.
        MalformedMessage,
        /// The message's origin differs from the checkpoint's.
        WrongOrigin,
        /// The message is not for this ledger.
        WrongDestination,
        /// The branch does not lead to the checkpoint's root, or nonce ≥ count.
        InvalidBranch,
        /// The message ended here before.
        AlreadyProcessed,
        /// A batch with no message or more than [`Config::MaxBatch`].
        BadBatchSize,
        /// `dispatch` with a deadline that is not after this block's time: no block
        /// could deliver the message (the Outbox's `DeadlinePassed`).
        DeadlinePassed,
        /// The origin is set up already (or was retired): its signer set changes only
        /// by [`Pallet::update_signers`].
        OriginExists,
        /// An update must carry the current version + 1.
        WrongVersion,
        /// The overlap asked for is longer than 30 days.
        OverlapTooLong,
        /// The origin's receipt endpoint is set already (it is set once), or is zero.
        ReceiptEndpointExists,
        /// No receipt of this id waits for its handler.
        NoPendingReceipt,
        /// The receipt handler failed again.
        ReceiptHandlerStillFailing,
        /// The origin's route is paused: nothing of it is processed until a quorum
        /// resumes it (or, for a pause, it is paused already).
        RoutePaused,
        /// The origin's route is not paused: there is nothing to resume.
        RouteNotPaused,
        /// A pause must carry the attestation of a current signer of the origin over
        /// this epoch's pause digest.
        NotASigner,
        /// The runtime gives this pallet no network id (all zero): it takes no
        /// checkpoint.
        NoNetwork,
        /// The message is not held from that origin (never held, decided, or ended).
        NotHeld,
        /// The hold outlived [`crate::HOLD_PERIOD_S`]: it can only end refused.
        HoldExpired,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Sends a message from the signed account to `recipient` on `destination`.
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::dispatch(body.len().try_into().unwrap_or(u32::MAX)))]
        pub fn dispatch(
            origin: OriginFor<T>,
            destination: u32,
            recipient: [u8; 32],
            deadline: u64,
            body: Vec<u8>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_dispatch(who.into(), destination, recipient, deadline, body).map(drop)
        }

        /// Sets up the trust configuration of `origin_ledger`, once.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::set_origin(signers.len().try_into().unwrap_or(u32::MAX)))]
        pub fn set_origin(
            origin: OriginFor<T>,
            origin_ledger: u32,
            outbox: [u8; 32],
            signers: Vec<SignerAddress>,
            threshold: u32,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(
                !Origins::<T>::contains_key(origin_ledger)
                    && !RetiredOrigins::<T>::contains_key(origin_ledger),
                Error::<T>::OriginExists
            );
            let config = Self::validated_origin(origin_ledger, outbox, &signers, threshold)?;
            Origins::<T>::insert(origin_ledger, config);
            Self::deposit_event(Event::OriginConfigured {
                origin: origin_ledger,
                outbox,
                signers,
                threshold,
            });
            Ok(())
        }

        /// Retires `origin_ledger`: its messages are refused afterwards, and it can never
        /// be set up again.
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::remove_origin())]
        pub fn remove_origin(origin: OriginFor<T>, origin_ledger: u32) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(
                Origins::<T>::take(origin_ledger).is_some(),
                Error::<T>::UnknownOrigin
            );
            RetiredOrigins::<T>::insert(origin_ledger, ());
            Self::deposit_event(Event::OriginRemoved {
                origin: origin_ledger,
            });
            Ok(())
        }

        /// Ends one message under an attested checkpoint: delivered, refused or
        /// expired, with its receipt. Any refusal of the submission (a message that
        /// ended before included) fails the extrinsic; a handler failure does not
        /// (see the crate docs).
        #[pallet::call_index(3)]
        #[pallet::weight(
            T::WeightInfo::process(attestations.len().try_into().unwrap_or(u32::MAX), message.len().try_into().unwrap_or(u32::MAX))
                .saturating_add(Pallet::<T>::message_weight(message.len().try_into().unwrap_or(u32::MAX)))
                .saturating_add(Pallet::<T>::receipts_sent_weight(1))
        )]
        pub fn process(
            origin: OriginFor<T>,
            checkpoint: CheckpointArg,
            attestations: Vec<AttestationBytes>,
            message: Vec<u8>,
            branch: Box<BranchSiblings>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            Self::verify_checkpoint(&checkpoint, &attestations)?;
            let mut receipts = Receipts::<T>::new(checkpoint.origin);
            match Self::deliver(&checkpoint, &message, &branch, &mut receipts)? {
                Delivery::Skipped(_, SkipReason::AlreadyProcessed) => {
                    Err(Error::<T>::AlreadyProcessed.into())
                }
                Delivery::Ended | Delivery::HandlerFailed => receipts.send(),
            }
        }

        /// Ends many messages of one checkpoint, verifying its quorum once, and sends
        /// their receipts in as few receipt batches as fit. Structural faults refuse
        /// the whole batch; a message that ended before is skipped with
        /// [`Event::MessageSkipped`].
        #[pallet::call_index(4)]
        #[pallet::weight({
            let n: u32 = items.len().try_into().unwrap_or(u32::MAX);
            let bytes: u32 = items.iter().map(|(m, _)| m.len()).sum::<usize>().try_into().unwrap_or(u32::MAX);
            let handler = items.iter().fold(Weight::zero(), |w, (m, _)| {
                w.saturating_add(Pallet::<T>::message_weight(m.len().try_into().unwrap_or(u32::MAX)))
            });
            T::WeightInfo::process_batch(attestations.len().try_into().unwrap_or(u32::MAX), n, bytes)
                .saturating_add(handler)
                .saturating_add(Pallet::<T>::receipts_sent_weight(n))
        })]
        pub fn process_batch(
            origin: OriginFor<T>,
            checkpoint: CheckpointArg,
            attestations: Vec<AttestationBytes>,
            items: Vec<(Vec<u8>, BranchSiblings)>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            ensure!(
                !items.is_empty() && items.len() <= T::MaxBatch::get() as usize,
                Error::<T>::BadBatchSize
            );
            Self::verify_checkpoint(&checkpoint, &attestations)?;
            let mut receipts = Receipts::<T>::new(checkpoint.origin);
            for (message, branch) in &items {
                if let Delivery::Skipped(id, reason) =
                    Self::deliver(&checkpoint, message, branch, &mut receipts)?
                {
                    Self::deposit_event(Event::MessageSkipped { id, reason });
                }
            }
            receipts.send()
        }

        /// Replaces the signer set of `origin_ledger` with `signers`/`threshold` at
        /// `version` (the current version + 1), authorised by a quorum of the current
        /// set's `attestations` over [`Pallet::signer_set_update_digest`]. The current
        /// set stays valid for `overlap` seconds, so deliveries attested by either set
        /// go on during a rotation. Anyone may submit the signed update.
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::update_signers(
            signers.len().try_into().unwrap_or(u32::MAX),
            attestations.len().try_into().unwrap_or(u32::MAX),
        ))]
        pub fn update_signers(
            origin: OriginFor<T>,
            origin_ledger: u32,
            signers: Vec<SignerAddress>,
            threshold: u32,
            version: u64,
            overlap: u64,
            attestations: Vec<AttestationBytes>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            ensure!(
                attestations.len() <= T::MaxAttestations::get() as usize,
                Error::<T>::TooManyAttestations
            );
            let current = Origins::<T>::get(origin_ledger).ok_or(Error::<T>::UnknownOrigin)?;
            ensure!(
                Some(version) == current.version.checked_add(1),
                Error::<T>::WrongVersion
            );
            ensure!(
                overlap <= isthmus_protocol::MAX_OVERLAP_S,
                Error::<T>::OverlapTooLong
            );
            let short = u8::try_from(threshold).map_err(|_| Error::<T>::BadSignerSet)?;
            let next = Self::validated_origin(origin_ledger, current.outbox, &signers, threshold)?;
            let update = isthmus_protocol::SignerSetUpdate {
                origin: origin_ledger,
                signers: signers.clone(),
                threshold: short,
                version,
                overlap_s: overlap,
            };
            let digest = Self::signer_set_update_digest(&update);
            let (have, _) = verify::check_quorum(&digest, &current.signers, &attestations);
            ensure!(have >= current.threshold, Error::<T>::QuorumNotReached);
            let previous_until = T::UnixTime::now().as_secs().saturating_add(overlap);
            Origins::<T>::insert(
                origin_ledger,
                OriginConfig {
                    version,
                    previous_signers: current.signers,
                    previous_threshold: current.threshold,
                    previous_until,
                    ..next
                },
            );
            Self::deposit_event(Event::SignersUpdated {
                origin: origin_ledger,
                version,
                signers,
                threshold,
                previous_until,
            });
            Ok(())
        }

        /// Pauses the route from `origin_ledger` at once, with one current signer's
        /// `attestation` over [`Pallet::route_control_digest`] of the pause in the
        /// current epoch: every submission of the origin's checkpoints is refused
        /// ([`Error::RoutePaused`]) until a quorum resumes it, so nothing of the route
        /// is processed or consumed. Anyone may submit it; the event names the signer.
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::control_route(1))]
        pub fn pause_route(
            origin: OriginFor<T>,
            origin_ledger: u32,
            attestation: AttestationBytes,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            let config = Origins::<T>::get(origin_ledger).ok_or(Error::<T>::UnknownOrigin)?;
            let (paused, epoch) = RouteStates::<T>::get(origin_ledger);
            ensure!(!paused, Error::<T>::RoutePaused);
            let digest = Self::route_control_digest(&isthmus_protocol::RouteControl {
                origin: origin_ledger,
                action: isthmus_protocol::RouteAction::Pause,
                epoch,
            });
            let by = verify::recover_signer(&digest, &attestation)
                .ok()
                .filter(|signer| config.signers.contains(signer))
                .ok_or(Error::<T>::NotASigner)?;
            RouteStates::<T>::insert(origin_ledger, (true, epoch));
            Self::deposit_event(Event::RoutePaused {
                origin: origin_ledger,
                by,
                epoch,
            });
            Ok(())
        }

        /// Resumes the paused route from `origin_ledger` with a quorum of the current
        /// set's `attestations` over the resume digest of the current epoch, and moves
        /// the epoch on: the attestations of this pause and this resume are spent.
        #[pallet::call_index(9)]
        #[pallet::weight(T::WeightInfo::control_route(
            attestations.len().try_into().unwrap_or(u32::MAX)
        ))]
        pub fn resume_route(
            origin: OriginFor<T>,
            origin_ledger: u32,
            attestations: Vec<AttestationBytes>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            ensure!(
                attestations.len() <= T::MaxAttestations::get() as usize,
                Error::<T>::TooManyAttestations
            );
            let config = Origins::<T>::get(origin_ledger).ok_or(Error::<T>::UnknownOrigin)?;
            let (paused, epoch) = RouteStates::<T>::get(origin_ledger);
            ensure!(paused, Error::<T>::RouteNotPaused);
            let digest = Self::route_control_digest(&isthmus_protocol::RouteControl {
                origin: origin_ledger,
                action: isthmus_protocol::RouteAction::Resume,
                epoch,
            });
            let (have, _) = verify::check_quorum(&digest, &config.signers, &attestations);
            ensure!(have >= config.threshold, Error::<T>::QuorumNotReached);
            let next = epoch.saturating_add(1);
            RouteStates::<T>::insert(origin_ledger, (false, next));
            Self::deposit_event(Event::RouteResumed {
                origin: origin_ledger,
                epoch: next,
            });
            Ok(())
        }

        /// Names the inbox of `origin_ledger` that this inbox sends that origin's
        /// receipts to and takes its receipt batches from, once (as the origin's
        /// trust, it is not changed afterwards: a receipt endpoint that could be
        /// redirected could forge receipts).
        #[pallet::call_index(6)]
        #[pallet::weight(T::WeightInfo::remove_origin())]
        pub fn set_receipt_endpoint(
            origin: OriginFor<T>,
            origin_ledger: u32,
            endpoint: [u8; 32],
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(
                Origins::<T>::contains_key(origin_ledger),
                Error::<T>::UnknownOrigin
            );
            ensure!(
                endpoint != [0u8; 32] && !ReceiptEndpoints::<T>::contains_key(origin_ledger),
                Error::<T>::ReceiptEndpointExists
            );
            ReceiptEndpoints::<T>::insert(origin_ledger, endpoint);
            Self::deposit_event(Event::ReceiptEndpointSet {
                origin: origin_ledger,
                endpoint,
            });
            Ok(())
        }

        /// Repeats the receipt handler's call for a taken receipt whose handler
        /// failed. Anyone may submit it; it fails if the handler fails again.
        #[pallet::call_index(7)]
        #[pallet::weight(
            T::WeightInfo::take_receipt().saturating_add(T::ReceiptHandler::weight())
        )]
        pub fn retry_receipt(origin: OriginFor<T>, id: [u8; 32]) -> DispatchResult {
            ensure_signed(origin)?;
            let pending = PendingReceipts::<T>::take(id).ok_or(Error::<T>::NoPendingReceipt)?;
            let sent = Sent::<T>::get(id).ok_or(Error::<T>::NoPendingReceipt)?;
            let outcome = isthmus_protocol::ReceiptOutcome::from_code(pending.outcome)
                .ok_or(Error::<T>::NoPendingReceipt)?;
            let receipt = isthmus_protocol::Receipt {
                id: isthmus_protocol::MessageId(id),
                nonce: sent.nonce,
                outcome,
                result: pending.result,
            };
            // The call is transactional: a failure rolls back the `take` too.
            T::ReceiptHandler::on_receipt(&sent.sender, pending.destination, &receipt)
                .map_err(|_| Error::<T>::ReceiptHandlerStillFailing)?;
            Self::deposit_event(Event::ReceiptHandled { id });
            Ok(())
        }

        /// Removes the entries of `origin_ledger`'s ended messages from its low-water
        /// mark upwards, at most `max` of them, while each nonce has ended and ended
        /// at least `KeepEnded` blocks ago, and moves the mark past them. Anyone may
        /// call it: no outcome changes, since a nonce below the mark is a replay.
        #[pallet::call_index(10)]
        #[pallet::weight(T::WeightInfo::prune(*max))]
        pub fn prune(origin: OriginFor<T>, origin_ledger: u32, max: u32) -> DispatchResult {
            ensure_signed(origin)?;
            ensure!(
                Origins::<T>::contains_key(origin_ledger),
                Error::<T>::UnknownOrigin
            );
            let now = frame_system::Pallet::<T>::block_number();
            let start = LowWater::<T>::get(origin_ledger);
            let mut mark = start;
            for _ in 0..max {
                let Some(id) = EndedIds::<T>::get(origin_ledger, mark) else {
                    break;
                };
                let ended_at = Processed::<T>::get(id).unwrap_or_default();
                if sp_runtime::traits::Saturating::saturating_add(ended_at, T::KeepEnded::get())
                    > now
                {
                    break;
                }
                Processed::<T>::remove(id);
                EndedIds::<T>::remove(origin_ledger, mark);
                mark = mark.saturating_add(1);
            }
            if mark != start {
                LowWater::<T>::insert(origin_ledger, mark);
                Self::deposit_event(Event::EndedPruned {
                    origin: origin_ledger,
                    low_water: mark,
                });
            }
            Ok(())
        }

        /// Releases the hold of message `id` from `origin_ledger` with a quorum of the
        /// origin's current signers' `attestations` over [`Pallet::hold_decision_digest`]
        /// of the release: its next processing executes it
        /// ([`MessageHandler::handle_released`]). A decided hold takes no further
        /// decision, so an approval is never used twice; no single member, and not the
        /// admin, can release.
        #[pallet::call_index(11)]
        #[pallet::weight(T::WeightInfo::control_route(
            attestations.len().try_into().unwrap_or(u32::MAX)
        ).saturating_add(T::DbWeight::get().reads_writes(1, 1)))]
        pub fn release_hold(
            origin: OriginFor<T>,
            origin_ledger: u32,
            id: [u8; 32],
            attestations: Vec<AttestationBytes>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            let approvals = Self::decide(
                origin_ledger,
                id,
                isthmus_protocol::HoldAction::Release,
                &attestations,
            )?;
            Self::deposit_event(Event::HoldReleased {
                id,
                origin: origin_ledger,
                approvals,
            });
            Ok(())
        }

        /// Rejects the hold of message `id` from `origin_ledger` with a quorum of the
        /// origin's current signers' `attestations` over the reject digest: its next
        /// processing ends it refused ([`codes::HOLD_REJECTED`]), and its receipt
        /// returns it.
        #[pallet::call_index(12)]
        #[pallet::weight(T::WeightInfo::control_route(
            attestations.len().try_into().unwrap_or(u32::MAX)
        ).saturating_add(T::DbWeight::get().reads_writes(1, 1)))]
        pub fn reject_hold(
            origin: OriginFor<T>,
            origin_ledger: u32,
            id: [u8; 32],
            attestations: Vec<AttestationBytes>,
        ) -> DispatchResult {
            ensure_signed(origin)?;
            let approvals = Self::decide(
                origin_ledger,
                id,
                isthmus_protocol::HoldAction::Reject,
                &attestations,
            )?;
            Self::deposit_event(Event::HoldRejected {
                id,
                origin: origin_ledger,
                approvals,
            });
            Ok(())
        }
    }

    /// What became of one message that passed the structural checks.
    enum Delivery {
        /// Delivered, refused or expired: consumed.
        Ended,
        /// Its handler failed, or it is held: still deliverable.
        HandlerFailed,
        /// It ended before.
        Skipped([u8; 32], SkipReason),
    }

    /// The receipts one submission makes for one origin, sent back as receipt
    /// batches (of at most [`isthmus_protocol::MAX_RECEIPTS`]) through the outbox.
    struct Receipts<T> {
        origin: u32,
        /// The origin's receipt endpoint; None: the origin takes no receipts.
        to: Option<[u8; 32]>,
        items: Vec<isthmus_protocol::Receipt>,
        /// The origin's messages held and not ended ([`HeldCount`]), read once.
        held: u32,
        _config: core::marker::PhantomData<T>,
    }

    impl<T: Config> Receipts<T> {
        fn new(origin: u32) -> Self {
            Self {
                origin,
                to: ReceiptEndpoints::<T>::get(origin),
                items: Vec::new(),
                held: HeldCount::<T>::get(origin),
                _config: core::marker::PhantomData,
            }
        }

        fn add(
            &mut self,
            id: [u8; 32],
            nonce: u64,
            outcome: isthmus_protocol::ReceiptOutcome,
            result: [u8; 32],
        ) {
            if self.to.is_some() {
                self.items.push(isthmus_protocol::Receipt {
                    id: isthmus_protocol::MessageId(id),
                    nonce,
                    outcome,
                    result,
                });
            }
        }

        /// Dispatches the collected receipts from [`INBOX_ID`] to the origin's
        /// endpoint, deadline none.
        fn send(self) -> DispatchResult {
            let Some(to) = self.to else {
                return Ok(());
            };
            for chunk in self.items.chunks(isthmus_protocol::MAX_RECEIPTS) {
                let body = isthmus_protocol::Receipt::encode_batch(chunk);
                let message = Pallet::<T>::do_dispatch(INBOX_ID, self.origin, to, 0, body)?;
                Pallet::<T>::deposit_event(Event::ReceiptsSent {
                    origin: self.origin,
                    message,
                    count: u32::try_from(chunk.len()).unwrap_or(u32::MAX),
                });
            }
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// Checks a configuration before it is stored.
        pub(crate) fn validated_origin(
            origin_ledger: u32,
            outbox: [u8; 32],
            signers: &[SignerAddress],
            threshold: u32,
        ) -> Result<OriginConfig<T::MaxSigners>, Error<T>> {
            let n = signers.len();
            let ok = origin_ledger != T::LedgerId::get()
                && threshold >= 1
                && threshold as usize <= n
                && signers.iter().all(|s| *s != [0u8; 20])
                && signers
                    .iter()
                    .enumerate()
                    .all(|(i, s)| !signers[..i].contains(s));
            ensure!(ok, Error::<T>::BadSignerSet);
            let signers =
                BoundedVec::try_from(signers.to_vec()).map_err(|_| Error::<T>::BadSignerSet)?;
            Ok(OriginConfig {
                outbox,
                signers,
                threshold,
                version: 0,
                previous_signers: BoundedVec::default(),
                previous_threshold: 0,
                previous_until: 0,
            })
        }

        /// The weight `process` declares for the largest message with the most
        /// attestations, its handler's bound included: the most one message's
        /// delivery can take (see `integrity_test`).
        pub fn largest_delivery() -> Weight {
            let len = u32::try_from(isthmus_protocol::MESSAGE_HEADER_LEN + MAX_BODY_LEN)
                .unwrap_or(u32::MAX);
            T::WeightInfo::process(T::MaxAttestations::get(), len)
                .saturating_add(Self::message_weight(len))
                .saturating_add(Self::receipts_sent_weight(1))
        }

        /// Refuses a checkpoint of an unknown origin or untrusted outbox, or without
        /// the quorum; emits the outcome of every attestation when it passes.
        fn verify_checkpoint(
            checkpoint: &CheckpointArg,
            attestations: &[AttestationBytes],
        ) -> DispatchResult {
            ensure!(
                attestations.len() <= T::MaxAttestations::get() as usize,
                Error::<T>::TooManyAttestations
            );
            ensure!(T::Network::get() != [0u8; 32], Error::<T>::NoNetwork);
            let config = Origins::<T>::get(checkpoint.origin).ok_or(Error::<T>::UnknownOrigin)?;
            ensure!(
                !RouteStates::<T>::get(checkpoint.origin).0,
                Error::<T>::RoutePaused
            );
            ensure!(
                config.outbox == checkpoint.outbox,
                Error::<T>::OutboxMismatch
            );
            let digest = Self::checkpoint_digest(checkpoint);
            let (have, mut outcomes) = verify::check_quorum(&digest, &config.signers, attestations);
            // During an update's overlap, a quorum of the replaced set (never a mix).
            let in_overlap = T::UnixTime::now().as_secs() <= config.previous_until;
            if have < config.threshold {
                ensure!(in_overlap, Error::<T>::QuorumNotReached);
                let (previous, previous_outcomes) =
                    verify::check_quorum(&digest, &config.previous_signers, attestations);
                ensure!(
                    previous >= config.previous_threshold,
                    Error::<T>::QuorumNotReached
                );
                outcomes = previous_outcomes;
            }
            Self::deposit_event(Event::CheckpointAccepted {
                origin: checkpoint.origin,
                digest,
                outcomes,
            });
            Ok(())
        }

        /// The digest the current signers sign to authorise `update` of this pallet's
        /// signer sets: it binds this chain's genesis hash and ledger id
        /// ([`isthmus_protocol::SignerSetUpdate::pallet_digest`]).
        pub fn signer_set_update_digest(update: &isthmus_protocol::SignerSetUpdate) -> [u8; 32] {
            update.pallet_digest(Self::genesis_hash(), T::LedgerId::get())
        }

        /// The digest members sign to pause or resume a route here: it binds this
        /// chain's genesis hash and ledger id
        /// ([`isthmus_protocol::RouteControl::pallet_digest`]).
        pub fn route_control_digest(control: &isthmus_protocol::RouteControl) -> [u8; 32] {
            control.pallet_digest(Self::genesis_hash(), T::LedgerId::get())
        }

        /// The digest members sign to release or reject a hold here: it binds this
        /// chain's genesis hash and ledger id
        /// ([`isthmus_protocol::HoldDecision::pallet_digest`]).
        pub fn hold_decision_digest(decision: &isthmus_protocol::HoldDecision) -> [u8; 32] {
            decision.pallet_digest(Self::genesis_hash(), T::LedgerId::get())
        }

        /// This chain's genesis hash, which the governance digests bind.
        pub(crate) fn genesis_hash() -> [u8; 32] {
            let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::default());
            <[u8; 32]>::try_from(genesis.as_ref()).unwrap_or([0u8; 32])
        }

        /// Moves a hold still waiting to released or rejected, with a quorum of the
        /// origin's current set; returns the distinct signers counted.
        fn decide(
            origin_ledger: u32,
            id: [u8; 32],
            action: isthmus_protocol::HoldAction,
            attestations: &[AttestationBytes],
        ) -> Result<u32, DispatchError> {
            ensure!(
                attestations.len() <= T::MaxAttestations::get() as usize,
                Error::<T>::TooManyAttestations
            );
            let mut hold = Holds::<T>::get(id)
                .filter(|h| h.state == HoldState::Held && h.origin == origin_ledger)
                .ok_or(Error::<T>::NotHeld)?;
            ensure!(
                T::UnixTime::now().as_secs() <= hold.since.saturating_add(HOLD_PERIOD_S),
                Error::<T>::HoldExpired
            );
            let config = Origins::<T>::get(origin_ledger).ok_or(Error::<T>::UnknownOrigin)?;
            let digest = Self::hold_decision_digest(&isthmus_protocol::HoldDecision {
                origin: origin_ledger,
                id,
                action,
            });
            let (have, _) = verify::check_quorum(&digest, &config.signers, attestations);
            ensure!(have >= config.threshold, Error::<T>::QuorumNotReached);
            hold.state = match action {
                isthmus_protocol::HoldAction::Release => HoldState::Released,
                isthmus_protocol::HoldAction::Reject => HoldState::Rejected,
            };
            Holds::<T>::insert(id, hold);
            Ok(have)
        }

        /// The digest members of this pallet's network sign, computed with the keccak
        /// host function over the protocol crate's preimage.
        pub fn checkpoint_digest(checkpoint: &CheckpointArg) -> [u8; 32] {
            let network = isthmus_protocol::Network(T::Network::get());
            let preimage = isthmus_protocol::Checkpoint::from(*checkpoint).preimage(&network);
            sp_io::hashing::keccak_256(&preimage)
        }

        /// Structural checks (refuse), then replay (skip), then a hold still waiting
        /// (kept), then the end: expired past its deadline, a decided or expired hold,
        /// or handed over. Adds the message's receipt to `receipts`.
        fn deliver(
            checkpoint: &CheckpointArg,
            encoded: &[u8],
            branch: &BranchSiblings,
            receipts: &mut Receipts<T>,
        ) -> Result<Delivery, DispatchError> {
            let message = Message::decode(encoded).map_err(|_| Error::<T>::MalformedMessage)?;
            let id = sp_io::hashing::keccak_256(encoded);
            ensure!(message.origin == checkpoint.origin, Error::<T>::WrongOrigin);
            ensure!(
                message.destination == T::LedgerId::get(),
                Error::<T>::WrongDestination
            );
            ensure!(
                verify::branch_verifies(
                    &id,
                    message.nonce,
                    branch,
                    &checkpoint.root,
                    u64::from(checkpoint.count)
                ),
                Error::<T>::InvalidBranch
            );
            if message.nonce < LowWater::<T>::get(message.origin)
                || Processed::<T>::contains_key(id)
            {
                return Ok(Delivery::Skipped(id, SkipReason::AlreadyProcessed));
            }
            let (origin, nonce) = (message.origin, message.nonce);
            let now = T::UnixTime::now().as_secs();
            // No hold is read while the origin has none.
            let hold = if receipts.held == 0 {
                None
            } else {
                Holds::<T>::get(id)
            };
            if let Some(h) = hold {
                let waiting = h.state == HoldState::Held
                    && now <= h.since.saturating_add(HOLD_PERIOD_S)
                    && !message.is_expired_at(now);
                if waiting {
                    // Still waiting for a decision: not executed, still deliverable.
                    Self::deposit_event(Event::MessageHeld {
                        id,
                        origin,
                        nonce,
                        reason: h.reason,
                    });
                    return Ok(Delivery::HandlerFailed);
                }
            }
            // Marked first so that a re-entrant delivery of the same id is a replay.
            Processed::<T>::insert(id, frame_system::Pallet::<T>::block_number());
            EndedIds::<T>::insert(origin, nonce, id);
            let delivery = Self::end_or_hand_over(id, &message, hold, now, receipts);
            if hold.is_some() && matches!(delivery, Delivery::Ended) {
                Holds::<T>::remove(id);
                HeldCount::<T>::mutate(origin, |n| *n = n.saturating_sub(1));
                receipts.held = receipts.held.saturating_sub(1);
            }
            Ok(delivery)
        }

        /// Ends a marked message (expired; its hold rejected or expired; or handed
        /// over) or, if its handler fails or holds it, unmarks it.
        fn end_or_hand_over(
            id: [u8; 32],
            message: &Message,
            hold: Option<Hold>,
            now: u64,
            receipts: &mut Receipts<T>,
        ) -> Delivery {
            use isthmus_protocol::ReceiptOutcome;
            let (origin, nonce) = (message.origin, message.nonce);
            if message.is_expired_at(now) {
                Self::deposit_event(Event::MessageExpired { id, origin, nonce });
                receipts.add(id, nonce, ReceiptOutcome::Expired, [0u8; 32]);
                return Delivery::Ended;
            }
            match hold.map(|h| h.state) {
                Some(HoldState::Rejected) => {
                    Self::refuse(id, message, codes::HOLD_REJECTED, receipts);
                    return Delivery::Ended;
                }
                Some(HoldState::Held) => {
                    Self::refuse(id, message, codes::HOLD_EXPIRED, receipts);
                    return Delivery::Ended;
                }
                Some(HoldState::Released) | None => {}
            }
            if message.recipient.0 == INBOX_ID {
                Self::take_receipts(id, message, receipts);
                return Delivery::Ended;
            }
            let released = hold.is_some();
            let result = frame_support::storage::with_transaction(|| {
                let handled = if released {
                    T::MessageHandler::handle_released(message)
                } else {
                    T::MessageHandler::handle(message)
                };
                match handled {
                    Ok(Handled::Held(reason)) if !released => {
                        sp_runtime::TransactionOutcome::Rollback(Ok(Handled::Held(reason)))
                    }
                    Ok(Handled::Held(_)) => sp_runtime::TransactionOutcome::Rollback(Err(
                        DispatchError::Other("held again after its release"),
                    )),
                    Ok(handled) => sp_runtime::TransactionOutcome::Commit(Ok(handled)),
                    Err(e) => sp_runtime::TransactionOutcome::Rollback(Err(e)),
                }
            });
            match result {
                Ok(Handled::Accepted(answer)) => {
                    Self::deposit_event(Event::MessageProcessed { id, origin, nonce });
                    receipts.add(id, nonce, ReceiptOutcome::Delivered, answer);
                    Delivery::Ended
                }
                Ok(Handled::Refused(code)) => {
                    Self::refuse(id, message, code, receipts);
                    Delivery::Ended
                }
                Ok(Handled::Held(reason)) => {
                    Processed::<T>::remove(id);
                    EndedIds::<T>::remove(origin, nonce);
                    Self::hold(id, origin, reason, now, receipts);
                    Self::deposit_event(Event::MessageHeld {
                        id,
                        origin,
                        nonce,
                        reason,
                    });
                    Delivery::HandlerFailed
                }
                Err(error) => {
                    Processed::<T>::remove(id);
                    EndedIds::<T>::remove(origin, nonce);
                    Self::deposit_event(Event::MessageHandlerFailed {
                        id,
                        origin,
                        nonce,
                        error,
                    });
                    Delivery::HandlerFailed
                }
            }
        }

        /// Records a new hold of `id` (a message repeated in one batch is held once).
        fn hold(id: [u8; 32], origin: u32, reason: [u8; 32], now: u64, receipts: &mut Receipts<T>) {
            if Holds::<T>::contains_key(id) {
                return;
            }
            Holds::<T>::insert(
                id,
                Hold {
                    state: HoldState::Held,
                    origin,
                    since: now,
                    reason,
                },
            );
            HeldCount::<T>::mutate(origin, |n| *n = n.saturating_add(1));
            receipts.held = receipts.held.saturating_add(1);
        }

        /// Ends `message` refused with `code`, with its receipt.
        fn refuse(id: [u8; 32], message: &Message, code: [u8; 32], receipts: &mut Receipts<T>) {
            let (origin, nonce) = (message.origin, message.nonce);
            Self::deposit_event(Event::MessageRefused {
                id,
                origin,
                nonce,
                code,
            });
            receipts.add(id, nonce, isthmus_protocol::ReceiptOutcome::Refused, code);
        }

        /// A message to the inbox itself: from the origin's receipt endpoint it is a
        /// receipt batch, delivered and ending without a receipt of its own; from
        /// anyone else it is refused (with a receipt). A would-be batch from the
        /// endpoint that is not receipts ends refused, without one.
        fn take_receipts(id: [u8; 32], message: &Message, receipts: &mut Receipts<T>) {
            use isthmus_protocol::{MAX_RECEIPTS, RECEIPT_LEN};
            let (origin, nonce) = (message.origin, message.nonce);
            if ReceiptEndpoints::<T>::get(origin) != Some(message.sender.0) {
                return Self::refuse(id, message, codes::NOT_RECEIPTS, receipts);
            }
            let body = &message.body;
            if body.is_empty()
                || !body.len().is_multiple_of(RECEIPT_LEN)
                || body.len() > MAX_RECEIPTS * RECEIPT_LEN
            {
                Self::deposit_event(Event::MessageRefused {
                    id,
                    origin,
                    nonce,
                    code: codes::MALFORMED_RECEIPTS,
                });
                return;
            }
            Self::deposit_event(Event::MessageProcessed { id, origin, nonce });
            for receipt in body.chunks_exact(RECEIPT_LEN) {
                Self::take_receipt(origin, receipt);
            }
        }

        /// Takes one receipt from `destination` if it is the first for a message this
        /// outbox sent there, and hands it to the runtime's [`ReceiptHandler`].
        pub(crate) fn take_receipt(destination: u32, bytes: &[u8]) {
            let mut id = [0u8; 32];
            id.copy_from_slice(&bytes[..32]);
            let refused = |code| {
                Self::deposit_event(Event::ReceiptRefused {
                    id,
                    destination,
                    code,
                })
            };
            // One receipt is a batch of one: this checks its outcome byte.
            let Some(receipt) = isthmus_protocol::Receipt::decode_batch(bytes)
                .ok()
                .and_then(|r| r.first().copied())
            else {
                return refused(codes::UNKNOWN_MESSAGE);
            };
            let Some(sent) = Sent::<T>::get(id)
                .filter(|s| s.destination == destination && s.nonce == receipt.nonce)
            else {
                return refused(codes::UNKNOWN_MESSAGE);
            };
            if ReceiptsTaken::<T>::contains_key(id) {
                return refused(codes::DUPLICATE_RECEIPT);
            }
            ReceiptsTaken::<T>::insert(id, ());
            let outcome = receipt.outcome.code();
            Self::deposit_event(Event::ReceiptTaken {
                id,
                destination,
                outcome,
                result: receipt.result,
            });
            let handled = frame_support::storage::with_transaction(|| {
                match T::ReceiptHandler::on_receipt(&sent.sender, destination, &receipt) {
                    Ok(()) => sp_runtime::TransactionOutcome::Commit(Ok(())),
                    Err(e) => sp_runtime::TransactionOutcome::Rollback(Err(e)),
                }
            });
            if let Err(error) = handled {
                PendingReceipts::<T>::insert(
                    id,
                    PendingReceipt {
                        destination,
                        outcome,
                        result: receipt.result,
                    },
                );
                Self::deposit_event(Event::ReceiptHandlerFailed { id, error });
            }
        }

        /// Appends a message from `sender` to the outbox: the next nonce, the tree,
        /// the [`Sent`] entry and the [`Event::Dispatch`]. Returns its id.
        pub(crate) fn do_dispatch(
            sender: [u8; 32],
            destination: u32,
            recipient: [u8; 32],
            deadline: u64,
            body: Vec<u8>,
        ) -> Result<[u8; 32], DispatchError> {
            ensure!(body.len() <= MAX_BODY_LEN, Error::<T>::BodyTooLong);
            let local = T::LedgerId::get();
            ensure!(destination != local, Error::<T>::DestinationIsLocal);
            // Delivery happens in a later block, whose time is at least this one's.
            ensure!(
                deadline == 0 || deadline > T::UnixTime::now().as_secs(),
                Error::<T>::DeadlinePassed
            );
            let count = OutboxCount::<T>::get();
            ensure!(
                u64::from(count) < isthmus_protocol::merkle::MAX_LEAVES,
                Error::<T>::OutboxFull
            );
            let message = Message {
                nonce: u64::from(count),
                origin: local,
                sender: Address32::from_account_id(sender),
                destination,
                recipient: Address32(recipient),
                deadline,
                body,
            };
            let encoded = message.encode();
            let id = sp_io::hashing::keccak_256(&encoded);
            let mut frontier = OutboxFrontier::<T>::get();
            verify::tree_insert(&mut frontier, count, id);
            let new_count = count.saturating_add(1);
            OutboxFrontier::<T>::put(frontier);
            OutboxCount::<T>::put(new_count);
            OutboxRoot::<T>::put(verify::tree_root(&frontier, new_count));
            Sent::<T>::insert(
                id,
                SentMessage {
                    sender,
                    destination,
                    nonce: message.nonce,
                },
            );
            Self::deposit_event(Event::Dispatch {
                id,
                destination,
                nonce: message.nonce,
                message: encoded,
            });
            Ok(id)
        }

        /// The most one delivered message of `len` bytes can take besides `process`'s
        /// own checks: its handler's bound, or, for a receipt batch, taking each of
        /// its receipts with the receipt handler's bound (charged both: the pallet
        /// knows which only after decoding).
        ///
        /// The benchmarks measure the path where the handler refuses at once; a
        /// failing handler costs the pallet two more writes (the message's marks
        /// removed again), a failing receipt handler one (the pending receipt), and a
        /// hold a read (the message's hold, read while its origin has any) and two
        /// writes (the hold and the origin's count; charged here, not benchmarked).
        pub fn message_weight(len: u32) -> Weight {
            let body = (len as usize).saturating_sub(isthmus_protocol::MESSAGE_HEADER_LEN);
            let receipts =
                (body / isthmus_protocol::RECEIPT_LEN).min(isthmus_protocol::MAX_RECEIPTS) as u32;
            let db = T::DbWeight::get();
            T::MessageHandler::weight(len)
                .saturating_add(db.writes(2))
                .saturating_add(db.reads_writes(1, 2))
                .saturating_add(
                    T::WeightInfo::take_receipt()
                        .saturating_add(T::ReceiptHandler::weight())
                        .saturating_add(db.writes(1))
                        .saturating_mul(u64::from(receipts)),
                )
        }

        /// The receipt batches `n` ended messages can make: one dispatch of a full
        /// batch per [`isthmus_protocol::MAX_RECEIPTS`] of them (and the submission's
        /// read of the origin's held count).
        pub fn receipts_sent_weight(n: u32) -> Weight {
            let batches = n.div_ceil(isthmus_protocol::MAX_RECEIPTS as u32);
            let full = (isthmus_protocol::MAX_RECEIPTS * isthmus_protocol::RECEIPT_LEN) as u32;
            T::WeightInfo::dispatch(full)
                .saturating_mul(u64::from(batches))
                // The origin's held count, read once per submission.
                .saturating_add(T::DbWeight::get().reads(1))
        }

        /// Whether `id` was processed (for relayers and runtime APIs).
        pub fn is_processed(id: &[u8; 32]) -> bool {
            Processed::<T>::contains_key(id)
        }
    }
}

impl<T: Config> Dispatcher for Pallet<T> {
    fn dispatch_from(
        sender: [u8; 32],
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: Vec<u8>,
    ) -> Result<[u8; 32], DispatchError> {
        Self::do_dispatch(sender, destination, recipient, deadline, body)
    }

    fn dispatch_weight(body_len: u32) -> Weight {
        T::WeightInfo::dispatch(body_len)
    }
}
