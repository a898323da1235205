//! The Isthmus dev runtime: a FRAME solochain with system, timestamp, aura, grandpa,
//! balances, transaction payment, sudo, `pallet-isthmus`, the example clearing app and
//! `DevnetAuthorities` (sudo schedules GRANDPA authority-set changes). The devnet runs it with chopsticks (no node binary); its genesis comes from the
//! `GenesisBuilder` API's `development` preset (see `docs/substrate.md` for the keys).
#![cfg_attr(not(feature = "std"), no_std)]
#![recursion_limit = "256"]

extern crate alloc;

pub mod devnet_authorities;
pub mod genesis;

use alloc::{borrow::Cow, vec, vec::Vec};
use frame_support::{
    construct_runtime, derive_impl,
    genesis_builder_helper::{build_state, get_preset},
    parameter_types,
    traits::{ConstBool, ConstU128, ConstU32, ConstU64, ConstU8, VariantCountOf},
    weights::{
        constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        IdentityFee, Weight,
    },
};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_api::impl_runtime_apis;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_core::OpaqueMetadata;
use sp_runtime::{
    generic,
    traits::{BlakeTwo256, Block as BlockT, IdentifyAccount, NumberFor, One, Verify},
    transaction_validity::{TransactionSource, TransactionValidity},
    ApplyExtrinsicResult, DispatchError, MultiAddress, MultiSignature, Perbill,
};
use sp_version::RuntimeVersion;

/// Block number.
pub type BlockNumber = u32;
/// Signature of extrinsics.
pub type Signature = MultiSignature;
/// Account id: the 32-byte public key behind a [`Signature`].
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance.
pub type Balance = u128;
/// Account nonce.
pub type Nonce = u32;
/// Block and state hash.
pub type Hash = sp_core::H256;
/// Address format of extrinsics.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// Transaction extensions, checked in this order.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);
/// Extrinsic format.
pub type UncheckedExtrinsic =
    generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// Block execution.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
>;

/// Runtime version.
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: Cow::Borrowed("isthmus-dev"),
    impl_name: Cow::Borrowed("isthmus-dev"),
    authoring_version: 1,
    spec_version: 100,
    impl_version: 1,
    apis: RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Block time target (chopsticks builds blocks on demand; this fixes the slot length).
pub const MILLISECS_PER_BLOCK: u64 = 6000;
/// Aura slot duration.
pub const SLOT_DURATION: u64 = MILLISECS_PER_BLOCK;
/// One unit of the dev token (12 decimals).
pub const UNIT: Balance = 1_000_000_000_000;
/// Existential deposit.
pub const EXISTENTIAL_DEPOSIT: Balance = UNIT / 1000;

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
const MAX_BLOCK_LENGTH: u32 = 5 * 1024 * 1024;

