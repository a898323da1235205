//! The clearing app's outcomes, mirroring the EVM app's tests.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

extern crate alloc;

use crate as pallet_isthmus_clearing;
use crate::{
    word_of, BalanceOf, Error, Escrow, EscrowState, Escrowed, Escrows, Event, Instruction,
    LedgerBalance, Limits, Payment, Rejection, Settled, APP_ADDRESS,
};
use frame_support::{assert_noop, assert_ok, derive_impl, parameter_types};
use isthmus_protocol::{MessageId, Receipt, ReceiptOutcome};
use pallet_isthmus::Handled;
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

/// A sent message, as the test outbox keeps it: `(sender, destination, recipient,
/// deadline, body)`.
type Dispatched = ([u8; 32], u32, [u8; 32], u64, alloc::vec::Vec<u8>);

parameter_types! {
    pub const Eur: [u8; 3] = *b"EUR";
    pub static Outgoing: alloc::vec::Vec<Dispatched> = alloc::vec::Vec::new();
    /// The test clock, in unix seconds.
    pub static Now: u64 = 1_000;
}

/// The test clock.
pub struct TestTime;

impl frame_support::traits::UnixTime for TestTime {
    fn now() -> core::time::Duration {
        core::time::Duration::from_secs(Now::get())
    }
}

/// Test member key `i` (protocol/vectors: keccak256("isthmus test signer i")).
fn member_key(i: u8) -> k256::ecdsa::SigningKey {
    let secret = isthmus_protocol::keccak256(format!("isthmus test signer {i}").as_bytes());
    k256::ecdsa::SigningKey::from_slice(&secret).unwrap()
}

/// The test genesis hash and ledger id.
const GENESIS: [u8; 32] = [0x6e; 32];
const LEDGER: u32 = 3;

/// Every origin is signed for by test members 0, 1 and 2, threshold 2; origin 99 is
/// not set up.
pub struct TestQuorum;

impl pallet_isthmus::OriginQuorum for TestQuorum {
    fn signed_by(
        origin: u32,
        digest: &[u8; 32],
        attestations: &[pallet_isthmus::AttestationBytes],
    ) -> Option<(u32, u32)> {
        if origin == 99 {
            return None;
        }
        let members: Vec<[u8; 20]> = (0..3)
            .map(|i| isthmus_protocol::attestation::address_of(member_key(i).verifying_key()))
            .collect();
        let mut seen = Vec::new();
        for a in attestations {
            let Ok(signer) = isthmus_protocol::Attestation(*a).recover(digest) else {
                continue;
            };
            if members.contains(&signer) && !seen.contains(&signer) {
                seen.push(signer);
            }
        }
        Some((seen.len() as u32, 2))
    }

    fn endpoint() -> ([u8; 32], u32) {
        (GENESIS, LEDGER)
    }
}

/// An outbox that keeps what it is given; ids are the keccak of the sequence number.
pub struct TestOutbox;

impl pallet_isthmus::Dispatcher for TestOutbox {
    fn dispatch_from(
        sender: [u8; 32],
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: alloc::vec::Vec<u8>,
    ) -> Result<[u8; 32], DispatchError> {
        let mut sent = Outgoing::get();
        let id = isthmus_protocol::keccak256(&(sent.len() as u64).to_be_bytes());
        sent.push((sender, destination, recipient, deadline, body));
        Outgoing::set(sent);
        Ok(id)
    }

    fn dispatch_weight(_body_len: u32) -> frame_support::weights::Weight {
        frame_support::weights::Weight::zero()
    }
}

impl pallet_isthmus_clearing::Config for Test {
    type AdminOrigin = frame_system::EnsureRoot<u64>;
    type Outbox = TestOutbox;
    type Currency = Eur;
    type UnixTime = TestTime;
    type Quorum = TestQuorum;
}

const ORIGIN: u32 = 1;
const SENDER: [u8; 32] = [0xaa; 32];
const A: [u8; 32] = [0x0a; 32];
const B: [u8; 32] = [0x0b; 32];

