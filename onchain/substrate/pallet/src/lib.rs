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
//!   root and count, the origin, the destination, replays and deadlines (the runtime's
//!   [`UnixTime`], i.e. the timestamp pallet), then hand the message to the runtime's
//!   [`MessageHandler`].
//!
//! **A failing handler does not consume the message.** The id is marked processed
//! before the handler runs (a re-entrant delivery is a replay); the handler runs in
//! its own storage transaction; if it fails, its writes and the mark are rolled back,
//! [`Event::MessageHandlerFailed`] is emitted and the extrinsic still succeeds, so the
//! message can be delivered again later. Business refusals of an application are not
//! handler failures: the application records them and returns `Ok`.
//!
//! **Outbox id.** The checkpoint's `outbox` field for this pallet is
//! [`OUTBOX_ID`] = `keccak256("isthmus pallet outbox")`: there is one outbox per
//! runtime, and the origin's ledger id already separates runtimes.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

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
/// Inbox's `SkipReason`): both can happen to an honest relayer racing another member.
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
    /// The id was processed before.
    AlreadyProcessed,
    /// The deadline passed at this block's time.
    Expired,
}

/// Where the runtime routes delivered messages, chosen by the runtime (the analogue of
/// the Solidity recipient contract, selected by the message's `recipient`).
pub trait MessageHandler {
    /// Handles one verified, not yet processed, unexpired message.
    ///
    /// Returning `Err` means "not handled": the pallet rolls back the handler's writes,
    /// does not consume the message and reports the error in
    /// [`Event::MessageHandlerFailed`]. Business refusals that must be final are `Ok`.
    fn handle(message: &isthmus_protocol::Message) -> Result<(), DispatchError>;

    /// An upper bound of [`MessageHandler::handle`]'s weight for a body of `body_len`
    /// bytes, charged by the pallet before the call.
    fn weight(body_len: u32) -> Weight;
}

/// A runtime with no recipients: every message fails and stays deliverable.
impl MessageHandler for () {
    fn handle(_message: &isthmus_protocol::Message) -> Result<(), DispatchError> {
        Err(DispatchError::Other("no message handler in this runtime"))
    }

    fn weight(_body_len: u32) -> Weight {
        Weight::zero()
    }
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
        /// Who may configure origins: Root in the dev runtime.
        type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// Block time, for deadlines: the timestamp pallet.
        type UnixTime: UnixTime;
        /// Where delivered messages go.
        type MessageHandler: MessageHandler;
        /// Largest signer set per origin.
        #[pallet::constant]
        type MaxSigners: Get<u32>;
        /// Largest number of attestations one call may carry.
        #[pallet::constant]
        type MaxAttestations: Get<u32>;
        /// Largest number of messages in one [`Pallet::process_batch`].
        #[pallet::constant]
        type MaxBatch: Get<u32>;
        /// Weights of the calls.
        type WeightInfo: WeightInfo;
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

    /// Origins retired by [`Pallet::remove_origin`]: never set up again, so the admin
    /// cannot replace a signer set by removing the origin and setting it up anew.
    #[pallet::storage]
    pub type RetiredOrigins<T: Config> = StorageMap<_, Twox64Concat, u32, (), OptionQuery>;

    /// Ids of processed messages (permanent replay protection), with the block that
    /// processed them. Hashed with blake2: ids are chosen by remote senders.
    #[pallet::storage]
    pub type Processed<T: Config> =
        StorageMap<_, Blake2_128Concat, [u8; 32], BlockNumberFor<T>, OptionQuery>;

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
                 {room:?}: lower the runtime's MessageHandler::weight or MaxAttestations"
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
        /// A batch item was skipped (already processed or expired).
        MessageSkipped {
            /// Message id.
            id: [u8; 32],
            /// Why.
            reason: SkipReason,
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
        /// The message was processed before.
        AlreadyProcessed,
        /// The message's deadline passed.
        Expired,
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
            let sender: [u8; 32] = who.into();
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
            Self::deposit_event(Event::Dispatch {
                id,
                destination,
                nonce: message.nonce,
                message: encoded,
            });
            Ok(())
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

        /// Delivers one message under an attested checkpoint. Any refusal fails the
        /// extrinsic; a handler failure does not (see the crate docs).
        #[pallet::call_index(3)]
        #[pallet::weight(
            T::WeightInfo::process(attestations.len().try_into().unwrap_or(u32::MAX), message.len().try_into().unwrap_or(u32::MAX))
                .saturating_add(T::MessageHandler::weight(message.len().try_into().unwrap_or(u32::MAX)))
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
            match Self::deliver(&checkpoint, &message, &branch)? {
                Delivery::Skipped(_, SkipReason::AlreadyProcessed) => {
                    Err(Error::<T>::AlreadyProcessed.into())
                }
                Delivery::Skipped(_, SkipReason::Expired) => Err(Error::<T>::Expired.into()),
                Delivery::Handled | Delivery::HandlerFailed => Ok(()),
            }
        }

