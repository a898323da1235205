//! A minimal runtime for the pallet's unit tests: system, timestamp and the pallet,
//! with a handler that writes to storage before deciding, so tests can see that a
//! failed handler's writes are rolled back.

use crate as pallet_isthmus;
use frame_support::{derive_impl, parameter_types, weights::Weight};
use sp_runtime::{AccountId32, BuildStorage, DispatchError};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Timestamp: pallet_timestamp,
        Isthmus: pallet_isthmus,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountId = AccountId32;
    type Lookup = sp_runtime::traits::IdentityLookup<AccountId32>;
    // Priced storage, so that weights which count reads and writes show them.
    type DbWeight = frame_support::weights::constants::RocksDbWeight;
}

#[derive_impl(pallet_timestamp::config_preludes::TestDefaultConfig)]
impl pallet_timestamp::Config for Test {}

parameter_types! {
    pub static LedgerId: u32 = LOCAL;
    /// Blocks an ended message's entry is kept before it may be pruned.
    pub static KeepEnded: u64 = 10;
    /// The test network's id ([`network`]); a test may set another.
    pub static Network: [u8; 32] = network().0;
    /// The test handler's declared weight for an empty message.
    pub static HandlerBaseWeight: u64 = 1_000_000;
    /// Whether the test receipt handler fails for [`FAILING_SENDER`].
    pub static FailReceipts: bool = true;
}

/// This test ledger's id.
pub(crate) const LOCAL: u32 = 2;

/// The test network.
pub(crate) fn network() -> isthmus_protocol::Network {
    isthmus_protocol::Network::named("isthmus pallet tests")
}

/// Storage key where the test handler counts the messages it handled.
pub(crate) const HANDLED_KEY: &[u8] = b"test:handled";

/// A body that makes the test handler fail (after writing to storage).
pub(crate) const FAILING_BODY: &[u8] = b"fail";

/// A body the test handler refuses for good, with [`REFUSAL`].
pub(crate) const REFUSED_BODY: &[u8] = b"refuse";

/// The test handler's refusal code.
pub(crate) const REFUSAL: [u8; 32] = crate::code("test refusal");

/// A body the test handler holds (after writing to storage), with [`HOLD_REASON`];
/// released, it is accepted.
pub(crate) const HELD_BODY: &[u8] = b"hold";

/// The test handler's reason to hold.
pub(crate) const HOLD_REASON: [u8; 32] = crate::code("test limit");

/// The test handler's answer when it accepts: the body's first byte, repeated.
pub(crate) fn answer(body: &[u8]) -> [u8; 32] {
    [body.first().copied().unwrap_or(0); 32]
}

/// Storage key where the test receipt handler keeps the receipts it took.
pub(crate) const RECEIPTS_KEY: &[u8] = b"test:receipts";

/// A sender whose receipts the test receipt handler fails on while
/// [`FailReceipts`] is set (after writing to storage).
pub(crate) const FAILING_SENDER: [u8; 32] = [0xfa; 32];

/// Counts handled messages in storage; fails on [`FAILING_BODY`] after counting, so a
/// missing rollback would show in the count.
pub struct CountingHandler;

impl crate::MessageHandler for CountingHandler {
    fn handle(message: &isthmus_protocol::Message) -> Result<crate::Handled, DispatchError> {
        let n: u32 = frame_support::storage::unhashed::get_or_default(HANDLED_KEY);
        frame_support::storage::unhashed::put(HANDLED_KEY, &(n + 1));
        if message.body == FAILING_BODY {
            return Err(DispatchError::Other("test handler refuses"));
        }
        if message.body == REFUSED_BODY {
            return Ok(crate::Handled::Refused(REFUSAL));
        }
        if message.body == HELD_BODY {
            return Ok(crate::Handled::Held(HOLD_REASON));
        }
        Ok(crate::Handled::Accepted(answer(&message.body)))
    }

    fn handle_released(
        message: &isthmus_protocol::Message,
    ) -> Result<crate::Handled, DispatchError> {
        let n: u32 = frame_support::storage::unhashed::get_or_default(HANDLED_KEY);
        frame_support::storage::unhashed::put(HANDLED_KEY, &(n + 1));
        Ok(crate::Handled::Accepted(answer(&message.body)))
    }

    fn weight(body_len: u32) -> Weight {
        Weight::from_parts(HandlerBaseWeight::get() + u64::from(body_len), 0)
    }
}

pub(crate) fn handled() -> u32 {
    frame_support::storage::unhashed::get_or_default(HANDLED_KEY)
}

/// Keeps `(sender, destination, id, outcome, result)` of every receipt it takes; fails
/// for [`FAILING_SENDER`] while [`FailReceipts`] is set, after writing.
pub struct RecordingReceipts;

/// What [`RecordingReceipts`] took.
pub(crate) type Taken = Vec<([u8; 32], u32, [u8; 32], u8, [u8; 32])>;

impl crate::ReceiptHandler for RecordingReceipts {
    fn on_receipt(
        sender: &[u8; 32],
        destination: u32,
        receipt: &isthmus_protocol::Receipt,
    ) -> Result<(), DispatchError> {
        let mut taken: Taken = frame_support::storage::unhashed::get_or_default(RECEIPTS_KEY);
        taken.push((
            *sender,
            destination,
            receipt.id.0,
            receipt.outcome.code(),
            receipt.result,
        ));
        frame_support::storage::unhashed::put(RECEIPTS_KEY, &taken);
        if *sender == FAILING_SENDER && FailReceipts::get() {
            return Err(DispatchError::Other("test receipt handler fails"));
        }
        Ok(())
    }

    fn weight() -> Weight {
        Weight::from_parts(2_000_000, 0)
    }
}

pub(crate) fn receipts_taken() -> Taken {
    frame_support::storage::unhashed::get_or_default(RECEIPTS_KEY)
}

impl pallet_isthmus::Config for Test {
    type LedgerId = LedgerId;
    type Network = Network;
    type AdminOrigin = frame_system::EnsureRoot<AccountId32>;
    type UnixTime = Timestamp;
    type MessageHandler = CountingHandler;
    type ReceiptHandler = RecordingReceipts;
    type MaxSigners = frame_support::traits::ConstU32<16>;
    type MaxAttestations = frame_support::traits::ConstU32<16>;
    type MaxBatch = frame_support::traits::ConstU32<8>;
    type KeepEnded = KeepEnded;
    type WeightInfo = ();
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = TimestampHelper;
}

/// Sets the timestamp pallet's time for the benchmarks.
#[cfg(feature = "runtime-benchmarks")]
pub struct TimestampHelper;

#[cfg(feature = "runtime-benchmarks")]
impl crate::BenchmarkHelper for TimestampHelper {
    fn set_time(secs: u64) {
        pallet_timestamp::Now::<Test>::put(secs.saturating_mul(1_000));
    }
}

/// Fresh externalities at block 1 (events are recorded from block 1 on), genesis built.
pub(crate) fn new_test_ext() -> sp_io::TestExternalities {
    let storage = RuntimeGenesisConfig::default()
        .build_storage()
        .expect("mock genesis builds");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| {
        System::set_block_number(1);
        // A block time before every test deadline (tests move it as they need).
        pallet_timestamp::Now::<Test>::put(500_000);
    });
    ext
}