fn ext() -> sp_io::TestExternalities {
    let storage = RuntimeGenesisConfig {
        clearing: pallet_isthmus_clearing::GenesisConfig {
            banks: vec![(A, 1_000), (B, 0)],
            debitors: vec![(ORIGIN, SENDER, A), (ORIGIN, SENDER, [0x0c; 32])],
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
            Ok([1; 32])
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
                Rejection::MayNotDebit,
                [3; 32],
            ),
            (
                2,
                SENDER,
                instruction(4, A, B, 1),
                Rejection::MayNotDebit,
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
        assert!(!Settled::<Test>::contains_key((ORIGIN, SENDER, [6; 32])));

        // Bank A is funded by a later payment; the earlier one now settles.
        assert_ok!(Clearing::open_bank(
            RuntimeOrigin::root(),
            [0x0c; 32],
            5_000
        ));
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(8, [0x0c; 32], A, 1)),
            Ok([8; 32])
        );
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(6, A, B, 1_001)),
            Ok([6; 32])
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
        assert!(!Settled::<Test>::contains_key((ORIGIN, SENDER, [9; 32])));
        // A bank paying itself is no overflow.
        assert_ok!(Clearing::set_debitor(
            RuntimeOrigin::root(),
            ORIGIN,
            SENDER,
            rich,
            true
        ));
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(10, rich, rich, 7)),
            Ok([10; 32])
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
            Clearing::set_debitor(RuntimeOrigin::signed(1), 2, SENDER, [0x0c; 32], true),
            DispatchError::BadOrigin
        );
        assert_ok!(Clearing::open_bank(RuntimeOrigin::root(), [0x0c; 32], 5));
        // An open bank's balance moves only by payments.
        assert_noop!(
            Clearing::open_bank(RuntimeOrigin::root(), [0x0c; 32], 1_000_000),
            Error::<Test>::BankExists
        );
        assert_ok!(Clearing::set_debitor(
            RuntimeOrigin::root(),
            2,
            SENDER,
            [0x0c; 32],
            true
        ));
        assert_eq!(
            Clearing::handle_instruction(2, SENDER, &instruction(8, [0x0c; 32], A, 5)),
            Ok([8; 32])
        );
        assert_eq!(BalanceOf::<Test>::get(A), 1_005);
        assert_ok!(Clearing::set_debitor(
            RuntimeOrigin::root(),
            2,
            SENDER,
            [0x0c; 32],
            false
        ));
        assert_eq!(
            Clearing::handle_instruction(2, SENDER, &instruction(9, [0x0c; 32], A, 5)),
            Err(Rejection::MayNotDebit)
        );
    });
}

/// An instruction's sender debits only the banks it was allowed to, and its ids are
/// its own: another sender's instruction with the same id settles.
#[test]
fn instructions_are_bound_to_their_sender() {
    ext().execute_with(|| {
        let other = [0xcc; 32];
        // SENDER may debit A, not B.
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(1, B, A, 0)),
            Err(Rejection::MayNotDebit)
        );
        assert_eq!(
            Clearing::handle_message(ORIGIN, SENDER, &instruction(1, B, A, 0)),
            Ok(Handled::Accepted([0; 32])),
            "a final refusal ends the message"
        );
        assert_eq!(
            Clearing::handle_message(ORIGIN, SENDER, &instruction(1, A, B, 10)),
            Ok(Handled::Accepted([1; 32]))
        );
        assert_ok!(Clearing::set_debitor(
            RuntimeOrigin::root(),
            ORIGIN,
            other,
            A,
            true
        ));
        assert_eq!(
            Clearing::handle_message(ORIGIN, other, &instruction(1, A, B, 5)),
            Ok(Handled::Accepted([1; 32])),
            "the same id from another sender is another instruction"
        );
        assert_eq!(
            Clearing::handle_instruction(ORIGIN, SENDER, &instruction(1, A, B, 10)),
            Err(Rejection::DuplicateInstruction)
        );
        assert_eq!(BalanceOf::<Test>::get(A), 985);
        assert_eq!(BalanceOf::<Test>::get(B), 15);
        // A state-dependent refusal is a handler failure: the message stays deliverable.
        assert!(Clearing::handle_message(ORIGIN, SENDER, &instruction(2, A, B, 5_000)).is_err());
    });
}

// ---------------------------------------------------------------- payments

const DEST: u32 = 7;
const PEER: [u8; 32] = [0x9e; 32];
const OPERATOR: u64 = 42;

/// Bank A operated by OPERATOR; the clearing app on DEST known; DEST's account here
/// opened with 500.
fn payments() {
    assert_ok!(Clearing::set_bank_owner(
        RuntimeOrigin::root(),
        A,
        Some(OPERATOR)
    ));
    assert_ok!(Clearing::set_peer(RuntimeOrigin::root(), DEST, PEER));
    assert_ok!(Clearing::open_ledger_account(
        RuntimeOrigin::root(),
        DEST,
        500
    ));
}

