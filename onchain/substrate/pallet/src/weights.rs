//! Weights of the pallet's calls.
//!
//! **These are hand-made estimates, not benchmark results.** No benchmarking node
//! exists on the project's machines, so each weight is built from counted storage
//! accesses (priced by the runtime's `DbWeight`) plus a reference time per operation,
//! rounded up:
//!
//! | operation | estimate | why |
//! |---|---|---|
//! | keccak-256 in wasm over ≤ 64 bytes | 2 µs | protocol crate's tiny-keccak compiled to wasm |
//! | keccak-256 host call per KiB | 5 µs | native keccak plus copying the input |
//! | secp256k1 recovery host call | 60 µs | libsecp256k1 recovery is ~50 µs natively |
//! | Merkle insertion and root | 70 µs | up to 32 + 32 node hashes through the host's keccak (the zero hashes are a constant table) |
//! | branch verification | 70 µs | 32 node hashes through the host's keccak, plus the message id |
//!
//! Counted besides: the timestamp read of every delivery, the removal of a processed
//! mark when a handler fails, and one event write per checkpoint and per message.
//!
//! Proof sizes are the maximum encoded sizes of the values read (frontier 1,024 bytes,
//! an origin with 255 signers about 5.2 KiB, a processed-id entry 64 bytes), so a
//! parachain-style proof-size limit stays honest too. Replace with benchmarked values
//! before production.

use frame_support::traits::Get;
use frame_support::weights::{constants::RocksDbWeight, Weight};

/// Weight functions the pallet charges.
pub trait WeightInfo {
    /// `dispatch` with a body of `b` bytes.
    fn dispatch(b: u32) -> Weight;
    /// `set_origin` with `s` signers.
    fn set_origin(s: u32) -> Weight;
    /// `remove_origin`.
    fn remove_origin() -> Weight;
    /// `update_signers` with `s` new signers and `a` attestations.
    fn update_signers(s: u32, a: u32) -> Weight;
    /// `process` with `a` attestations and a message of `b` bytes (handler excluded).
    fn process(a: u32, b: u32) -> Weight;
    /// `process_batch` with `a` attestations, `n` messages, `b` bytes in all
    /// (handlers excluded).
    fn process_batch(a: u32, n: u32, b: u32) -> Weight;
    /// Taking one receipt of a receipt batch (the receipt handler excluded).
    fn take_receipt() -> Weight;
    /// `pause_route` (`a` = 1) or `resume_route` with `a` attestations.
    fn control_route(a: u32) -> Weight;
    /// `prune` of at most `n` entries.
    fn prune(n: u32) -> Weight;
}

/// Picosecond units of reference time.
const MICROS: u64 = 1_000_000;

/// Reference time of one secp256k1 recovery through the host.
const RECOVER: u64 = 60 * MICROS;
/// Reference time of hashing one KiB with the host keccak (and decoding it).
const PER_KIB: u64 = 5 * MICROS;
/// Reference time of a Merkle insertion plus the new root, or of a branch check.
const TREE: u64 = 70 * MICROS;
/// Largest encoded origin configuration (255 signers of 20 bytes plus the rest).
const ORIGIN_PROOF: u64 = 5_300;

fn kib(bytes: u32) -> u64 {
    u64::from(bytes).div_ceil(1024)
}

/// Estimates priced with the runtime's database weights.
pub struct SubstrateWeight<T>(core::marker::PhantomData<T>);

fn estimate(db: frame_support::weights::RuntimeDbWeight, a: u32, n: u32, b: u32) -> Weight {
    // Reads: the network id (a storage parameter in the dev runtime), the origin,
    // its route state, the time, per message its origin's low-water mark and its
    // processed mark.
    // Writes: per message the mark and its (origin, nonce) index and, when its
    // handler fails, their removal; the events (the checkpoint's, then one per
    // message).
    let n = u64::from(n);
    Weight::from_parts(
        20 * MICROS + u64::from(a) * RECOVER + n * (TREE + 10 * MICROS) + kib(b) * PER_KIB * 2,
        ORIGIN_PROOF + n * 64 + u64::from(b),
    )
    .saturating_add(db.reads(4 + 2 * n))
    .saturating_add(db.writes(1 + 5 * n))
}

fn control_route_weight(db: frame_support::weights::RuntimeDbWeight, a: u32) -> Weight {
    // Reads the origin, its route state and the genesis hash; recovers each
    // attestation; writes the route state and the event.
    Weight::from_parts(20 * MICROS + u64::from(a) * RECOVER, ORIGIN_PROOF + 16)
        .saturating_add(db.reads(3))
        .saturating_add(db.writes(2))
}

