//! `pallet-isthmus-clearing`: the example inter-bank clearing application on a
//! Substrate ledger, with the semantics of `onchain/evm/src/ClearingApp.sol`.
//!
//! Each bank (a 32-byte identifier) has a settlement balance in one currency
//! ([`Config::Currency`]). Two kinds of business, as on EVM:
//!
//! **Cross-ledger payments** ([`Pallet::pay`]). The debtor bank's operator pays: the
//! amount moves from the debtor's balance into escrow, and the payment ([`Payment`]:
//! end-to-end id, debtor, creditor, amount, currency) leaves through the Isthmus
//! outbox, sent by [`APP_ADDRESS`], to the clearing app of the destination ledger (its
//! [`Peer`]). There the creditor is credited out of this ledger's account, or the
//! payment is refused for good. Its receipt comes back ([`Pallet::on_receipt`]):
//! `delivered` settles the escrow into the destination ledger's account here
//! ([`LedgerBalance`]); `refused` or `expired` returns it to the debtor. A payment
//! from another ledger is credited here out of that ledger's account, from its peer
//! only. Balances plus ledger accounts plus escrow never change, and each payment is
//! settled or returned exactly once.
//!
//! **Instructions** (128 bytes: `abi.encode(bytes32 instructionId, bytes32 fromBank,
//! bytes32 toBank, uint256 amount)`) move `amount` between two banks of this ledger on
//! the word of a sender of another ledger that the admin allowed to debit the paying
//! bank ([`MayDebit`]). Instruction ids are the sender's own ([`Settled`] is keyed by
//! origin, sender and id). Refusals that can never change (malformed instruction, a
//! sender that may not debit the bank, a duplicate) are final: recorded by
//! [`Event::InstructionRejected`], the message consumed (its receipt says delivered,
//! with a zero answer, as the EVM app's). Refusals that depend on state (unknown bank,
//! insufficient funds, a balance that would overflow) are not: the runtime reports
//! them as a handler failure and the message stays deliverable ([`Rejection::is_final`]).
//!
//! **Value limits** on payments from another ledger ([`Limits`]), as on EVM: per
//! route (debtor zero) and per debtor bank of a route, a rolling allowance that
//! refills over a window and a large-value threshold. A payment over either is held
//! ([`Handled::Held`]), not refused: the inbox keeps it until a quorum of the
//! origin's signers releases it ([`Pallet::handle_released`]: credited, its value
//! counted against the allowance) or rejects it, or its hold expires (both return it
//! to the debtor through its receipt). The admin sets each limit up once
//! ([`Pallet::set_limit`]); a change needs a quorum of the origin's current signers
//! ([`Pallet::change_limit`]).
//!
//! Balances are `u128`; an amount of 2^128 or more exceeds every balance and is
//! refused as insufficient funds, the outcome the EVM app gives for any amount above
//! the balance.
//!
//! The runtime routes messages whose recipient is [`APP_ADDRESS`] to
//! [`Pallet::handle_message`] and the receipts of messages it sent to
//! [`Pallet::on_receipt`]; nothing else can call them (the EVM app's `NotInbox`).
#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

/// The app's `Address32` on its ledger: `keccak256("isthmus clearing app")`. Senders
/// put it in a message's `recipient`.
pub const APP_ADDRESS: [u8; 32] = [
    0x50, 0x3f, 0x51, 0x4c, 0x7a, 0xac, 0x78, 0x2a, 0x47, 0x44, 0xbe, 0xab, 0x84, 0x03, 0x1b, 0x19,
    0xa1, 0x7b, 0xfd, 0x1f, 0x1a, 0x6d, 0x20, 0x03, 0x52, 0x88, 0xf1, 0x11, 0x74, 0xec, 0x8f, 0xb0,
];

/// Length of an ABI-encoded instruction.
pub const INSTRUCTION_LEN: usize = 128;

/// Length of an ABI-encoded payment.
pub const PAYMENT_LEN: usize = 160;

/// A cross-ledger payment, as its body carries it: `abi.encode(bytes32 uetr, bytes32
/// debtor, bytes32 creditor, uint256 amount, bytes3 currency)`, the bytes the EVM app
/// sends and reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Payment {
    /// UETR-style end-to-end id.
    pub uetr: [u8; 32],
    /// Paying bank, on the origin ledger.
    pub debtor: [u8; 32],
    /// Receiving bank, on the destination ledger.
    pub creditor: [u8; 32],
    /// Amount as the 32-byte big-endian `uint256`.
    pub amount: [u8; 32],
    /// ISO 4217 currency code.
    pub currency: [u8; 3],
}