fn pay(uetr: u8, amount: u128) -> Result<[u8; 32], DispatchError> {
    let before = Outgoing::get().len();
    Clearing::pay(
        RuntimeOrigin::signed(OPERATOR),
        DEST,
        [uetr; 32],
        A,
        [0xcd; 32],
        amount,
        0,
    )?;
    assert_eq!(Outgoing::get().len(), before + 1);
    Ok(isthmus_protocol::keccak256(&(before as u64).to_be_bytes()))
}

fn receipt(id: [u8; 32], outcome: ReceiptOutcome, result: [u8; 32]) -> Receipt {
    Receipt {
        id: MessageId(id),
        nonce: 0,
        outcome,
        result,
    }
}

/// Balances plus ledger accounts plus escrow.
fn total() -> u128 {
    BalanceOf::<Test>::iter_values().sum::<u128>()
        + LedgerBalance::<Test>::iter_values().sum::<u128>()
        + Escrowed::<Test>::get()
}

#[test]
fn a_payment_is_escrowed_and_settles_or_returns_once() {
    ext().execute_with(|| {
        Outgoing::set(vec![]);
        payments();
        let opening = total();
        let settled = pay(1, 100).unwrap();
        // Sent by the app to its peer, with the business fields, in escrow.
        let (sender, destination, recipient, deadline, body) = Outgoing::get()[0].clone();
        assert_eq!(
            (sender, destination, recipient, deadline),
            (APP_ADDRESS, DEST, PEER, 0)
        );
        assert_eq!(
            Payment::parse(&body),
            Some(Payment {
                uetr: [1; 32],
                debtor: A,
                creditor: [0xcd; 32],
                amount: word_of(100),
                currency: *b"EUR"
            })
        );
        assert_eq!(BalanceOf::<Test>::get(A), 900);
        assert_eq!(Escrowed::<Test>::get(), 100);
        assert_eq!(total(), opening);
        let returned = pay(2, 30).unwrap();
        let expired = pay(3, 20).unwrap();
        assert_eq!(Escrowed::<Test>::get(), 150);

        assert_ok!(Clearing::on_receipt(
            DEST,
            &receipt(settled, ReceiptOutcome::Delivered, [1; 32])
        ));
        let refusal = pallet_isthmus::code("unknown bank");
        assert_ok!(Clearing::on_receipt(
            DEST,
            &receipt(returned, ReceiptOutcome::Refused, refusal)
        ));
        assert_ok!(Clearing::on_receipt(
            DEST,
            &receipt(expired, ReceiptOutcome::Expired, [0; 32])
        ));
        assert_eq!(
            last_event(),
            Event::EscrowReturned {
                id: expired,
                uetr: [3; 32],
                debtor: A,
                amount: 20,
                outcome: 3,
                result: [0; 32]
            }
        );
        assert_eq!(BalanceOf::<Test>::get(A), 900, "30 and 20 came back");
        assert_eq!(LedgerBalance::<Test>::get(DEST), Some(600), "100 settled");
        assert_eq!(Escrowed::<Test>::get(), 0);
        assert_eq!(total(), opening);
        assert_eq!(
            Escrows::<Test>::get(returned),
            Some(Escrow {
                uetr: [2; 32],
                debtor: A,
                amount: 30,
                destination: DEST,
                state: EscrowState::Returned
            })
        );
        // Never twice, never from another destination, never for an unknown id.
        for (id, from) in [(settled, DEST), (returned, DEST), (expired, DEST)] {
            assert_noop!(
                Clearing::on_receipt(from, &receipt(id, ReceiptOutcome::Refused, [0; 32])),
                Error::<Test>::NoOpenEscrow
            );
        }
        let open = pay(4, 1).unwrap();
        assert_noop!(
            Clearing::on_receipt(DEST + 1, &receipt(open, ReceiptOutcome::Refused, [0; 32])),
            Error::<Test>::NoOpenEscrow
        );
        assert_noop!(
            Clearing::on_receipt(
                DEST,
                &receipt([0x77; 32], ReceiptOutcome::Delivered, [0; 32])
            ),
            Error::<Test>::NoOpenEscrow
        );
        assert_eq!(total(), opening);
    });
}