        /// Delivers many messages of one checkpoint, verifying its quorum once.
        /// Structural faults refuse the whole batch; an already processed or expired
        /// message is skipped with [`Event::MessageSkipped`].
        #[pallet::call_index(4)]
        #[pallet::weight({
            let n: u32 = items.len().try_into().unwrap_or(u32::MAX);
            let bytes: u32 = items.iter().map(|(m, _)| m.len()).sum::<usize>().try_into().unwrap_or(u32::MAX);
            let handler = items.iter().fold(Weight::zero(), |w, (m, _)| {
                w.saturating_add(T::MessageHandler::weight(m.len().try_into().unwrap_or(u32::MAX)))
            });
            T::WeightInfo::process_batch(attestations.len().try_into().unwrap_or(u32::MAX), n, bytes)
                .saturating_add(handler)
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
            for (message, branch) in &items {
                if let Delivery::Skipped(id, reason) = Self::deliver(&checkpoint, message, branch)?
                {
                    Self::deposit_event(Event::MessageSkipped { id, reason });
                }
            }
            Ok(())
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
    }

    /// What became of one message that passed the structural checks.
    enum Delivery {
        Handled,
        HandlerFailed,
        Skipped([u8; 32], SkipReason),
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
                .saturating_add(T::MessageHandler::weight(len))
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
            let config = Origins::<T>::get(checkpoint.origin).ok_or(Error::<T>::UnknownOrigin)?;
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
            let genesis = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::default());
            let genesis = <[u8; 32]>::try_from(genesis.as_ref()).unwrap_or([0u8; 32]);
            update.pallet_digest(genesis, T::LedgerId::get())
        }

        /// The digest members sign, computed with the keccak host function over the
        /// protocol crate's preimage.
        pub fn checkpoint_digest(checkpoint: &CheckpointArg) -> [u8; 32] {
            let preimage = isthmus_protocol::Checkpoint::from(*checkpoint).preimage();
            sp_io::hashing::keccak_256(&preimage)
        }

        /// Structural checks (refuse), then replay and deadline (skip), then hand over.
        fn deliver(
            checkpoint: &CheckpointArg,
            encoded: &[u8],
            branch: &BranchSiblings,
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
            if Processed::<T>::contains_key(id) {
                return Ok(Delivery::Skipped(id, SkipReason::AlreadyProcessed));
            }
            let now = T::UnixTime::now().as_secs();
            if message.is_expired_at(now) {
                return Ok(Delivery::Skipped(id, SkipReason::Expired));
            }
            // Marked first so that a re-entrant delivery of the same id is a replay.
            Processed::<T>::insert(id, frame_system::Pallet::<T>::block_number());
            let result =
                frame_support::storage::with_transaction(|| {
                    match T::MessageHandler::handle(&message) {
                        Ok(()) => sp_runtime::TransactionOutcome::Commit(Ok(())),
                        Err(e) => sp_runtime::TransactionOutcome::Rollback(Err(e)),
                    }
                });
            match result {
                Ok(()) => {
                    Self::deposit_event(Event::MessageProcessed {
                        id,
                        origin: message.origin,
                        nonce: message.nonce,
                    });
                    Ok(Delivery::Handled)
                }
                Err(error) => {
                    Processed::<T>::remove(id);
                    Self::deposit_event(Event::MessageHandlerFailed {
                        id,
                        origin: message.origin,
                        nonce: message.nonce,
                        error,
                    });
                    Ok(Delivery::HandlerFailed)
                }
            }
        }

        /// Whether `id` was processed (for relayers and runtime APIs).
        pub fn is_processed(id: &[u8; 32]) -> bool {
            Processed::<T>::contains_key(id)
        }
    }
}