impl Payment {
    /// Parses exactly [`PAYMENT_LEN`] bytes (the currency word's padding must be zero).
    pub fn parse(body: &[u8]) -> Option<Self> {
        if body.len() != PAYMENT_LEN || body[131..].iter().any(|b| *b != 0) {
            return None;
        }
        let word = |i: usize| word_at(body, i);
        Some(Self {
            uetr: word(0),
            debtor: word(1),
            creditor: word(2),
            amount: word(3),
            currency: [body[128], body[129], body[130]],
        })
    }

    /// Encodes like Solidity's `abi.encode` of the five fields.
    pub fn encode(&self) -> [u8; PAYMENT_LEN] {
        let mut out = [0u8; PAYMENT_LEN];
        for (i, w) in [self.uetr, self.debtor, self.creditor, self.amount]
            .iter()
            .enumerate()
        {
            out[i * 32..(i + 1) * 32].copy_from_slice(w);
        }
        out[128..131].copy_from_slice(&self.currency);
        out
    }

    /// The amount if it fits in `u128`.
    pub fn amount_u128(&self) -> Option<u128> {
        u128_of(&self.amount)
    }
}

/// ABI word `i` of `body` (the caller checked the length).
fn word_at(body: &[u8], i: usize) -> [u8; 32] {
    let mut w = [0u8; 32];
    w.copy_from_slice(&body[i * 32..(i + 1) * 32]);
    w
}

/// A `uint256` word as `u128`, if it fits.
fn u128_of(word: &[u8; 32]) -> Option<u128> {
    if word[..16].iter().any(|b| *b != 0) {
        return None;
    }
    let mut low = [0u8; 16];
    low.copy_from_slice(&word[16..]);
    Some(u128::from_be_bytes(low))
}

/// A `u128` as a `uint256` word.
pub fn word_of(amount: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&amount.to_be_bytes());
    w
}

/// A decoded payment instruction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Instruction {
    /// The sender's unique id of the instruction (replay protection at app level).
    pub id: [u8; 32],
    /// Paying bank.
    pub from: [u8; 32],
    /// Receiving bank.
    pub to: [u8; 32],
    /// Amount as the 32-byte big-endian `uint256` of the body.
    pub amount: [u8; 32],
}

impl Instruction {
    /// Parses exactly [`INSTRUCTION_LEN`] bytes; anything else is malformed.
    pub fn parse(body: &[u8]) -> Option<Self> {
        if body.len() != INSTRUCTION_LEN {
            return None;
        }
        let word = |i: usize| word_at(body, i);
        Some(Self {
            id: word(0),
            from: word(1),
            to: word(2),
            amount: word(3),
        })
    }

    /// Encodes like Solidity's `abi.encode` of the four words.
    pub fn encode(&self) -> [u8; INSTRUCTION_LEN] {
        let mut out = [0u8; INSTRUCTION_LEN];
        for (i, w) in [self.id, self.from, self.to, self.amount]
            .iter()
            .enumerate()
        {
            out[i * 32..(i + 1) * 32].copy_from_slice(w);
        }
        out
    }

