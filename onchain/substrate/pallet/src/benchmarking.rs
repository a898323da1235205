//! Benchmarks of the pallet's calls (FRAME benchmarking v2), one per [`WeightInfo`]
//! function, with the same names and components, so that `make pallet-weights`
//! writes `weights.rs` straight from them (docs/substrate.md, "Weights").
//!
//! Every benchmark takes the expensive path of its call:
//!
//! - attestations are real secp256k1 signatures, each recovered by the host;
//! - origins carry `MaxSigners` signers, the largest value a delivery reads;
//! - `dispatch` inserts the leaf that climbs 31 levels of the outbox's tree;
//! - deliveries go to [`BENCH_RECIPIENT`], an address with no application behind
//!   it: the runtime's [`MessageHandler`] and [`ReceiptHandler`] declare their own
//!   weights, which the calls add (`Pallet::message_weight`), so the benchmarks
//!   measure the pallet alone;
//! - the time is a running chain's ([`BenchmarkHelper::set_time`]): at genesis the
//!   timestamp pallet logs every read of its 0, and the log would be measured;
//! - `process_batch`'s `b` is the bytes of all bodies, split evenly; the call passes
//!   the bytes of the whole messages, 93 more per message, so it charges a little more.
//!
//! Only the setup signs (with `k256` inside the runtime); the measured code does what
//! it does on chain.

use super::*;
use crate::pallet::{
    EndedIds, LowWater, Origins, OutboxCount, Processed, ReceiptsTaken, RouteStates, Sent,
};
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::traits::Get;
use frame_system::pallet_prelude::BlockNumberFor;
use frame_system::RawOrigin;
use isthmus_protocol::{Address32, Attestation, MerkleTree, Message};
use k256::ecdsa::SigningKey;

/// A recipient no runtime serves: the handler refuses it at once.
pub(crate) const BENCH_RECIPIENT: [u8; 32] = [0xb0; 32];

/// The benchmarked origin's outbox id.
const BENCH_OUTBOX: [u8; 32] = [0x5f; 32];

/// An origin ledger other than this one.
fn origin_ledger<T: Config>() -> u32 {
    T::LedgerId::get().wrapping_add(1)
}

/// Benchmark signer `i`'s key, derived from its index.
fn key(i: u32) -> SigningKey {
    let mut seed = b"isthmus benchmark signer ".to_vec();
    seed.extend_from_slice(&i.to_be_bytes());
    let secret = sp_io::hashing::keccak_256(&seed);
    // A keccak output is zero or above the curve order with probability ~2^-128.
    SigningKey::from_slice(&secret).expect("a keccak output is a secp256k1 secret key")
}

fn address(key: &SigningKey) -> SignerAddress {
    isthmus_protocol::attestation::address_of(key.verifying_key())
}

fn sign(key: &SigningKey, digest: &[u8; 32]) -> AttestationBytes {
    Attestation::sign(key, digest)
        .expect("k256 signs any digest")
        .0
}

/// `count` attestations over `digest`, by the keys in turn.
fn attest(keys: &[SigningKey], digest: &[u8; 32], count: u32) -> Vec<AttestationBytes> {
    (0..count as usize)
        .map(|i| sign(&keys[i % keys.len()], digest))
        .collect()
}

/// A time of a running chain (2027-01-15), so that reading it costs what it costs
/// there (at genesis the timestamp pallet logs every read of its 0).
const BENCH_TIME_S: u64 = 1_800_000_000;

/// Sets up the benchmarked origin with `MaxSigners` signers and threshold 1, at
/// [`BENCH_TIME_S`]; returns their keys.
fn set_up_origin<T: Config>() -> Vec<SigningKey> {
    T::BenchmarkHelper::set_time(BENCH_TIME_S);
    let keys: Vec<SigningKey> = (0..T::MaxSigners::get()).map(key).collect();
    let signers: Vec<SignerAddress> = keys.iter().map(address).collect();
    let config = Pallet::<T>::validated_origin(origin_ledger::<T>(), BENCH_OUTBOX, &signers, 1)
        .expect("benchmark signers are distinct and non-zero");
    Origins::<T>::insert(origin_ledger::<T>(), config);
    keys
}

