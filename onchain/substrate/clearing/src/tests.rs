//! The clearing app's outcomes, mirroring the EVM app's tests.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use crate as pallet_isthmus_clearing;
use crate::{BalanceOf, Error, Event, Instruction, Rejection, Settled};
use frame_support::{assert_noop, assert_ok, derive_impl};
use sp_runtime::{BuildStorage, DispatchError};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Clearing: pallet_isthmus_clearing,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
}

impl pallet_isthmus_clearing::Config for Test {
    type AdminOrigin = frame_system::EnsureRoot<u64>;
}

const ORIGIN: u32 = 1;
const SENDER: [u8; 32] = [0xaa; 32];
const A: [u8; 32] = [0x0a; 32];
const B: [u8; 32] = [0x0b; 32];

fn ext() -> sp_io::TestExternalities {
    let storage = RuntimeGenesisConfig {
        clearing: pallet_isthmus_clearing::GenesisConfig {
            banks: vec![(A, 1_000), (B, 0)],
            trusted_senders: vec![(ORIGIN, SENDER)],
            ..Default::default()
        },
        ..Default::default()
    }
    .build_storage()
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

fn instruction(id: u8, from: [u8; 32], to: [u8; 32], amount: u128) -> Vec<u8> {
    let mut amount_word = [0u8; 32];
    amount_word[16..].copy_from_slice(&amount.to_be_bytes());
    Instruction {
        id: [id; 32],
        from,
        to,
        amount: amount_word,
    }
    .encode()
    .to_vec()
}

fn last_event() -> Event<Test> {
    System::events()
        .into_iter()
        .rev()
        .find_map(|r| match r.event {
            RuntimeEvent::Clearing(e) => Some(e),
            _ => None,
        })
        .unwrap()
}

#[test]
fn settles_a_trusted_instruction_once() {
    ext().execute_with(|| {
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(1, A, B, 300)),
            Ok(())
        );
        assert_eq!(BalanceOf::<Test>::get(A), 700);
        assert_eq!(BalanceOf::<Test>::get(B), 300);
        assert_eq!(
            last_event(),
            Event::PaymentSettled {
                instruction_id: [1; 32],
                from_bank: A,
                to_bank: B,
                amount: 300
            }
        );
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(1, A, B, 300)),
            Err(Rejection::DuplicateInstruction)
        );
        assert_eq!(BalanceOf::<Test>::get(A), 700);
    });
}

#[test]
fn business_refusals_are_recorded() {
    ext().execute_with(|| {
        let cases = [
            (
                ORIGIN,
                SENDER,
                instruction(2, A, B, 1)[..127].to_vec(),
                Rejection::MalformedInstruction,
                [0u8; 32],
            ),
            (
                ORIGIN,
                [0xbb; 32],
                instruction(3, A, B, 1),
                Rejection::UntrustedSender,
                [3; 32],
            ),
            (
                2,
                SENDER,
                instruction(4, A, B, 1),
                Rejection::UntrustedSender,
                [4; 32],
            ),
        ];
        for (origin, sender, body, reason, id) in cases {
            assert_eq!(
                Clearing::handle_instruction(origin, sender, &body),
                Err(reason)
            );
            assert_eq!(
                last_event(),
                Event::InstructionRejected {
                    instruction_id: id,
                    reason
                }
            );
        }
        assert_eq!(BalanceOf::<Test>::get(A), 1_000);
        assert_eq!(BalanceOf::<Test>::get(B), 0);
    });
}

/// Refusals that depend on state leave the message deliverable (no event, no
/// write, not settled): a payment delivered before the one that funds it settles on
/// retry, whatever order the messages arrive in.
#[test]
fn state_dependent_refusals_are_not_final_and_settle_on_retry() {
    ext().execute_with(|| {
        let events = System::events().len();
        for (body, reason) in [
            (instruction(5, A, [0x0c; 32], 1), Rejection::UnknownBank),
            (instruction(6, A, B, 1_001), Rejection::InsufficientFunds),
        ] {
            assert!(!reason.is_final());
            assert_eq!(
                Clearing::handle_instruction(ORIGIN, SENDER, &body),
                Err(reason)
            );
        }
        // An amount beyond u128 exceeds every balance.
        let mut huge = instruction(7, A, B, 0);
        huge[96] = 1;
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &huge),
            Err(Rejection::InsufficientFunds)
        );
        assert_eq!(System::events().len(), events, "nothing recorded");
        assert!(!Settled::<Test>::contains_key([6; 32]));

        // Bank A is funded by a later payment; the earlier one now settles.
        assert_ok!(Clearing::open_bank(
            RuntimeOrigin::root(),
            [0x0c; 32],
            5_000
        ));
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(8, [0x0c; 32], A, 1)),
            Ok(())
        );
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(6, A, B, 1_001)),
            Ok(())
        );
        assert_eq!(BalanceOf::<Test>::get(A), 0);
        assert_eq!(BalanceOf::<Test>::get(B), 1_001);
    });
}

/// A credit that would exceed u128 is refused (retryable), never saturated: the
/// EVM app reverts in the same case, and no value is destroyed.
#[test]
fn a_credit_beyond_u128_is_refused_not_saturated() {
    ext().execute_with(|| {
        let rich = [0x0d; 32];
        assert_ok!(Clearing::open_bank(RuntimeOrigin::root(), rich, u128::MAX));
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(9, A, rich, 1)),
            Err(Rejection::BalanceOverflow)
        );
        assert!(!Rejection::BalanceOverflow.is_final());
        assert_eq!(BalanceOf::<Test>::get(A), 1_000, "nothing debited");
        assert_eq!(BalanceOf::<Test>::get(rich), u128::MAX);
        assert!(!Settled::<Test>::contains_key([9; 32]));
        // A bank paying itself is no overflow.
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(10, rich, rich, 7)),
            Ok(())
        );
        assert_eq!(BalanceOf::<Test>::get(rich), u128::MAX);
    });
}

#[test]
fn administration_requires_root() {
    ext().execute_with(|| {
        assert_noop!(
            Clearing::open_bank(RuntimeOrigin::signed(1), [0x0c; 32], 5),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Clearing::set_trusted_sender(RuntimeOrigin::signed(1), 2, SENDER, true),
            DispatchError::BadOrigin
        );
        assert_ok!(Clearing::open_bank(RuntimeOrigin::root(), [0x0c; 32], 5));
        // An open bank's balance moves only by payments.
        assert_noop!(
            Clearing::open_bank(RuntimeOrigin::root(), [0x0c; 32], 1_000_000),
            Error::<Test>::BankExists
        );
        assert_ok!(Clearing::set_trusted_sender(
            RuntimeOrigin::root(),
            2,
            SENDER,
            true
        ));
        assert_eq!(
            Clearing::handle_instruction(2, SENDER, &instruction(8, [0x0c; 32], A, 5)),
            Ok(())
        );
        assert_eq!(BalanceOf::<Test>::get(A), 1_005);
        assert_ok!(Clearing::set_trusted_sender(
            RuntimeOrigin::root(),
            2,
            SENDER,
            false
        ));
        assert_eq!(
            Clearing::handle_instruction(2, SENDER, &instruction(9, A, [0x0c; 32], 5)),
            Err(Rejection::UntrustedSender)
        );
    });
}