parameter_types! {
    pub const BlockHashCount: BlockNumber = 2400;
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockWeights: frame_system::limits::BlockWeights =
        frame_system::limits::BlockWeights::with_sensible_defaults(
            Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
            NORMAL_DISPATCH_RATIO,
        );
    pub RuntimeBlockLength: frame_system::limits::BlockLength =
        frame_system::limits::BlockLength::builder()
            .max_length(MAX_BLOCK_LENGTH)
            .modify_max_length_for_class(frame_support::dispatch::DispatchClass::Normal, |max| {
                *max = NORMAL_DISPATCH_RATIO * MAX_BLOCK_LENGTH
            })
            .build();
    pub const SS58Prefix: u8 = 42;
    pub FeeMultiplier: Multiplier = Multiplier::one();
    /// This ledger's Isthmus id. A storage parameter: the devnet may change it with
    /// `sudo(system.set_storage)` without rebuilding the runtime.
    pub storage IsthmusLedgerId: u32 = 2;
    /// The consortium network the Isthmus pallet takes checkpoints of: the devnet's,
    /// `keccak256("isthmus devnet")`, unless the devnet sets another (a storage
    /// parameter like the ledger id).
    pub storage IsthmusNetwork: [u8; 32] = isthmus_protocol::hex32(
        "e9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664",
    );
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = BlockHashCount;
    type DbWeight = RocksDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_aura::Config for Runtime {
    type AuthorityId = AuraId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<32>;
    type AllowMultipleBlocksPerSlot = ConstBool<false>;
    type SlotDuration = pallet_aura::MinimumPeriodTimesTwo<Runtime>;
}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<32>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl devnet_authorities::Config for Runtime {}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ();
    type ReserveIdentifier = [u8; 8];
    type Balance = Balance;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type DoneSlashHandler = ();
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
    type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

/// Routes delivered messages by recipient: the clearing app's address reaches the
/// clearing pallet; any other recipient is refused (as the EVM Inbox refuses a
/// recipient that is no contract). Routes receipts by sender: those of messages the
/// clearing app sent settle or return its escrows; an account's receipts are only
/// recorded (the inbox's `ReceiptTaken` event).
pub struct Router;

impl pallet_isthmus::MessageHandler for Router {
    fn handle(
        message: &isthmus_protocol::Message,
    ) -> Result<pallet_isthmus::Handled, DispatchError> {
        if message.recipient.0 == pallet_isthmus_clearing::APP_ADDRESS {
            Clearing::handle_message(message.origin, message.sender.0, &message.body)
        } else {
            Ok(pallet_isthmus::Handled::Refused(
                pallet_isthmus::codes::NO_RECIPIENT,
            ))
        }
    }

    fn handle_released(
        message: &isthmus_protocol::Message,
    ) -> Result<pallet_isthmus::Handled, DispatchError> {
        if message.recipient.0 == pallet_isthmus_clearing::APP_ADDRESS {
            Clearing::handle_released(message.origin, message.sender.0, &message.body)
        } else {
            Ok(pallet_isthmus::Handled::Refused(
                pallet_isthmus::codes::NO_RECIPIENT,
            ))
        }
    }

    fn weight(_body_len: u32) -> Weight {
        // Up to 8 reads and 6 writes of the clearing app (its two limits included),
        // plus decoding.
        RocksDbWeight::get()
            .reads_writes(8, 6)
            .saturating_add(Weight::from_parts(20_000_000, 1_000))
    }
}

impl pallet_isthmus::ReceiptHandler for Router {
    fn on_receipt(
        sender: &[u8; 32],
        destination: u32,
        receipt: &isthmus_protocol::Receipt,
    ) -> Result<(), DispatchError> {
        if *sender == pallet_isthmus_clearing::APP_ADDRESS {
            Clearing::on_receipt(destination, receipt)
        } else {
            Ok(())
        }
    }

    fn weight() -> Weight {
        // The escrow, the total and one balance: 3 reads and 3 writes, plus the event.
        RocksDbWeight::get()
            .reads_writes(3, 3)
            .saturating_add(Weight::from_parts(15_000_000, 500))
    }
}

impl pallet_isthmus::Config for Runtime {
    type LedgerId = IsthmusLedgerId;
    type Network = IsthmusNetwork;
    type AdminOrigin = frame_system::EnsureRoot<AccountId>;
    type UnixTime = Timestamp;
    type MessageHandler = Router;
    type ReceiptHandler = Router;
    type MaxSigners = ConstU32<64>;
    type MaxAttestations = ConstU32<128>;
    type MaxBatch = ConstU32<64>;
    // A day of 6-second blocks: relayers find a message's end long before.
    type KeepEnded = ConstU32<14_400>;
    type WeightInfo = pallet_isthmus::weights::SubstrateWeight<Runtime>;
    #[cfg(feature = "runtime-benchmarks")]
    type BenchmarkHelper = BenchmarkTime;
}

/// Sets the timestamp pallet's time for the benchmarks: its storage only, since
/// `set_timestamp` would also move Aura's slot.
#[cfg(feature = "runtime-benchmarks")]
pub struct BenchmarkTime;

#[cfg(feature = "runtime-benchmarks")]
impl pallet_isthmus::BenchmarkHelper for BenchmarkTime {
    fn set_time(secs: u64) {
        pallet_timestamp::Now::<Runtime>::put(secs.saturating_mul(1_000));
    }
}

parameter_types! {
    /// The clearing app's currency (the devnet's EVM apps use the same).
    pub const ClearingCurrency: [u8; 3] = *b"EUR";
}

impl pallet_isthmus_clearing::Config for Runtime {
    type AdminOrigin = frame_system::EnsureRoot<AccountId>;
    type Outbox = Isthmus;
    type Currency = ClearingCurrency;
    type UnixTime = Timestamp;
    type Quorum = Isthmus;
}

construct_runtime!(
    pub enum Runtime {
        System: frame_system = 0,
        Timestamp: pallet_timestamp = 1,
        Aura: pallet_aura = 2,
        Grandpa: pallet_grandpa = 3,
        Balances: pallet_balances = 4,
        TransactionPayment: pallet_transaction_payment = 5,
        Sudo: pallet_sudo = 6,
        DevnetAuthorities: devnet_authorities = 7,
        Isthmus: pallet_isthmus = 10,
        Clearing: pallet_isthmus_clearing = 11,
    }
);

#[cfg(feature = "runtime-benchmarks")]
mod benches {
    frame_benchmarking::define_benchmarks!([pallet_isthmus, Isthmus]);
}

impl_runtime_apis! {
    impl sp_api::Core<Block> for Runtime {
        fn version() -> RuntimeVersion {
            VERSION
        }

        fn execute_block(block: <Block as BlockT>::LazyBlock) {
            Executive::execute_block(block);
        }

        fn initialize_block(header: &<Block as BlockT>::Header) -> sp_runtime::ExtrinsicInclusionMode {
            Executive::initialize_block(header)
        }
    }

    impl sp_api::Metadata<Block> for Runtime {
        fn metadata() -> OpaqueMetadata {
            OpaqueMetadata::new(Runtime::metadata().into())
        }

        fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
            Runtime::metadata_at_version(version)
        }

        fn metadata_versions() -> Vec<u32> {
            Runtime::metadata_versions()
        }
    }

    impl sp_block_builder::BlockBuilder<Block> for Runtime {
        fn apply_extrinsic(extrinsic: <Block as BlockT>::Extrinsic) -> ApplyExtrinsicResult {
            Executive::apply_extrinsic(extrinsic)
        }

        fn finalize_block() -> <Block as BlockT>::Header {
            Executive::finalize_block()
        }

        fn inherent_extrinsics(data: sp_inherents::InherentData) -> Vec<<Block as BlockT>::Extrinsic> {
            data.create_extrinsics()
        }

        fn check_inherents(
            block: <Block as BlockT>::LazyBlock,
            data: sp_inherents::InherentData,
        ) -> sp_inherents::CheckInherentsResult {
            data.check_extrinsics(&block)
        }
    }

    impl sp_transaction_pool::runtime_api::TaggedTransactionQueue<Block> for Runtime {
        fn validate_transaction(
            source: TransactionSource,
            tx: <Block as BlockT>::Extrinsic,
            block_hash: <Block as BlockT>::Hash,
        ) -> TransactionValidity {
            Executive::validate_transaction(source, tx, block_hash)
        }
    }

    impl sp_consensus_aura::AuraApi<Block, AuraId> for Runtime {
        fn slot_duration() -> sp_consensus_aura::SlotDuration {
            sp_consensus_aura::SlotDuration::from_millis(Aura::slot_duration())
        }

        fn authorities() -> Vec<AuraId> {
            pallet_aura::Authorities::<Runtime>::get().into_inner()
        }
    }

    impl sp_consensus_grandpa::GrandpaApi<Block> for Runtime {
        fn grandpa_authorities() -> sp_consensus_grandpa::AuthorityList {
            Grandpa::grandpa_authorities()
        }

        fn current_set_id() -> sp_consensus_grandpa::SetId {
            pallet_grandpa::CurrentSetId::<Runtime>::get()
        }

        fn submit_report_equivocation_unsigned_extrinsic(
            _equivocation_proof: sp_consensus_grandpa::EquivocationProof<
                <Block as BlockT>::Hash,
                NumberFor<Block>,
            >,
            _key_owner_proof: sp_consensus_grandpa::OpaqueKeyOwnershipProof,
        ) -> Option<()> {
            None
        }

        fn generate_key_ownership_proof(
            _set_id: sp_consensus_grandpa::SetId,
            _authority_id: GrandpaId,
        ) -> Option<sp_consensus_grandpa::OpaqueKeyOwnershipProof> {
            None
        }
    }

    impl frame_system_rpc_runtime_api::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
        fn account_nonce(account: AccountId) -> Nonce {
            System::account_nonce(account)
        }
    }

    impl pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance> for Runtime {
        fn query_info(
            uxt: <Block as BlockT>::Extrinsic,
            len: u32,
        ) -> pallet_transaction_payment_rpc_runtime_api::RuntimeDispatchInfo<Balance> {
            TransactionPayment::query_info(uxt, len)
        }

        fn query_fee_details(
            uxt: <Block as BlockT>::Extrinsic,
            len: u32,
        ) -> pallet_transaction_payment::FeeDetails<Balance> {
            TransactionPayment::query_fee_details(uxt, len)
        }

        fn query_weight_to_fee(weight: Weight) -> Balance {
            TransactionPayment::weight_to_fee(weight)
        }

        fn query_length_to_fee(length: u32) -> Balance {
            TransactionPayment::length_to_fee(length)
        }
    }

    #[cfg(feature = "runtime-benchmarks")]
    impl frame_benchmarking::Benchmark<Block> for Runtime {
        fn benchmark_metadata(
            extra: bool,
        ) -> (
            Vec<frame_benchmarking::BenchmarkList>,
            Vec<frame_support::traits::StorageInfo>,
        ) {
            use frame_benchmarking::BenchmarkList;
            use frame_support::traits::StorageInfoTrait;

            let mut list = Vec::<BenchmarkList>::new();
            list_benchmarks!(list, extra);
            (list, AllPalletsWithSystem::storage_info())
        }

        fn dispatch_benchmark(
            config: frame_benchmarking::BenchmarkConfig,
        ) -> Result<Vec<frame_benchmarking::BenchmarkBatch>, alloc::string::String> {
            use frame_benchmarking::BenchmarkBatch;
            use frame_support::traits::WhitelistedStorageKeys;

            let whitelist = AllPalletsWithSystem::whitelisted_storage_keys();
            let mut batches = Vec::<BenchmarkBatch>::new();
            let params = (&config, &whitelist);
            add_benchmarks!(params, batches);
            Ok(batches)
        }
    }

    impl sp_genesis_builder::GenesisBuilder<Block> for Runtime {
        fn build_state(config: Vec<u8>) -> sp_genesis_builder::Result {
            build_state::<RuntimeGenesisConfig>(config)
        }

        fn get_preset(id: &Option<sp_genesis_builder::PresetId>) -> Option<Vec<u8>> {
            get_preset::<RuntimeGenesisConfig>(id, genesis::get_preset)
        }

        fn preset_names() -> Vec<sp_genesis_builder::PresetId> {
            vec![sp_genesis_builder::PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET)]
        }
    }
}