fn update_signers_weight(db: frame_support::weights::RuntimeDbWeight, s: u32, a: u32) -> Weight {
    // Reads the origin, the genesis hash and the time; checks the new set (quadratic
    // duplicate check), hashes it and recovers each attestation; writes the origin.
    Weight::from_parts(
        30 * MICROS + u64::from(s) * u64::from(s) * 20_000 + u64::from(a) * RECOVER,
        ORIGIN_PROOF + 64,
    )
    .saturating_add(db.reads(3))
    .saturating_add(db.writes(2))
}

fn dispatch_weight(db: frame_support::weights::RuntimeDbWeight, b: u32) -> Weight {
    // Reads the time, count and frontier; writes count, frontier, root and the sent
    // entry, and the event.
    Weight::from_parts(30 * MICROS + TREE + kib(b) * PER_KIB * 2, 1_100)
        .saturating_add(db.reads(3))
        .saturating_add(db.writes(5))
}

fn prune_weight(db: frame_support::weights::RuntimeDbWeight, n: u32) -> Weight {
    // Reads the origin, the mark, the time and per entry its index and its processed
    // mark; removes both per entry; writes the mark and the event.
    let n = u64::from(n);
    Weight::from_parts(10 * MICROS + n * 5 * MICROS, ORIGIN_PROOF + n * 2 * 64)
        .saturating_add(db.reads(3 + 2 * n))
        .saturating_add(db.writes(2 + 2 * n))
}

fn take_receipt_weight(db: frame_support::weights::RuntimeDbWeight) -> Weight {
    // Decodes 73 bytes; reads the sent entry and the taken mark; writes the mark, a
    // pending entry when the handler fails, and the events.
    Weight::from_parts(10 * MICROS, 2 * 64)
        .saturating_add(db.reads(2))
        .saturating_add(db.writes(4))
}

impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
    fn dispatch(b: u32) -> Weight {
        dispatch_weight(T::DbWeight::get(), b)
    }
    fn set_origin(s: u32) -> Weight {
        Weight::from_parts(15 * MICROS + u64::from(s) * u64::from(s) * 20_000, 0)
            .saturating_add(T::DbWeight::get().reads_writes(2, 1))
    }
    fn remove_origin() -> Weight {
        Weight::from_parts(15 * MICROS, ORIGIN_PROOF)
            .saturating_add(T::DbWeight::get().reads_writes(1, 2))
    }
    fn update_signers(s: u32, a: u32) -> Weight {
        update_signers_weight(T::DbWeight::get(), s, a)
    }
    fn process(a: u32, b: u32) -> Weight {
        estimate(T::DbWeight::get(), a, 1, b)
    }
    fn process_batch(a: u32, n: u32, b: u32) -> Weight {
        estimate(T::DbWeight::get(), a, n, b)
    }
    fn take_receipt() -> Weight {
        take_receipt_weight(T::DbWeight::get())
    }
    fn control_route(a: u32) -> Weight {
        control_route_weight(T::DbWeight::get(), a)
    }
    fn prune(n: u32) -> Weight {
        prune_weight(T::DbWeight::get(), n)
    }
}

/// The same estimates priced with RocksDB weights, for tests and mocks.
impl WeightInfo for () {
    fn dispatch(b: u32) -> Weight {
        dispatch_weight(RocksDbWeight::get(), b)
    }
    fn set_origin(s: u32) -> Weight {
        Weight::from_parts(15 * MICROS + u64::from(s) * u64::from(s) * 20_000, 0)
            .saturating_add(RocksDbWeight::get().reads_writes(2, 1))
    }
    fn remove_origin() -> Weight {
        Weight::from_parts(15 * MICROS, ORIGIN_PROOF)
            .saturating_add(RocksDbWeight::get().reads_writes(1, 2))
    }
    fn update_signers(s: u32, a: u32) -> Weight {
        update_signers_weight(RocksDbWeight::get(), s, a)
    }
    fn process(a: u32, b: u32) -> Weight {
        estimate(RocksDbWeight::get(), a, 1, b)
    }
    fn process_batch(a: u32, n: u32, b: u32) -> Weight {
        estimate(RocksDbWeight::get(), a, n, b)
    }
    fn take_receipt() -> Weight {
        take_receipt_weight(RocksDbWeight::get())
    }
    fn control_route(a: u32) -> Weight {
        control_route_weight(RocksDbWeight::get(), a)
    }
    fn prune(n: u32) -> Weight {
        prune_weight(RocksDbWeight::get(), n)
    }
}
