//! `pallet-isthmus-clearing`: the example inter-bank clearing application on a
//! Substrate ledger, with the semantics of `onchain/evm/src/ClearingApp.sol`.
//!
//! Each bank (a 32-byte identifier) has a settlement balance. A payment instruction
//! delivered by the Isthmus inbox from a trusted sender on another ledger moves
//! `amount` from one bank to another. Refusals that can never change (malformed
//! instruction, untrusted sender, duplicate instruction) are final: they are recorded
//! by [`Event::InstructionRejected`] and consume the message, so a refused payment is
//! never retried into a double settlement. Refusals that depend on state (unknown
//! bank, insufficient funds, a balance that would overflow) are not: the runtime
//! reports them as a handler failure, the message stays deliverable and settles when
//! it is retried after the state changed (a payment delivered before the one that
//! funds it), as on EVM ([`Rejection::is_final`]).
//!
//! Body: `abi.encode(bytes32 instructionId, bytes32 fromBank, bytes32 toBank, uint256
//! amount)`, 128 bytes, the same bytes an EVM sender produces. Balances are `u128`; an
//! amount of 2^128 or more exceeds every balance and is refused as insufficient funds,
//! the outcome the EVM app gives too for any amount above the balance.
//!
//! The runtime routes messages whose recipient is [`APP_ADDRESS`] to
//! [`Pallet::handle_instruction`]; nothing else can call it (the EVM app's `NotInbox`).
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
        let word = |i: usize| {
            let mut w = [0u8; 32];
            w.copy_from_slice(&body[i * 32..(i + 1) * 32]);
            w
        };
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
        if self.amount[..16].iter().any(|b| *b != 0) {
            return None;
        }
        let mut low = [0u8; 16];
        low.copy_from_slice(&self.amount[16..]);
        Some(u128::from_be_bytes(low))
    }
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: frame_system::Config {
        /// Who opens banks and trusts senders (Root in the dev runtime).
        type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
    }

    /// Settlement balance per bank.
    #[pallet::storage]
    pub type BalanceOf<T> = StorageMap<_, Blake2_128Concat, [u8; 32], u128, ValueQuery>;

    /// Opened banks.
    #[pallet::storage]
    pub type IsBank<T> = StorageMap<_, Blake2_128Concat, [u8; 32], (), OptionQuery>;

    /// Settled instruction ids.
    #[pallet::storage]
    pub type Settled<T> = StorageMap<_, Blake2_128Concat, [u8; 32], (), OptionQuery>;

    /// `(origin ledger, sender)` allowed to instruct payments.
    #[pallet::storage]
    pub type TrustedSender<T> =
        StorageDoubleMap<_, Twox64Concat, u32, Blake2_128Concat, [u8; 32], (), OptionQuery>;

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
        /// The body is not 128 bytes.
        MalformedInstruction,
        /// The sender is not trusted for its origin.
        UntrustedSender,
        /// The instruction id was settled before.
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
                | Rejection::UntrustedSender
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
                Rejection::UntrustedSender => "untrusted sender",
                Rejection::DuplicateInstruction => "duplicate instruction",
                Rejection::UnknownBank => "unknown bank",
                Rejection::InsufficientFunds => "insufficient funds",
                Rejection::BalanceOverflow => "balance overflow",
            }
        }
    }

    /// Errors of the administrative calls.
    #[pallet::error]
    pub enum Error<T> {
        /// The bank is open already: its balance changes only by payments.
        BankExists,
    }

    /// Genesis: banks with opening balances and trusted senders.
    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// `(bank, balance)`.
        pub banks: alloc::vec::Vec<([u8; 32], u128)>,
        /// `(origin ledger, sender)`.
        pub trusted_senders: alloc::vec::Vec<(u32, [u8; 32])>,
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
            for (origin, sender) in &self.trusted_senders {
                TrustedSender::<T>::insert(origin, sender, ());
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
        /// A sender's trust changed.
        SenderTrusted {
            /// Origin ledger.
            origin: u32,
            /// Sender.
            sender: [u8; 32],
            /// Trusted or not.
            trusted: bool,
        },
        /// A payment was settled.
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

        /// Trusts (or distrusts) `sender` on `origin_ledger` to instruct payments.
        #[pallet::call_index(1)]
        #[pallet::weight(T::DbWeight::get().writes(1).saturating_add(Weight::from_parts(10_000_000, 0)))]
        pub fn set_trusted_sender(
            origin: OriginFor<T>,
            origin_ledger: u32,
            sender: [u8; 32],
            trusted: bool,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            if trusted {
                TrustedSender::<T>::insert(origin_ledger, sender, ());
            } else {
                TrustedSender::<T>::remove(origin_ledger, sender);
            }
            Self::deposit_event(Event::SenderTrusted {
                origin: origin_ledger,
                sender,
                trusted,
            });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// Applies one delivered instruction; the refusal order is the EVM app's. A
        /// final refusal is recorded ([`Event::InstructionRejected`]); one that depends
        /// on state is only returned (the runtime reports it as a handler failure and
        /// rolls back, so nothing of it stays).
        pub fn handle_instruction(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<(), Rejection> {
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
            Ok(())
        }

        fn try_settle(
            origin: u32,
            sender: [u8; 32],
            body: &[u8],
        ) -> Result<(), ([u8; 32], Rejection)> {
            let ins =
                Instruction::parse(body).ok_or(([0u8; 32], Rejection::MalformedInstruction))?;
            let reject = |r| (ins.id, r);
            if !TrustedSender::<T>::contains_key(origin, sender) {
                return Err(reject(Rejection::UntrustedSender));
            }
            if Settled::<T>::contains_key(ins.id) {
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
            Settled::<T>::insert(ins.id, ());
            BalanceOf::<T>::insert(ins.from, debited);
            BalanceOf::<T>::insert(ins.to, credited);
            Self::deposit_event(Event::PaymentSettled {
                instruction_id: ins.id,
                from_bank: ins.from,
                to_bank: ins.to,
                amount,
            });
            Ok(())
        }
    }
}

extern crate alloc;

#[cfg(test)]
mod tests;