/// `n` messages from the benchmarked origin to [`BENCH_RECIPIENT`], nonces `0..n`,
/// `body` bytes each.
fn messages<T: Config>(n: u32, body: u32) -> Vec<Vec<u8>> {
    (0..u64::from(n))
        .map(|nonce| {
            Message {
                nonce,
                origin: origin_ledger::<T>(),
                sender: Address32([0x5e; 32]),
                destination: T::LedgerId::get(),
                recipient: Address32(BENCH_RECIPIENT),
                deadline: 0,
                body: vec![0x42; body as usize],
            }
            .encode()
        })
        .collect()
}

/// The checkpoint of a tree holding exactly `encoded`, and each message's branch.
fn checkpoint_of<T: Config>(encoded: &[Vec<u8>]) -> (CheckpointArg, Vec<BranchSiblings>) {
    let leaves: Vec<[u8; 32]> = encoded
        .iter()
        .map(|m| sp_io::hashing::keccak_256(m))
        .collect();
    let tree = MerkleTree::from_leaves(leaves).expect("a benchmark tree is small");
    let branches = (0..tree.count())
        .map(|i| tree.branch(i).expect("every leaf has a branch").siblings)
        .collect();
    let checkpoint = CheckpointArg {
        origin: origin_ledger::<T>(),
        outbox: BENCH_OUTBOX,
        root: tree.root(),
        count: u32::try_from(tree.count()).expect("a benchmark tree is small"),
        block_number: 7,
        block_hash: [0x7b; 32],
    };
    (checkpoint, branches)
}

#[benchmarks]
mod benchmarks {
    use super::*;

    /// Sending a message of `b` body bytes: the leaf that climbs 31 levels.
    #[benchmark]
    fn dispatch(b: Linear<0, { isthmus_protocol::MAX_BODY_LEN as u32 }>) {
        let caller: T::AccountId = whitelisted_caller();
        T::BenchmarkHelper::set_time(BENCH_TIME_S);
        // Nonce 2^31 - 1 has 31 trailing ones: the insertion hashes up 31 levels.
        OutboxCount::<T>::put(u32::MAX >> 1);
        let body = vec![0x42; b as usize];

        #[extrinsic_call]
        _(
            RawOrigin::Signed(caller),
            origin_ledger::<T>(),
            BENCH_RECIPIENT,
            0,
            body,
        );

        assert_eq!(OutboxCount::<T>::get(), 1 << 31);
    }

    /// Setting up an origin with `s` signers.
    #[benchmark]
    fn set_origin(s: Linear<1, { T::MaxSigners::get() }>) {
        let signers: Vec<SignerAddress> = (0..s).map(|i| address(&key(i))).collect();

        #[extrinsic_call]
        _(
            RawOrigin::Root,
            origin_ledger::<T>(),
            BENCH_OUTBOX,
            signers,
            s,
        );

        assert!(Origins::<T>::contains_key(origin_ledger::<T>()));
    }

    /// Retiring an origin of `MaxSigners` signers.
    #[benchmark]
    fn remove_origin() {
        set_up_origin::<T>();

        #[extrinsic_call]
        _(RawOrigin::Root, origin_ledger::<T>());

        assert!(!Origins::<T>::contains_key(origin_ledger::<T>()));
    }

    /// Replacing the signer set by `s` new signers, with `a` attestations of the
    /// current set.
    #[benchmark]
    fn update_signers(
        s: Linear<1, { T::MaxSigners::get() }>,
        a: Linear<1, { T::MaxAttestations::get() }>,
    ) {
        let caller: T::AccountId = whitelisted_caller();
        let keys = set_up_origin::<T>();
        let next: Vec<SignerAddress> = (0..s).map(|i| address(&key(1_000 + i))).collect();
        let update = isthmus_protocol::SignerSetUpdate {
            origin: origin_ledger::<T>(),
            signers: next.clone(),
            threshold: 1,
            version: 1,
            overlap_s: 0,
        };
        let attestations = attest(&keys, &Pallet::<T>::signer_set_update_digest(&update), a);

        #[extrinsic_call]
        _(
            RawOrigin::Signed(caller),
            origin_ledger::<T>(),
            next,
            1,
            1,
            0,
            attestations,
        );

        let config = Origins::<T>::get(origin_ledger::<T>()).expect("the origin stays");
        assert_eq!(config.version, 1);
    }

