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
}

#[derive_impl(pallet_timestamp::config_preludes::TestDefaultConfig)]
impl pallet_timestamp::Config for Test {}

parameter_types! {
    pub static LedgerId: u32 = LOCAL;
    /// The test handler's declared weight for an empty message.
    pub static HandlerBaseWeight: u64 = 1_000_000;
}

/// This test ledger's id.
pub(crate) const LOCAL: u32 = 2;

/// Storage key where the test handler counts the messages it handled.
pub(crate) const HANDLED_KEY: &[u8] = b"test:handled";

/// A body that makes the test handler fail (after writing to storage).
pub(crate) const FAILING_BODY: &[u8] = b"fail";

/// Counts handled messages in storage; fails on [`FAILING_BODY`] after counting, so a
/// missing rollback would show in the count.
pub struct CountingHandler;

impl crate::MessageHandler for CountingHandler {
    fn handle(message: &isthmus_protocol::Message) -> Result<(), DispatchError> {
        let n: u32 = frame_support::storage::unhashed::get_or_default(HANDLED_KEY);
        frame_support::storage::unhashed::put(HANDLED_KEY, &(n + 1));
        if message.body == FAILING_BODY {
            return Err(DispatchError::Other("test handler refuses"));
        }
        Ok(())
    }

    fn weight(body_len: u32) -> Weight {
        Weight::from_parts(HandlerBaseWeight::get() + u64::from(body_len), 0)
    }
}

pub(crate) fn handled() -> u32 {
    frame_support::storage::unhashed::get_or_default(HANDLED_KEY)
}

impl pallet_isthmus::Config for Test {
    type LedgerId = LedgerId;
    type AdminOrigin = frame_system::EnsureRoot<AccountId32>;
    type UnixTime = Timestamp;
    type MessageHandler = CountingHandler;
    type MaxSigners = frame_support::traits::ConstU32<16>;
    type MaxAttestations = frame_support::traits::ConstU32<16>;
    type MaxBatch = frame_support::traits::ConstU32<8>;
    type WeightInfo = ();
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