    /// The amount if it fits in `u128`.
    pub fn amount_u128(&self) -> Option<u128> {
        u128_of(&self.amount)
    }
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_support::traits::UnixTime as _;
    use frame_system::pallet_prelude::*;
    use isthmus_protocol::{Receipt, ReceiptOutcome};
    use pallet_isthmus::{code, Dispatcher, Handled};

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// Who opens banks and accounts, names peers and debitors (Root in the dev
        /// runtime).
        type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// The Isthmus outbox payments leave through.
        type Outbox: Dispatcher;
        /// The one currency of the balances (ISO 4217 code).
        #[pallet::constant]
        type Currency: Get<[u8; 3]>;
        /// The time limits refill by.
        type UnixTime: frame_support::traits::UnixTime;
        /// The origins' signer sets, which authorise limit changes (the inbox).
        type Quorum: pallet_isthmus::OriginQuorum;
    }

    /// A value control of payments from one origin: of the route (debtor zero) or of
    /// one debtor bank of it.
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
    pub struct Limit {
        /// The rolling allowance (0: no rolling limit).
        pub capacity: u128,
        /// Payments above this are held whatever the allowance (0: none).
        pub large_value: u128,
        /// Seconds the allowance takes to refill from 0 to `capacity`.
        pub window: u32,
        /// 1 as set up, +1 per change.
        pub version: u32,
        /// The allowance left at `updated`.
        pub available: u128,
        /// Unix seconds of the last change of `available`.
        pub updated: u64,
    }

    impl Limit {
        /// The allowance refilled to `now`: `capacity` per `window`, capped.
        pub fn available_at(&self, now: u64) -> u128 {
            if self.capacity == 0 || self.window == 0 {
                return 0;
            }
            let elapsed = u128::from(now.saturating_sub(self.updated));
            let refill = self
                .capacity
                .saturating_mul(elapsed)
                .checked_div(u128::from(self.window))
                .unwrap_or(0);
            self.available.saturating_add(refill).min(self.capacity)
        }
    }

    /// Reasons a payment is held (the EVM app's).
    pub mod holds {
        use pallet_isthmus::code;
        /// Above the limit's large-value threshold.
        pub const LARGE_VALUE: [u8; 32] = code("large value");
        /// Over the route's rolling allowance.
        pub const OVER_ROUTE_LIMIT: [u8; 32] = code("over route limit");
        /// Over the debtor bank's rolling allowance.
        pub const OVER_BANK_LIMIT: [u8; 32] = code("over bank limit");
    }

    /// Limits by (origin ledger, debtor bank or zero for the route).
    #[pallet::storage]
    pub type Limits<T> = StorageMap<_, Blake2_128Concat, (u32, [u8; 32]), Limit, OptionQuery>;

    /// Settlement balance per bank.
    #[pallet::storage]
    pub type BalanceOf<T> = StorageMap<_, Blake2_128Concat, [u8; 32], u128, ValueQuery>;

    /// Opened banks.
    #[pallet::storage]
    pub type IsBank<T> = StorageMap<_, Blake2_128Concat, [u8; 32], (), OptionQuery>;

    /// Settled instructions, by `(origin ledger, sender, instruction id)`: one
    /// sender's id never blocks another's.
    #[pallet::storage]
    pub type Settled<T> = StorageNMap<
        _,
        (
            NMapKey<Twox64Concat, u32>,
            NMapKey<Blake2_128Concat, [u8; 32]>,
            NMapKey<Blake2_128Concat, [u8; 32]>,
        ),
        (),
        OptionQuery,
    >;

    /// `(origin ledger, sender, bank)`: the sender may instruct payments from the bank.
    #[pallet::storage]
    pub type MayDebit<T> = StorageNMap<
        _,
        (
            NMapKey<Twox64Concat, u32>,
            NMapKey<Blake2_128Concat, [u8; 32]>,
            NMapKey<Blake2_128Concat, [u8; 32]>,
        ),
        (),
        OptionQuery,
    >;

    /// The account that may pay from a bank's balance ([`Pallet::pay`]).
    #[pallet::storage]
    pub type BankOwner<T: Config> =
        StorageMap<_, Blake2_128Concat, [u8; 32], T::AccountId, OptionQuery>;

    /// Per ledger, the clearing app there (an `Address32`): payments go to it, and
    /// only it can pay here from that ledger.
    #[pallet::storage]
    pub type Peer<T> = StorageMap<_, Twox64Concat, u32, [u8; 32], OptionQuery>;

    /// Per ledger, its account here: the liquidity it holds on this ledger. Payments
    /// from it are credited out of it; payments to it settle into it.
    #[pallet::storage]
    pub type LedgerBalance<T> = StorageMap<_, Twox64Concat, u32, u128, OptionQuery>;

    /// Escrows of payments sent from here, by message id.
    #[pallet::storage]
    pub type Escrows<T> = StorageMap<_, Identity, [u8; 32], Escrow, OptionQuery>;

    /// Total in escrow: payments sent whose receipt is not back yet.
    #[pallet::storage]
    pub type Escrowed<T> = StorageValue<_, u128, ValueQuery>;

    /// End-to-end ids paid from here.
    #[pallet::storage]
    pub type SentUetr<T> = StorageMap<_, Blake2_128Concat, [u8; 32], (), OptionQuery>;

    /// End-to-end ids credited here.
    #[pallet::storage]
    pub type CreditedUetr<T> = StorageMap<_, Blake2_128Concat, [u8; 32], (), OptionQuery>;

    /// Where a payment sent from here stands.
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
    pub enum EscrowState {
        /// Sent; its receipt is not back.
        Open,
        /// Delivered: the amount went to the destination ledger's account.
        Settled,
        /// Refused or expired: the amount went back to the debtor.
        Returned,
    }

    /// The escrow of one payment sent from here.
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
    pub struct Escrow {
        /// End-to-end id.
        pub uetr: [u8; 32],
        /// Paying bank.
        pub debtor: [u8; 32],
        /// Amount held.
        pub amount: u128,
        /// Destination ledger.
        pub destination: u32,
        /// Where it stands.
        pub state: EscrowState,
    }

    /// Why an instruction was refused. Final ones consume the message; the others
    /// leave it deliverable ([`Rejection::is_final`]).
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
    pub enum Rejection {
        /// The body is not an instruction (128 bytes) nor a payment (160 bytes).
        MalformedInstruction,
        /// The sender may not debit the paying bank.
        MayNotDebit,
        /// The sender had this instruction id settled before.
        DuplicateInstruction,
        /// A bank is not open.
        UnknownBank,
        /// The paying bank's balance is below the amount.
        InsufficientFunds,
        /// The receiving bank's balance would exceed `u128::MAX` (checked, never
        /// saturated: no value is destroyed).
        BalanceOverflow,
    }

    impl Rejection {
        /// Whether the refusal can never change: the message is consumed. Refusals
        /// that depend on state leave it deliverable for a later retry.
        pub fn is_final(self) -> bool {
            match self {
                Rejection::MalformedInstruction
                | Rejection::MayNotDebit
                | Rejection::DuplicateInstruction => true,
                Rejection::UnknownBank
                | Rejection::InsufficientFunds
                | Rejection::BalanceOverflow => false,
            }
        }

        /// The refusal as text (for the inbox's handler-failure event).
        pub fn as_str(self) -> &'static str {
            match self {
                Rejection::MalformedInstruction => "malformed instruction",
                Rejection::MayNotDebit => "sender may not debit this bank",
                Rejection::DuplicateInstruction => "duplicate instruction",
                Rejection::UnknownBank => "unknown bank",
                Rejection::InsufficientFunds => "insufficient funds",
                Rejection::BalanceOverflow => "balance overflow",
            }
        }
    }

    /// Errors of the calls.
    #[pallet::error]
    pub enum Error<T> {
        /// The bank is open already: its balance changes only by payments.
        BankExists,
        /// The ledger's account is open already.
        LedgerAccountExists,
        /// The caller does not operate the debtor bank.
        NotBankOwner,
        /// No clearing app is known on the destination ledger.
        NoPeer,
        /// A payment of nothing.
        ZeroAmount,
        /// This end-to-end id was paid from here before.
        DuplicatePayment,
        /// The debtor's balance is below the amount.
        InsufficientFunds,
        /// No open escrow for the receipt's message and destination.
        NoOpenEscrow,
        /// A balance would exceed `u128::MAX`.
        BalanceOverflow,
        /// A rolling limit needs a window of at least one second.
        BadLimit,
        /// The limit is set up already: it changes only by [`Pallet::change_limit`].
        LimitExists,
        /// A change must carry the limit's version + 1 (and the limit must exist).
        WrongLimitVersion,
        /// Fewer than the origin's threshold of its current signers signed (or the
        /// origin is not set up).
        LimitQuorumNotReached,
    }

    /// Genesis: banks with opening balances, and the banks senders may debit.
    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// `(bank, balance)`.
        pub banks: alloc::vec::Vec<([u8; 32], u128)>,
        /// `(origin ledger, sender, bank)`.
        pub debitors: alloc::vec::Vec<(u32, [u8; 32], [u8; 32])>,
        #[serde(skip)]
        #[doc(hidden)]
        pub _config: core::marker::PhantomData<T>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            for (bank, balance) in &self.banks {
                IsBank::<T>::insert(bank, ());
                BalanceOf::<T>::insert(bank, balance);
            }
            for (origin, sender, bank) in &self.debitors {
                MayDebit::<T>::insert((origin, sender, bank), ());
            }
        }
    }

    /// Events.
    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A bank was opened.
        BankOpened {
            /// Bank id.
            bank: [u8; 32],
            /// Its balance.
            balance: u128,
        },
        /// Whether `sender` of `origin` may instruct payments from `bank` changed.
        DebitorSet {
            /// Origin ledger.
            origin: u32,
            /// Sender.
            sender: [u8; 32],
            /// Bank.
            bank: [u8; 32],
            /// Allowed or not.
            allowed: bool,
        },
        /// An instruction was settled.
        PaymentSettled {
            /// Instruction id.
            instruction_id: [u8; 32],
            /// Paying bank.
            from_bank: [u8; 32],
            /// Receiving bank.
            to_bank: [u8; 32],
            /// Amount moved.
            amount: u128,
        },
        /// An instruction was refused for good.
        InstructionRejected {
            /// Instruction id (zero when the body was malformed).
            instruction_id: [u8; 32],
            /// Why.
            reason: Rejection,
        },
        /// Who may pay from `bank` changed (None: nobody).
        BankOwnerSet {
            /// Bank.
            bank: [u8; 32],
            /// Its operator.
            owner: Option<T::AccountId>,
        },
        /// The clearing app of `ledger` was named.
        PeerSet {
            /// Ledger.
            ledger: u32,
            /// Its clearing app's `Address32`.
            app: [u8; 32],
        },
        /// `ledger`'s account here was opened.
        LedgerAccountOpened {
            /// Ledger.
            ledger: u32,
            /// Its balance.
            balance: u128,
        },
        /// A payment left: `amount` of `debtor` is in escrow until its receipt.
        PaymentSent {
            /// Message id, which keys the escrow.
            id: [u8; 32],
            /// End-to-end id.
            uetr: [u8; 32],
            /// Paying bank.
            debtor: [u8; 32],
            /// Receiving bank on the destination.
            creditor: [u8; 32],
            /// Destination ledger.
            destination: u32,
            /// Amount.
            amount: u128,
        },
        /// A payment from `origin` credited `creditor` here.
        PaymentCredited {
            /// End-to-end id.
            uetr: [u8; 32],
            /// Origin ledger.
            origin: u32,
            /// Credited bank.
            creditor: [u8; 32],
            /// Amount.
            amount: u128,
        },
        /// Its `delivered` receipt settled the escrow into the destination's account.
        EscrowSettled {
            /// Message id.
            id: [u8; 32],
            /// End-to-end id.
            uetr: [u8; 32],
            /// Amount.
            amount: u128,
        },
        /// A limit was set up (version 1) or changed by a quorum.
        LimitSet {
            /// Origin ledger.
            origin: u32,
            /// Debtor bank, or zero for the route.
            debtor: [u8; 32],
            /// Rolling allowance.
            capacity: u128,
            /// Its window, in seconds.
            window: u32,
            /// Large-value threshold.
            large_value: u128,
            /// The limit's version.
            version: u32,
        },
        /// Its `refused` or `expired` receipt returned the escrow to the debtor.
        EscrowReturned {
            /// Message id.
            id: [u8; 32],
            /// End-to-end id.
            uetr: [u8; 32],
            /// The debtor bank, credited back.
            debtor: [u8; 32],
            /// Amount.
            amount: u128,
            /// Receipt outcome code (2 refused, 3 expired).
            outcome: u8,
            /// The destination's answer (a refusal code).
            result: [u8; 32],
        },
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Opens `bank` with `balance`. An open bank is refused ([`Error::BankExists`]):
        /// its balance changes only by payments.
        #[pallet::call_index(0)]
        #[pallet::weight(T::DbWeight::get().writes(2).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn open_bank(origin: OriginFor<T>, bank: [u8; 32], balance: u128) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(!IsBank::<T>::contains_key(bank), Error::<T>::BankExists);
            IsBank::<T>::insert(bank, ());
            BalanceOf::<T>::insert(bank, balance);
            Self::deposit_event(Event::BankOpened { bank, balance });
            Ok(())
        }

        /// Allows (or no longer allows) `sender` of `origin_ledger` to instruct
        /// payments from `bank`.
        #[pallet::call_index(1)]
        #[pallet::weight(T::DbWeight::get().writes(1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn set_debitor(
            origin: OriginFor<T>,
            origin_ledger: u32,
            sender: [u8; 32],
            bank: [u8; 32],
            allowed: bool,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            if allowed {
                MayDebit::<T>::insert((origin_ledger, sender, bank), ());
            } else {
                MayDebit::<T>::remove((origin_ledger, sender, bank));
            }
            Self::deposit_event(Event::DebitorSet {
                origin: origin_ledger,
                sender,
                bank,
                allowed,
            });
            Ok(())
        }

        /// Names the account that may pay from `bank` (None: nobody).
        #[pallet::call_index(2)]
        #[pallet::weight(T::DbWeight::get().writes(1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn set_bank_owner(
            origin: OriginFor<T>,
            bank: [u8; 32],
            owner: Option<T::AccountId>,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            match &owner {
                Some(who) => BankOwner::<T>::insert(bank, who),
                None => BankOwner::<T>::remove(bank),
            }
            Self::deposit_event(Event::BankOwnerSet { bank, owner });
            Ok(())
        }

        /// Names the clearing app on `ledger` (an `Address32`).
        #[pallet::call_index(3)]
        #[pallet::weight(T::DbWeight::get().writes(1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn set_peer(origin: OriginFor<T>, ledger: u32, app: [u8; 32]) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            Peer::<T>::insert(ledger, app);
            Self::deposit_event(Event::PeerSet { ledger, app });
            Ok(())
        }

        /// Opens `ledger`'s account here with the liquidity it holds, once.
        #[pallet::call_index(4)]
        #[pallet::weight(T::DbWeight::get().reads_writes(1, 1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn open_ledger_account(
            origin: OriginFor<T>,
            ledger: u32,
            balance: u128,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(
                !LedgerBalance::<T>::contains_key(ledger),
                Error::<T>::LedgerAccountExists
            );
            LedgerBalance::<T>::insert(ledger, balance);
            Self::deposit_event(Event::LedgerAccountOpened { ledger, balance });
            Ok(())
        }

        /// Sets up the limit of payments from `origin_ledger` (`debtor` zero: all of
        /// them; otherwise those of that debtor bank), once: `capacity` per `window`
        /// seconds, refilling steadily (0: no rolling limit), and payments above
        /// `large_value` held whatever the allowance (0: none).
        #[pallet::call_index(6)]
        #[pallet::weight(T::DbWeight::get().reads_writes(1, 1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn set_limit(
            origin: OriginFor<T>,
            origin_ledger: u32,
            debtor: [u8; 32],
            capacity: u128,
            window: u32,
            large_value: u128,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            ensure!(
                !Limits::<T>::contains_key((origin_ledger, debtor)),
                Error::<T>::LimitExists
            );
            Self::put_limit(origin_ledger, debtor, capacity, window, large_value, 1)
        }

        /// Changes a limit set up before, at `version` (its version + 1), with a quorum
        /// of `origin_ledger`'s current signers' `attestations` over
        /// [`isthmus_protocol::LimitChange::pallet_digest`]. Nobody alone, and not the
        /// admin, loosens a limit. What the limit had left (refilled to now) carries
        /// over, up to the new capacity.
        #[pallet::call_index(7)]
        #[pallet::weight(
            T::DbWeight::get().reads_writes(2, 1)
                .saturating_add(Weight::from_parts(60_000_000, 0).saturating_mul(attestations.len() as u64))
        )]
        #[allow(
            clippy::too_many_arguments,
            reason = "a call's arguments are its signed fields"
        )]
        pub fn change_limit(
            origin: OriginFor<T>,
            origin_ledger: u32,
            debtor: [u8; 32],
            capacity: u128,
            window: u32,
            large_value: u128,
            version: u32,
            attestations: alloc::vec::Vec<pallet_isthmus::AttestationBytes>,
        ) -> DispatchResult {
            use pallet_isthmus::OriginQuorum;
            ensure_signed(origin)?;
            ensure!(attestations.len() <= 255, Error::<T>::LimitQuorumNotReached);
            let current =
                Limits::<T>::get((origin_ledger, debtor)).ok_or(Error::<T>::WrongLimitVersion)?;
            ensure!(
                current.version.checked_add(1) == Some(version),
                Error::<T>::WrongLimitVersion
            );
            let (genesis, ledger) = T::Quorum::endpoint();
            let digest = isthmus_protocol::LimitChange {
                origin: origin_ledger,
                debtor,
                capacity,
                window,
                large_value,
                version,
            }
            .pallet_digest(genesis, ledger);
            let (have, threshold) = T::Quorum::signed_by(origin_ledger, &digest, &attestations)
                .ok_or(Error::<T>::LimitQuorumNotReached)?;
            ensure!(
                threshold > 0 && have >= threshold,
                Error::<T>::LimitQuorumNotReached
            );
            Self::put_limit(
                origin_ledger,
                debtor,
                capacity,
                window,
                large_value,
                version,
            )
        }

        /// Pays `amount` from `debtor` (a bank the caller operates) to `creditor` on
        /// `destination`, with end-to-end id `uetr`. The amount is in escrow until
        /// the payment's receipt: settled if delivered, returned to `debtor` if
        /// refused or expired (`deadline`: unix seconds, 0 = none).
        #[pallet::call_index(5)]
        #[pallet::weight(
            T::Outbox::dispatch_weight(PAYMENT_LEN as u32)
                .saturating_add(T::DbWeight::get().reads_writes(4, 4))
                .saturating_add(Weight::from_parts(20_000_000, 0))
        )]
        pub fn pay(
            origin: OriginFor<T>,
            destination: u32,
            uetr: [u8; 32],
            debtor: [u8; 32],
            creditor: [u8; 32],
            amount: u128,
            deadline: u64,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(
                BankOwner::<T>::get(debtor).as_ref() == Some(&who),
                Error::<T>::NotBankOwner
            );
            let to = Peer::<T>::get(destination).ok_or(Error::<T>::NoPeer)?;
            ensure!(amount != 0, Error::<T>::ZeroAmount);
            ensure!(
                !SentUetr::<T>::contains_key(uetr),
                Error::<T>::DuplicatePayment
            );
            let balance = BalanceOf::<T>::get(debtor);
            ensure!(balance >= amount, Error::<T>::InsufficientFunds);
            let held = Escrowed::<T>::get()
                .checked_add(amount)
                .ok_or(Error::<T>::BalanceOverflow)?;
            let body = Payment {
                uetr,
                debtor,
                creditor,
                amount: word_of(amount),
                currency: T::Currency::get(),
            }
            .encode()
            .to_vec();
            let id = T::Outbox::dispatch_from(APP_ADDRESS, destination, to, deadline, body)?;
            SentUetr::<T>::insert(uetr, ());
            BalanceOf::<T>::insert(debtor, balance - amount);
            Escrowed::<T>::put(held);
            Escrows::<T>::insert(
                id,
                Escrow {
                    uetr,
                    debtor,
                    amount,
                    destination,
                    state: EscrowState::Open,
                },
            );
            Self::deposit_event(Event::PaymentSent {
                id,
                uetr,
                debtor,
                creditor,
                destination,
                amount,
            });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// A message for the app: a payment (160 bytes) is credited or refused for
        /// good; anything else is an instruction ([`Pallet::handle_instruction`]),
        /// whose final refusals are recorded and end the message with a zero answer,
        /// and whose state-dependent refusals are handler failures (Err: the message
        /// stays deliverable).
        pub fn handle_message(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<Handled, DispatchError> {
            if body.len() == PAYMENT_LEN {
                return Ok(Self::credit(origin, sender, body, false)
                    .unwrap_or_else(|refusal| Handled::Refused(code(refusal))));
            }
            match Self::handle_instruction(origin, sender, body) {
                Ok(id) => Ok(Handled::Accepted(id)),
                Err(refusal) if refusal.is_final() => Ok(Handled::Accepted([0u8; 32])),
                Err(refusal) => Err(DispatchError::Other(refusal.as_str())),
            }
        }

        /// A payment a quorum released from its hold: credited past the limits that
        /// held it (its value still counts against their allowance). Only payments
        /// are ever held.
        pub fn handle_released(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<Handled, DispatchError> {
            Ok(Self::credit(origin, sender, body, true)
                .unwrap_or_else(|refusal| Handled::Refused(code(refusal))))
        }

        /// Stores a limit's values; a new one starts full, a changed one keeps what it
        /// had left (refilled to now), up to its new capacity.
        fn put_limit(
            origin: u32,
            debtor: [u8; 32],
            capacity: u128,
            window: u32,
            large_value: u128,
            version: u32,
        ) -> DispatchResult {
            ensure!(capacity == 0 || window > 0, Error::<T>::BadLimit);
            let now = T::UnixTime::now().as_secs();
            let left = Limits::<T>::get((origin, debtor))
                .filter(|l| l.capacity != 0)
                .map_or(capacity, |l| l.available_at(now));
            Limits::<T>::insert(
                (origin, debtor),
                Limit {
                    capacity,
                    large_value,
                    window,
                    version,
                    available: left.min(capacity),
                    updated: now,
                },
            );
            Self::deposit_event(Event::LimitSet {
                origin,
                debtor,
                capacity,
                window,
                large_value,
                version,
            });
            Ok(())
        }

        /// Applies the limit of (`origin`, `debtor`) to a payment of `amount`: the
        /// reason to hold it, or, when it passes (or `released` overrides it), its
        /// value taken from the allowance (down to 0 for a released one). Nothing is
        /// written for a payment that is held.
        fn control(
            key: (u32, [u8; 32]),
            amount: u128,
            released: bool,
            over_limit: [u8; 32],
            now: u64,
        ) -> Result<Option<Limit>, [u8; 32]> {
            let Some(mut limit) = Limits::<T>::get(key) else {
                return Ok(None);
            };
            if !released && limit.large_value != 0 && amount > limit.large_value {
                return Err(holds::LARGE_VALUE);
            }
            if limit.capacity == 0 {
                return Ok(None);
            }
            let available = limit.available_at(now);
            if amount > available && !released {
                return Err(over_limit);
            }
            limit.available = available.saturating_sub(amount);
            limit.updated = now;
            Ok(Some(limit))
        }

        /// A payment from `origin`: credits the creditor out of the origin's account
        /// here, refuses it for good (its receipt returns it to the debtor there), or
        /// holds it when it is over a limit (not `released`). The refusals, in order,
        /// and the holds after them, are the EVM app's.
        fn credit(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
            released: bool,
        ) -> Result<Handled, &'static str> {
            let p = Payment::parse(body).ok_or("malformed payment")?;
            if sender == [0u8; 32] || Peer::<T>::get(origin) != Some(sender) {
                return Err("untrusted sender");
            }
            if p.currency != T::Currency::get() {
                return Err("wrong currency");
            }
            if CreditedUetr::<T>::contains_key(p.uetr) {
                return Err("duplicate payment");
            }
            if !IsBank::<T>::contains_key(p.creditor) {
                return Err("unknown bank");
            }
            let liquidity = LedgerBalance::<T>::get(origin).unwrap_or(0);
            let amount = p
                .amount_u128()
                .filter(|a| *a <= liquidity)
                .ok_or("insufficient funds")?;
            let credited = BalanceOf::<T>::get(p.creditor)
                .checked_add(amount)
                .ok_or("balance overflow")?;
            let now = T::UnixTime::now().as_secs();
            let route = (origin, [0u8; 32]);
            let bank = (origin, p.debtor);
            let limits = Self::control(route, amount, released, holds::OVER_ROUTE_LIMIT, now)
                .and_then(|r| {
                    Self::control(bank, amount, released, holds::OVER_BANK_LIMIT, now)
                        .map(|b| (r, b))
                });
            let (route_left, bank_left) = match limits {
                Ok(left) => left,
                Err(reason) => return Ok(Handled::Held(reason)),
            };
            for (key, left) in [(route, route_left), (bank, bank_left)] {
                if let Some(limit) = left {
                    Limits::<T>::insert(key, limit);
                }
            }
            CreditedUetr::<T>::insert(p.uetr, ());
            LedgerBalance::<T>::insert(origin, liquidity - amount);
            BalanceOf::<T>::insert(p.creditor, credited);
            Self::deposit_event(Event::PaymentCredited {
                uetr: p.uetr,
                origin,
                creditor: p.creditor,
                amount,
            });
            Ok(Handled::Accepted(p.uetr))
        }

        /// The receipt of a message the app sent: settles or returns its escrow, once.
        pub fn on_receipt(destination: u32, receipt: &Receipt) -> DispatchResult {
            let id = receipt.id.0;
            let mut escrow = Escrows::<T>::get(id)
                .filter(|e| e.state == EscrowState::Open && e.destination == destination)
                .ok_or(Error::<T>::NoOpenEscrow)?;
            let amount = escrow.amount;
            Escrowed::<T>::mutate(|held| *held = held.saturating_sub(amount));
            if receipt.outcome == ReceiptOutcome::Delivered {
                let account = LedgerBalance::<T>::get(destination)
                    .unwrap_or(0)
                    .checked_add(amount)
                    .ok_or(Error::<T>::BalanceOverflow)?;
                LedgerBalance::<T>::insert(destination, account);
                escrow.state = EscrowState::Settled;
                Self::deposit_event(Event::EscrowSettled {
                    id,
                    uetr: escrow.uetr,
                    amount,
                });
            } else {
                let balance = BalanceOf::<T>::get(escrow.debtor)
                    .checked_add(amount)
                    .ok_or(Error::<T>::BalanceOverflow)?;
                BalanceOf::<T>::insert(escrow.debtor, balance);
                escrow.state = EscrowState::Returned;
                Self::deposit_event(Event::EscrowReturned {
                    id,
                    uetr: escrow.uetr,
                    debtor: escrow.debtor,
                    amount,
                    outcome: receipt.outcome.code(),
                    result: receipt.result,
                });
            }
            Escrows::<T>::insert(id, escrow);
            Ok(())
        }

        /// Applies one delivered instruction; the refusal order is the EVM app's. A
        /// final refusal is recorded ([`Event::InstructionRejected`]); one that depends
        /// on state is only returned (the runtime reports it as a handler failure and
        /// rolls back, so nothing of it stays). Returns the settled instruction's id.
        pub fn handle_instruction(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<[u8; 32], Rejection> {
            let result = Self::try_settle(origin, sender, body);
            if let Err((instruction_id, reason)) = result {
                if reason.is_final() {
                    Self::deposit_event(Event::InstructionRejected {
                        instruction_id,
                        reason,
                    });
                }
                return Err(reason);
            }
            result.map_err(|(_, reason)| reason)
        }

        fn try_settle(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<[u8; 32], ([u8; 32], Rejection)> {
            let ins =
                Instruction::parse(body).ok_or(([0u8; 32], Rejection::MalformedInstruction))?;
            let reject = |r| (ins.id, r);
            if !MayDebit::<T>::contains_key((origin, sender, ins.from)) {
                return Err(reject(Rejection::MayNotDebit));
            }
            if Settled::<T>::contains_key((origin, sender, ins.id)) {
                return Err(reject(Rejection::DuplicateInstruction));
            }
            if !IsBank::<T>::contains_key(ins.from) || !IsBank::<T>::contains_key(ins.to) {
                return Err(reject(Rejection::UnknownBank));
            }
            let from_balance = BalanceOf::<T>::get(ins.from);
            let amount = ins
                .amount_u128()
                .filter(|a| *a <= from_balance)
                .ok_or(reject(Rejection::InsufficientFunds))?;
            let debited = from_balance - amount;
            let to_balance = if ins.from == ins.to {
                debited
            } else {
                BalanceOf::<T>::get(ins.to)
            };
            let credited = to_balance
                .checked_add(amount)
                .ok_or(reject(Rejection::BalanceOverflow))?;
            Settled::<T>::insert((origin, sender, ins.id), ());
            BalanceOf::<T>::insert(ins.from, debited);
            BalanceOf::<T>::insert(ins.to, credited);
            Self::deposit_event(Event::PaymentSettled {
                instruction_id: ins.id,
                from_bank: ins.from,
                to_bank: ins.to,
                amount,
            });
            Ok(ins.id)
        }
    }
}

extern crate alloc;

#[cfg(test)]
mod tests;