    /// Delivering one message of `b` body bytes under `a` attestations.
    #[benchmark]
    fn process(
        a: Linear<1, { T::MaxAttestations::get() }>,
        b: Linear<0, { isthmus_protocol::MAX_BODY_LEN as u32 }>,
    ) {
        let caller: T::AccountId = whitelisted_caller();
        let keys = set_up_origin::<T>();
        let mut encoded = messages::<T>(1, b);
        let (checkpoint, branches) = checkpoint_of::<T>(&encoded);
        let attestations = attest(&keys, &Pallet::<T>::checkpoint_digest(&checkpoint), a);
        let message = encoded.remove(0);
        let id = sp_io::hashing::keccak_256(&message);
        let branch = Box::new(branches[0]);

        #[extrinsic_call]
        _(
            RawOrigin::Signed(caller),
            checkpoint,
            attestations,
            message,
            branch,
        );

        assert!(Processed::<T>::contains_key(id));
    }

    /// Delivering `n` messages of `b` body bytes in all under `a` attestations.
    #[benchmark]
    fn process_batch(
        a: Linear<1, { T::MaxAttestations::get() }>,
        n: Linear<1, { T::MaxBatch::get() }>,
        b: Linear<0, { isthmus_protocol::MAX_BODY_LEN as u32 }>,
    ) {
        let caller: T::AccountId = whitelisted_caller();
        let keys = set_up_origin::<T>();
        let encoded = messages::<T>(n, b / n);
        let (checkpoint, branches) = checkpoint_of::<T>(&encoded);
        let attestations = attest(&keys, &Pallet::<T>::checkpoint_digest(&checkpoint), a);
        let last = sp_io::hashing::keccak_256(encoded.last().expect("n >= 1"));
        let items: Vec<(Vec<u8>, BranchSiblings)> = encoded.into_iter().zip(branches).collect();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), checkpoint, attestations, items);

        assert!(Processed::<T>::contains_key(last));
    }

    /// Taking one receipt of a receipt batch for a message this ledger sent.
    #[benchmark]
    fn take_receipt() {
        T::BenchmarkHelper::set_time(BENCH_TIME_S);
        let destination = origin_ledger::<T>();
        let id = [0x1d; 32];
        let nonce = 7;
        Sent::<T>::insert(
            id,
            SentMessage {
                sender: BENCH_RECIPIENT,
                destination,
                nonce,
            },
        );
        let receipt = isthmus_protocol::Receipt {
            id: isthmus_protocol::MessageId(id),
            nonce,
            outcome: isthmus_protocol::ReceiptOutcome::Delivered,
            result: [0x0a; 32],
        };
        let bytes = isthmus_protocol::Receipt::encode_batch(&[receipt]);

        #[block]
        {
            Pallet::<T>::take_receipt(destination, &bytes);
        }

        assert!(ReceiptsTaken::<T>::contains_key(id));
    }

    /// Resuming a paused route with `a` attestations (pausing checks one).
    #[benchmark]
    fn control_route(a: Linear<1, { T::MaxAttestations::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        let keys = set_up_origin::<T>();
        RouteStates::<T>::insert(origin_ledger::<T>(), (true, 0));
        let digest = Pallet::<T>::route_control_digest(&isthmus_protocol::RouteControl {
            origin: origin_ledger::<T>(),
            action: isthmus_protocol::RouteAction::Resume,
            epoch: 0,
        });
        let attestations = attest(&keys, &digest, a);

        #[extrinsic_call]
        resume_route(
            RawOrigin::Signed(caller),
            origin_ledger::<T>(),
            attestations,
        );

        assert_eq!(RouteStates::<T>::get(origin_ledger::<T>()), (false, 1));
    }

    /// Pruning `n` ended entries, all past `KeepEnded`.
    #[benchmark]
    fn prune(n: Linear<1, 1_000>) {
        let caller: T::AccountId = whitelisted_caller();
        set_up_origin::<T>();
        let origin = origin_ledger::<T>();
        for nonce in 0..u64::from(n) {
            let id = sp_io::hashing::keccak_256(&nonce.to_be_bytes());
            Processed::<T>::insert(id, BlockNumberFor::<T>::default());
            EndedIds::<T>::insert(origin, nonce, id);
        }
        let now = sp_runtime::traits::Saturating::saturating_add(
            T::KeepEnded::get(),
            sp_runtime::traits::One::one(),
        );
        frame_system::Pallet::<T>::set_block_number(now);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), origin, n);

        assert_eq!(LowWater::<T>::get(origin), u64::from(n));
    }

    impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