#[test]
fn only_the_debtors_operator_pays_what_it_has_once() {
    ext().execute_with(|| {
        Outgoing::set(vec![]);
        let attempt = |who: u64, destination: u32, uetr: u8, amount: u128| {
            Clearing::pay(
                RuntimeOrigin::signed(who),
                destination,
                [uetr; 32],
                A,
                B,
                amount,
                0,
            )
        };
        assert_noop!(attempt(OPERATOR, DEST, 1, 1), Error::<Test>::NotBankOwner);
        payments();
        assert_noop!(attempt(7, DEST, 1, 1), Error::<Test>::NotBankOwner);
        assert_noop!(attempt(OPERATOR, DEST + 1, 1, 1), Error::<Test>::NoPeer);
        assert_noop!(attempt(OPERATOR, DEST, 1, 0), Error::<Test>::ZeroAmount);
        assert_noop!(
            attempt(OPERATOR, DEST, 1, 1_001),
            Error::<Test>::InsufficientFunds
        );
        assert_ok!(attempt(OPERATOR, DEST, 1, 1_000));
        assert_noop!(
            attempt(OPERATOR, DEST, 1, 1),
            Error::<Test>::DuplicatePayment
        );
        assert_eq!(Outgoing::get().len(), 1);
        assert_noop!(
            Clearing::open_ledger_account(RuntimeOrigin::root(), DEST, 1),
            Error::<Test>::LedgerAccountExists
        );
        assert_noop!(
            Clearing::set_peer(RuntimeOrigin::signed(OPERATOR), DEST, [0; 32]),
            DispatchError::BadOrigin
        );
    });
}

fn payment_body(uetr: u8, creditor: [u8; 32], amount: u128, currency: [u8; 3]) -> Vec<u8> {
    Payment {
        uetr: [uetr; 32],
        debtor: [0xde; 32],
        creditor,
        amount: word_of(amount),
        currency,
    }
    .encode()
    .to_vec()
}

#[test]
fn a_payment_from_the_peer_is_credited_or_refused_for_good() {
    ext().execute_with(|| {
        payments();
        let opening = total();
        let credit = |sender, body: Vec<u8>| Clearing::handle_message(DEST, sender, &body);
        assert_eq!(
            credit(PEER, payment_body(1, B, 200, *b"EUR")),
            Ok(Handled::Accepted([1; 32]))
        );
        assert_eq!(BalanceOf::<Test>::get(B), 200);
        assert_eq!(LedgerBalance::<Test>::get(DEST), Some(300));
        assert_eq!(total(), opening);
        let refused = |text| Ok(Handled::Refused(pallet_isthmus::code(text)));
        assert_eq!(
            credit([0x11; 32], payment_body(2, B, 1, *b"EUR")),
            refused("untrusted sender")
        );
        assert_eq!(
            credit(PEER, payment_body(2, B, 1, *b"USD")),
            refused("wrong currency")
        );
        assert_eq!(
            credit(PEER, payment_body(1, B, 1, *b"EUR")),
            refused("duplicate payment")
        );
        assert_eq!(
            credit(PEER, payment_body(2, [0x0f; 32], 1, *b"EUR")),
            refused("unknown bank")
        );
        assert_eq!(
            credit(PEER, payment_body(2, B, 301, *b"EUR")),
            refused("insufficient funds")
        );
        let mut padded = payment_body(2, B, 1, *b"EUR");
        padded[140] = 1;
        assert_eq!(credit(PEER, padded), refused("malformed payment"));
        // From a ledger with no account here: nothing to credit out of.
        assert_ok!(Clearing::set_peer(RuntimeOrigin::root(), 9, PEER));
        assert_eq!(
            Clearing::handle_message(9, PEER, &payment_body(3, B, 1, *b"EUR")),
            refused("insufficient funds")
        );
        assert_eq!(BalanceOf::<Test>::get(B), 200);
        assert_eq!(total(), opening);
    });
}

// ---------------------------------------------------------------- value limits

const DEBTOR: [u8; 32] = [0xde; 32];
const DAY: u32 = 86_400;

fn held(text: &str) -> Result<Handled, DispatchError> {
    Ok(Handled::Held(pallet_isthmus::code(text)))
}

#[test]
fn payments_over_a_limit_are_held_and_a_released_one_is_credited() {
    ext().execute_with(|| {
        payments();
        let opening = total();
        // The route from DEST: 300 a day, none above 250; its debtor: 200 a day.
        assert_ok!(Clearing::set_limit(
            RuntimeOrigin::root(),
            DEST,
            [0; 32],
            300,
            DAY,
            250
        ));
        assert_ok!(Clearing::set_limit(
            RuntimeOrigin::root(),
            DEST,
            DEBTOR,
            200,
            DAY,
            0
        ));
        let credit = |uetr, amount| {
            Clearing::handle_message(DEST, PEER, &payment_body(uetr, B, amount, *b"EUR"))
        };
        assert_eq!(credit(1, 100), Ok(Handled::Accepted([1; 32])));
        assert_eq!(credit(2, 260), held("large value"));
        assert_eq!(credit(3, 150), held("over bank limit"));
        assert_eq!(credit(4, 50), Ok(Handled::Accepted([4; 32])));
        assert_eq!(credit(5, 200), held("over route limit"));
        // Refusals come before holds: a payment that can never be credited is not held.
        assert_eq!(
            credit(1, 100),
            Ok(Handled::Refused(pallet_isthmus::code("duplicate payment")))
        );
        assert_eq!(BalanceOf::<Test>::get(B), 150);
        // A held payment wrote nothing: the allowances are as the credits left them.
        let route = Limits::<Test>::get((DEST, [0u8; 32])).unwrap();
        assert_eq!(route.available_at(Now::get()), 150);
        // Released: credited past the limits, the allowances down to zero.
        assert_eq!(
            Clearing::handle_released(DEST, PEER, &payment_body(2, B, 260, *b"EUR")),
            Ok(Handled::Accepted([2; 32]))
        );
        assert_eq!(BalanceOf::<Test>::get(B), 410);
        assert_eq!(Limits::<Test>::get((DEST, [0u8; 32])).unwrap().available, 0);
        assert_eq!(Limits::<Test>::get((DEST, DEBTOR)).unwrap().available, 0);
        // A released payment is still refused for good where it must be.
        assert_eq!(
            Clearing::handle_released(DEST, PEER, &payment_body(2, B, 260, *b"EUR")),
            Ok(Handled::Refused(pallet_isthmus::code("duplicate payment")))
        );
        // The allowances refill over the window: half a day, half the capacity.
        Now::set(Now::get() + u64::from(DAY / 2));
        assert_eq!(credit(5, 80), Ok(Handled::Accepted([5; 32])));
        let left = |debtor| Limits::<Test>::get((DEST, debtor)).unwrap().available;
        assert_eq!((left([0u8; 32]), left(DEBTOR)), (70, 20));
        assert_eq!(total(), opening);
    });
}

fn change(version: u32, by: &[u8]) -> frame_support::dispatch::DispatchResult {
    let digest = isthmus_protocol::LimitChange {
        origin: DEST,
        debtor: DEBTOR,
        capacity: 5_000,
        window: DAY,
        large_value: 2_000,
        version,
    }
    .pallet_digest(GENESIS, LEDGER);
    let attestations = by
        .iter()
        .map(|i| {
            isthmus_protocol::Attestation::sign(&member_key(*i), &digest)
                .unwrap()
                .0
        })
        .collect();
    Clearing::change_limit(
        RuntimeOrigin::signed(OPERATOR),
        DEST,
        DEBTOR,
        5_000,
        DAY,
        2_000,
        version,
        attestations,
    )
}

#[test]
fn a_limit_is_set_up_once_by_the_admin_and_changed_only_by_a_quorum() {
    ext().execute_with(|| {
        assert_noop!(
            Clearing::set_limit(RuntimeOrigin::signed(OPERATOR), DEST, DEBTOR, 100, DAY, 0),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Clearing::set_limit(RuntimeOrigin::root(), DEST, DEBTOR, 100, 0, 0),
            Error::<Test>::BadLimit
        );
        assert_noop!(change(2, &[0, 1]), Error::<Test>::WrongLimitVersion);
        assert_ok!(Clearing::set_limit(
            RuntimeOrigin::root(),
            DEST,
            DEBTOR,
            1_000,
            DAY,
            0
        ));
        assert_noop!(
            Clearing::set_limit(RuntimeOrigin::root(), DEST, DEBTOR, 5_000, DAY, 0),
            Error::<Test>::LimitExists
        );
        // One member, one member twice, a stranger with one member: no quorum. The
        // admin (root) cannot submit a change at all.
        for by in [&[0u8][..], &[1, 1], &[3, 1]] {
            assert_noop!(change(2, by), Error::<Test>::LimitQuorumNotReached);
        }
        assert_noop!(
            Clearing::change_limit(
                RuntimeOrigin::root(),
                DEST,
                DEBTOR,
                5_000,
                DAY,
                2_000,
                2,
                vec![]
            ),
            DispatchError::BadOrigin
        );
        assert_ok!(change(2, &[0, 2]));
        assert_eq!(
            last_event(),
            Event::LimitSet {
                origin: DEST,
                debtor: DEBTOR,
                capacity: 5_000,
                window: DAY,
                large_value: 2_000,
                version: 2
            }
        );
        // Replayed: the version moved on.
        assert_noop!(change(2, &[0, 2]), Error::<Test>::WrongLimitVersion);
        let limit = Limits::<Test>::get((DEST, DEBTOR)).unwrap();
        // A raised limit keeps what was left, not a fresh allowance.
        assert_eq!(
            (limit.capacity, limit.available, limit.version),
            (5_000, 1_000, 2)
        );
    });
}
