//! Unit tests: every refusal of the inbox, the batch path, the outbox, and the
//! published protocol vectors.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use crate::mock::*;
use crate::{
    AttestationOutcome, CheckpointArg, Error, Event, HeldCount, HoldState, Holds, InvalidSignature,
    OutboxCommitment, OutboxCount, OutboxRoot, PendingReceipt, PendingReceipts, Processed,
    ReceiptEndpoints, ReceiptsTaken, RouteStates, Sent, SentMessage, SkipReason,
    COMMITMENT_ENGINE_ID, INBOX_ID, OUTBOX_ID,
};
use codec::{Decode, Encode};
use frame_support::traits::Hooks;
use frame_support::{assert_noop, assert_ok};
use isthmus_protocol::{Address32, Attestation, MerkleTree, Message, TREE_DEPTH};
use k256::ecdsa::SigningKey;
use sp_runtime::{AccountId32, DispatchError};

const ORIGIN: u32 = 1;
const SOURCE_OUTBOX: [u8; 32] = [0x5f; 32];

fn alice() -> AccountId32 {
    AccountId32::new([1u8; 32])
}

fn key(i: u8) -> SigningKey {
    let secret = isthmus_protocol::keccak256(format!("isthmus test signer {i}").as_bytes());
    SigningKey::from_slice(&secret).unwrap()
}

fn address(i: u8) -> [u8; 20] {
    isthmus_protocol::attestation::address_of(key(i).verifying_key())
}

fn sign(i: u8, cp: &CheckpointArg) -> [u8; 65] {
    sign_for(&crate::mock::network(), i, cp)
}

/// Member `i`'s signature over `cp` as a member of `network`.
fn sign_for(network: &isthmus_protocol::Network, i: u8, cp: &CheckpointArg) -> [u8; 65] {
    let digest = isthmus_protocol::Checkpoint::from(*cp).digest(network);
    Attestation::sign(&key(i), &digest).unwrap().0
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Isthmus(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Configures ORIGIN with signers 0, 1, 2 and threshold 2.
fn configure() {
    assert_ok!(Isthmus::set_origin(
        RuntimeOrigin::root(),
        ORIGIN,
        SOURCE_OUTBOX,
        vec![address(0), address(1), address(2)],
        2
    ));
}

fn message(nonce: u64, deadline: u64, body: &[u8]) -> Message {
    Message {
        nonce,
        origin: ORIGIN,
        sender: Address32([0xaa; 32]),
        destination: LOCAL,
        recipient: Address32([0xbb; 32]),
        deadline,
        body: body.to_vec(),
    }
}

/// A source outbox holding `messages` (in nonce order) and a checkpoint of it.
struct Source {
    tree: MerkleTree,
    messages: Vec<Message>,
    checkpoint: CheckpointArg,
}

impl Source {
    fn new(messages: Vec<Message>) -> Self {
        let tree = MerkleTree::from_leaves(messages.iter().map(|m| m.id().0).collect()).unwrap();
        let checkpoint = CheckpointArg {
            origin: ORIGIN,
            outbox: SOURCE_OUTBOX,
            root: tree.root(),
            count: u32::try_from(tree.count()).unwrap(),
            block_number: 17,
            block_hash: [0x17; 32],
        };
        Self {
            tree,
            messages,
            checkpoint,
        }
    }

    fn standard() -> Self {
        Self::new(vec![
            message(0, 0, b"zero"),
            message(1, 0, FAILING_BODY),
            message(2, 1_000, b"expires at 1000"),
            message(3, 0, b"three"),
        ])
    }

    fn encoded(&self, i: usize) -> Vec<u8> {
        self.messages[i].encode()
    }

    fn branch(&self, i: usize) -> [[u8; 32]; TREE_DEPTH] {
        self.tree.branch(i as u64).unwrap().siblings
    }

    fn sigs(&self, signers: &[u8]) -> Vec<[u8; 65]> {
        signers.iter().map(|i| sign(*i, &self.checkpoint)).collect()
    }

    fn process(&self, i: usize, signers: &[u8]) -> frame_support::dispatch::DispatchResult {
        Isthmus::process(
            RuntimeOrigin::signed(alice()),
            self.checkpoint,
            self.sigs(signers),
            self.encoded(i),
            Box::new(self.branch(i)),
        )
    }
}

/// `n - s` for the secp256k1 order `n`, big-endian.
fn order_minus(s: &[u8; 32]) -> [u8; 32] {
    let n =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(n[i]) - i16::from(s[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

fn set_time_secs(secs: u64) {
    pallet_timestamp::Now::<Test>::put(secs * 1000);
}

// ---------------------------------------------------------------- outbox

#[test]
fn outbox_id_is_the_documented_hash() {
    assert_eq!(
        OUTBOX_ID,
        isthmus_protocol::keccak256(b"isthmus pallet outbox")
    );
}

#[test]
fn genesis_stores_the_empty_root() {
    new_test_ext().execute_with(|| {
        assert_eq!(
            OutboxRoot::<Test>::get(),
            MerkleTree::from_leaves(vec![]).unwrap().root()
        );
        assert!(OutboxRoot::<Test>::exists());
        assert_eq!(OutboxCount::<Test>::get(), 0);
    });
}

#[test]
fn dispatch_assigns_nonces_and_commits_to_the_tree() {
    new_test_ext().execute_with(|| {
        let mut ids = Vec::new();
        for n in 0..5u64 {
            let body = vec![n as u8; n as usize * 7];
            assert_ok!(Isthmus::dispatch(
                RuntimeOrigin::signed(alice()),
                9,
                [0xcc; 32],
                n * 1000,
                body.clone()
            ));
            let expected = Message {
                nonce: n,
                origin: LOCAL,
                sender: Address32::from_account_id([1u8; 32]),
                destination: 9,
                recipient: Address32([0xcc; 32]),
                deadline: n * 1000,
                body,
            };
            ids.push(expected.id().0);
            assert_eq!(
                events().last().unwrap(),
                &Event::Dispatch {
                    id: expected.id().0,
                    destination: 9,
                    nonce: n,
                    message: expected.encode(),
                }
            );
            let tree = MerkleTree::from_leaves(ids.clone()).unwrap();
            assert_eq!(OutboxRoot::<Test>::get(), tree.root());
            assert_eq!(u64::from(OutboxCount::<Test>::get()), tree.count());
        }
    });
}

/// The commitment items `on_finalize` left in the block's digest.
fn commitments() -> Vec<OutboxCommitment> {
    frame_system::Pallet::<Test>::digest()
        .logs
        .iter()
        .filter_map(|item| match item {
            sp_runtime::DigestItem::Consensus(id, data) if *id == COMMITMENT_ENGINE_ID => {
                Some(OutboxCommitment::decode(&mut data.as_slice()).unwrap())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_block_commits_the_outbox_in_its_digest() {
    new_test_ext().execute_with(|| {
        // An untouched outbox still commits: any final block is a checkpoint.
        Isthmus::on_finalize(1);
        let empty = MerkleTree::from_leaves(vec![]).unwrap().root();
        assert_eq!(
            commitments(),
            vec![OutboxCommitment {
                root: empty,
                count: 0
            }]
        );
        // The next block commits the state after its dispatches, and only once.
        frame_system::Pallet::<Test>::reset_events();
        frame_system::Pallet::<Test>::initialize(&2, &Default::default(), &Default::default());
        assert_ok!(Isthmus::dispatch(
            RuntimeOrigin::signed(alice()),
            9,
            [0xcc; 32],
            0,
            b"pay".to_vec()
        ));
        Isthmus::on_finalize(2);
        let committed = commitments();
        assert_eq!(committed.len(), 1);
        assert_eq!(committed[0].count, 1);
        assert_eq!(committed[0].root, OutboxRoot::<Test>::get());
        assert_ne!(committed[0].root, empty);
        // The documented layout: root, then the count little-endian, 36 bytes.
        let bytes = committed[0].encode();
        assert_eq!(bytes.len(), 36);
        assert_eq!(&bytes[..32], &committed[0].root);
        assert_eq!(&bytes[32..], &1u32.to_le_bytes());
    });
}

#[test]
fn dispatch_refusals() {
    new_test_ext().execute_with(|| {
        assert_noop!(
            Isthmus::dispatch(RuntimeOrigin::signed(alice()), LOCAL, [0; 32], 0, vec![]),
            Error::<Test>::DestinationIsLocal
        );
        assert_noop!(
            Isthmus::dispatch(
                RuntimeOrigin::signed(alice()),
                9,
                [0; 32],
                0,
                vec![0; isthmus_protocol::MAX_BODY_LEN + 1]
            ),
            Error::<Test>::BodyTooLong
        );
        assert_noop!(
            Isthmus::dispatch(RuntimeOrigin::none(), 9, [0; 32], 0, vec![]),
            DispatchError::BadOrigin
        );
        // The mock's block time is 500 s: a deadline at or before it could never be met.
        for past in [1, 499, 500] {
            assert_noop!(
                Isthmus::dispatch(RuntimeOrigin::signed(alice()), 9, [0; 32], past, vec![]),
                Error::<Test>::DeadlinePassed
            );
        }
        assert_ok!(Isthmus::dispatch(
            RuntimeOrigin::signed(alice()),
            9,
            [0; 32],
            501,
            vec![]
        ));
        // The largest body is accepted.
        assert_ok!(Isthmus::dispatch(
            RuntimeOrigin::signed(alice()),
            9,
            [0; 32],
            0,
            vec![7; isthmus_protocol::MAX_BODY_LEN]
        ));
        OutboxCount::<Test>::put(u32::MAX);
        assert_noop!(
            Isthmus::dispatch(RuntimeOrigin::signed(alice()), 9, [0; 32], 0, vec![]),
            Error::<Test>::OutboxFull
        );
    });
}

// ---------------------------------------------------------------- configuration

#[test]
fn set_origin_requires_root_and_a_sound_set() {
    new_test_ext().execute_with(|| {
        let set = vec![address(0), address(1)];
        assert_noop!(
            Isthmus::set_origin(
                RuntimeOrigin::signed(alice()),
                ORIGIN,
                SOURCE_OUTBOX,
                set.clone(),
                1
            ),
            DispatchError::BadOrigin
        );
        for (origin, signers, threshold) in [
            (ORIGIN, set.clone(), 0),
            (ORIGIN, set.clone(), 3),
            (ORIGIN, vec![], 1),
            (ORIGIN, vec![address(0), address(0)], 1),
            (ORIGIN, vec![[0u8; 20]], 1),
            (ORIGIN, vec![[9u8; 20]; 17], 1),
            (LOCAL, set.clone(), 1),
        ] {
            assert_noop!(
                Isthmus::set_origin(
                    RuntimeOrigin::root(),
                    origin,
                    SOURCE_OUTBOX,
                    signers,
                    threshold
                ),
                Error::<Test>::BadSignerSet
            );
        }
        assert_ok!(Isthmus::set_origin(
            RuntimeOrigin::root(),
            ORIGIN,
            SOURCE_OUTBOX,
            set.clone(),
            2
        ));
        assert_eq!(
            events().last().unwrap(),
            &Event::OriginConfigured {
                origin: ORIGIN,
                outbox: SOURCE_OUTBOX,
                signers: set,
                threshold: 2
            }
        );
        // Set up once: the admin cannot replace the set, nor retire the origin and
        // set it up anew (with its own key, say).
        let set_up_again = || {
            Isthmus::set_origin(
                RuntimeOrigin::root(),
                ORIGIN,
                SOURCE_OUTBOX,
                vec![address(5)],
                1,
            )
        };
        assert_noop!(set_up_again(), Error::<Test>::OriginExists);
        assert_ok!(Isthmus::remove_origin(RuntimeOrigin::root(), ORIGIN));
        assert_noop!(
            Isthmus::remove_origin(RuntimeOrigin::root(), ORIGIN),
            Error::<Test>::UnknownOrigin
        );
        assert_noop!(set_up_again(), Error::<Test>::OriginExists);
    });
}

/// The update replacing signer 0 by signer 3 (threshold 2) at `version`.
fn rotation(version: u64, overlap_s: u64) -> isthmus_protocol::SignerSetUpdate {
    isthmus_protocol::SignerSetUpdate {
        origin: ORIGIN,
        signers: vec![address(3), address(1), address(2)],
        threshold: 2,
        version,
        overlap_s,
    }
}

fn sign_update(update: &isthmus_protocol::SignerSetUpdate, by: &[u8]) -> Vec<[u8; 65]> {
    let digest = Isthmus::signer_set_update_digest(update);
    by.iter()
        .map(|i| Attestation::sign(&key(*i), &digest).unwrap().0)
        .collect()
}

fn update_signers(
    update: &isthmus_protocol::SignerSetUpdate,
    by: &[u8],
) -> frame_support::dispatch::DispatchResult {
    Isthmus::update_signers(
        RuntimeOrigin::signed(alice()),
        update.origin,
        update.signers.clone(),
        u32::from(update.threshold),
        update.version,
        update.overlap_s,
        sign_update(update, by),
    )
}

#[test]
fn signer_sets_rotate_by_a_quorum_of_the_current_set_with_an_overlap() {
    new_test_ext().execute_with(|| {
        configure();
        set_time_secs(1_000);
        let update = rotation(1, 600);
        // The digest binds this chain (genesis hash) and ledger id.
        let genesis: [u8; 32] = System::block_hash(0).into();
        assert_eq!(
            Isthmus::signer_set_update_digest(&update),
            update.pallet_digest(genesis, LOCAL)
        );
        // Refusals: one current signer, the new set's own signers, a wrong version,
        // an overlap over 30 days, a bad set.
        assert_noop!(
            update_signers(&update, &[0]),
            Error::<Test>::QuorumNotReached
        );
        assert_noop!(
            update_signers(&update, &[3, 4]),
            Error::<Test>::QuorumNotReached
        );
        assert_noop!(
            update_signers(&rotation(2, 600), &[0, 1]),
            Error::<Test>::WrongVersion
        );
        assert_noop!(
            update_signers(&rotation(1, 31 * 86_400), &[0, 1]),
            Error::<Test>::OverlapTooLong
        );
        let duplicate = isthmus_protocol::SignerSetUpdate {
            signers: vec![address(1), address(1)],
            ..rotation(1, 600)
        };
        assert_noop!(
            update_signers(&duplicate, &[0, 1]),
            Error::<Test>::BadSignerSet
        );
        // Signed for another ledger: not this digest.
        let elsewhere = update.pallet_digest(genesis, LOCAL + 1);
        assert_noop!(
            Isthmus::update_signers(
                RuntimeOrigin::signed(alice()),
                ORIGIN,
                update.signers.clone(),
                2,
                1,
                600,
                vec![
                    Attestation::sign(&key(0), &elsewhere).unwrap().0,
                    Attestation::sign(&key(1), &elsewhere).unwrap().0
                ],
            ),
            Error::<Test>::QuorumNotReached
        );
        assert_ok!(update_signers(&update, &[0, 2]));
        assert_eq!(
            events().last().unwrap(),
            &Event::SignersUpdated {
                origin: ORIGIN,
                version: 1,
                signers: update.signers.clone(),
                threshold: 2,
                previous_until: 1_600,
            }
        );
        // The same update cannot be replayed.
        assert_noop!(
            update_signers(&update, &[0, 2]),
            Error::<Test>::WrongVersion
        );

        // Messages 0 and 1 (whose handler fails, which is no refusal) and 3.
        let batch = Source::standard();
        // During the overlap: the old set's quorum, the new set's quorum; never a mix
        // of the retired key 0 and the new key 3.
        set_time_secs(1_600);
        assert_noop!(batch.process(0, &[0, 3]), Error::<Test>::QuorumNotReached);
        assert_ok!(batch.process(0, &[0, 1]));
        assert_ok!(batch.process(1, &[3, 1]));
        // After the overlap: the old key no longer counts.
        set_time_secs(1_601);
        assert_noop!(batch.process(3, &[0, 1]), Error::<Test>::QuorumNotReached);
        assert_ok!(batch.process(3, &[3, 2]));
        // The next update needs the new set's quorum.
        assert_noop!(
            update_signers(&rotation(2, 0), &[0, 1]),
            Error::<Test>::QuorumNotReached
        );
        assert_ok!(update_signers(&rotation(2, 0), &[3, 1]));
    });
}

// ---------------------------------------------------------------- process

/// `by`'s attestations over the pause (or resume) of ORIGIN's route in `epoch`.
fn sign_control(action: isthmus_protocol::RouteAction, epoch: u64, by: &[u8]) -> Vec<[u8; 65]> {
    let digest = Isthmus::route_control_digest(&isthmus_protocol::RouteControl {
        origin: ORIGIN,
        action,
        epoch,
    });
    by.iter()
        .map(|i| Attestation::sign(&key(*i), &digest).unwrap().0)
        .collect()
}

#[test]
fn one_signer_pauses_a_route_at_once_and_only_a_quorum_resumes_it() {
    use isthmus_protocol::RouteAction::{Pause, Resume};
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        let pause = |attestation: [u8; 65]| {
            Isthmus::pause_route(RuntimeOrigin::signed(alice()), ORIGIN, attestation)
        };
        let resume = |attestations: Vec<[u8; 65]>| {
            Isthmus::resume_route(RuntimeOrigin::signed(alice()), ORIGIN, attestations)
        };
        // The relayer's digest is the pallet's: genesis hash and ledger id bound.
        let genesis = System::block_hash(0u64);
        let control = isthmus_protocol::RouteControl {
            origin: ORIGIN,
            action: Pause,
            epoch: 0,
        };
        assert_eq!(
            Isthmus::route_control_digest(&control),
            control.pallet_digest(<[u8; 32]>::try_from(genesis.as_ref()).unwrap(), LOCAL)
        );
        assert_noop!(
            resume(sign_control(Resume, 0, &[0, 1])),
            Error::<Test>::RouteNotPaused
        );
        // Refused pauses: a stranger, a resume digest, another epoch, an unsigned
        // call, an unknown origin.
        for attestation in [
            sign_control(Pause, 0, &[3])[0],
            sign_control(Resume, 0, &[0])[0],
            sign_control(Pause, 1, &[0])[0],
        ] {
            assert_noop!(pause(attestation), Error::<Test>::NotASigner);
        }
        assert_noop!(
            Isthmus::pause_route(
                RuntimeOrigin::none(),
                ORIGIN,
                sign_control(Pause, 0, &[0])[0]
            ),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Isthmus::pause_route(
                RuntimeOrigin::signed(alice()),
                9,
                sign_control(Pause, 0, &[0])[0]
            ),
            Error::<Test>::UnknownOrigin
        );

        // One signer pauses; the event names it.
        assert_ok!(pause(sign_control(Pause, 0, &[2])[0]));
        assert_eq!(RouteStates::<Test>::get(ORIGIN), (true, 0));
        assert!(events().contains(&Event::RoutePaused {
            origin: ORIGIN,
            by: address(2),
            epoch: 0
        }));
        assert_noop!(
            pause(sign_control(Pause, 0, &[0])[0]),
            Error::<Test>::RoutePaused
        );
        // Nothing of the route is processed or consumed, alone or in a batch.
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::RoutePaused);
        let items = (0..2).map(|i| (src.encoded(i), src.branch(i))).collect();
        assert_noop!(
            Isthmus::process_batch(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                src.sigs(&[0, 1]),
                items
            ),
            Error::<Test>::RoutePaused
        );
        assert_eq!(handled(), 0);

        // A resume needs a quorum of the current set over this epoch's resume digest.
        for attestations in [
            sign_control(Resume, 0, &[0]),
            sign_control(Resume, 0, &[0, 0]),
            sign_control(Resume, 0, &[0, 3]),
            sign_control(Pause, 0, &[0, 1]),
            sign_control(Resume, 1, &[0, 1]),
        ] {
            assert_noop!(resume(attestations), Error::<Test>::QuorumNotReached);
        }
        assert_noop!(
            Isthmus::resume_route(RuntimeOrigin::root(), ORIGIN, sign_control(Resume, 0, &[0])),
            DispatchError::BadOrigin
        );
        assert_ok!(resume(sign_control(Resume, 0, &[1, 2])));
        assert_eq!(RouteStates::<Test>::get(ORIGIN), (false, 1));
        assert!(events().contains(&Event::RouteResumed {
            origin: ORIGIN,
            epoch: 1
        }));
        // Spent: the same resume again, the old pause in the new epoch.
        assert_noop!(
            resume(sign_control(Resume, 0, &[1, 2])),
            Error::<Test>::RouteNotPaused
        );
        assert_noop!(
            pause(sign_control(Pause, 0, &[2])[0]),
            Error::<Test>::NotASigner
        );
        // What waited is processed now, once.
        assert_ok!(src.process(0, &[0, 1]));
        assert_eq!(handled(), 1);
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::AlreadyProcessed);
        assert_ok!(pause(sign_control(Pause, 1, &[0])[0]));
        assert_eq!(RouteStates::<Test>::get(ORIGIN), (true, 1));
    });
}

/// `by`'s attestations over the release (or rejection) of the hold of `id` from ORIGIN.
fn sign_decision(action: isthmus_protocol::HoldAction, id: [u8; 32], by: &[u8]) -> Vec<[u8; 65]> {
    let digest = Isthmus::hold_decision_digest(&isthmus_protocol::HoldDecision {
        origin: ORIGIN,
        id,
        action,
    });
    by.iter()
        .map(|i| Attestation::sign(&key(*i), &digest).unwrap().0)
        .collect()
}

/// The receipts sent back so far, as (id, outcome code, result).
fn receipt_ends() -> Vec<([u8; 32], u8, [u8; 32])> {
    receipts_sent()
        .into_iter()
        .flatten()
        .map(|r| (r.id.0, r.outcome.code(), r.result))
        .collect()
}

#[test]
fn a_held_message_is_executed_only_once_a_quorum_releases_it() {
    use isthmus_protocol::HoldAction::{Reject, Release};
    new_test_ext().execute_with(|| {
        configure_with_receipts();
        set_time_secs(1_000);
        let src = Source::new(vec![
            message(0, 0, HELD_BODY),
            message(1, 0, HELD_BODY),
            message(2, 0, b"within limits"),
            message(3, 0, HELD_BODY),
            message(4, 5_000, HELD_BODY),
        ]);
        let ids: Vec<[u8; 32]> = src.messages.iter().map(|m| m.id().0).collect();
        let release = |id: [u8; 32], by: Vec<[u8; 65]>| {
            Isthmus::release_hold(RuntimeOrigin::signed(alice()), ORIGIN, id, by)
        };
        let items = (0..5).map(|i| (src.encoded(i), src.branch(i))).collect();
        assert_ok!(Isthmus::process_batch(
            RuntimeOrigin::signed(alice()),
            src.checkpoint,
            src.sigs(&[0, 1]),
            items
        ));
        // Held: not consumed, the handler's writes rolled back, no receipt.
        assert_eq!(handled(), 1, "only the message within limits ran");
        assert_eq!(HeldCount::<Test>::get(ORIGIN), 4);
        let hold = Holds::<Test>::get(ids[0]).unwrap();
        assert_eq!(
            (hold.state, hold.origin, hold.since, hold.reason),
            (HoldState::Held, ORIGIN, 1_000, HOLD_REASON)
        );
        assert!(!Processed::<Test>::contains_key(ids[0]));
        assert!(events().contains(&Event::MessageHeld {
            id: ids[0],
            origin: ORIGIN,
            nonce: 0,
            reason: HOLD_REASON
        }));
        assert_eq!(receipt_ends(), vec![(ids[2], 1, answer(b"within limits"))]);
        // Processed again while held: still held, not executed.
        assert_ok!(src.process(0, &[0, 1]));
        assert_eq!(handled(), 1);
        assert!(matches!(events().last().unwrap(), Event::MessageHeld { id, .. } if *id == ids[0]));

        // The digest is the protocol crate's, bound to this chain and ledger.
        let genesis = System::block_hash(0u64);
        let decision = isthmus_protocol::HoldDecision {
            origin: ORIGIN,
            id: ids[0],
            action: Release,
        };
        assert_eq!(
            Isthmus::hold_decision_digest(&decision),
            decision.pallet_digest(<[u8; 32]>::try_from(genesis.as_ref()).unwrap(), LOCAL)
        );
        // One member, a stranger to the set, the same member twice, a reject digest
        // and another message's release are each short of a quorum.
        for attestations in [
            sign_decision(Release, ids[0], &[0]),
            sign_decision(Release, ids[0], &[0, 3]),
            sign_decision(Release, ids[0], &[1, 1]),
            sign_decision(Reject, ids[0], &[0, 1]),
            sign_decision(Release, ids[1], &[0, 1]),
        ] {
            assert_noop!(
                release(ids[0], attestations),
                Error::<Test>::QuorumNotReached
            );
        }
        // Not the admin (root) either, nor a message that is not held.
        assert_noop!(
            Isthmus::release_hold(
                RuntimeOrigin::root(),
                ORIGIN,
                ids[0],
                sign_decision(Release, ids[0], &[0])
            ),
            DispatchError::BadOrigin
        );
        assert_noop!(
            release(ids[2], sign_decision(Release, ids[2], &[0, 1])),
            Error::<Test>::NotHeld
        );
        assert_ok!(release(ids[0], sign_decision(Release, ids[0], &[1, 2])));
        assert!(events().contains(&Event::HoldReleased {
            id: ids[0],
            origin: ORIGIN,
            approvals: 2
        }));
        // A replayed approval decides nothing twice.
        assert_noop!(
            release(ids[0], sign_decision(Release, ids[0], &[1, 2])),
            Error::<Test>::NotHeld
        );
        assert_ok!(Isthmus::reject_hold(
            RuntimeOrigin::signed(alice()),
            ORIGIN,
            ids[1],
            sign_decision(Reject, ids[1], &[0, 2])
        ));

        // Released: executed past the hold, once; rejected: refused.
        assert_ok!(src.process(0, &[0, 1]));
        assert_ok!(src.process(1, &[0, 1]));
        assert_eq!(handled(), 2);
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::AlreadyProcessed);
        assert_eq!(HeldCount::<Test>::get(ORIGIN), 2);
        assert!(Holds::<Test>::get(ids[0]).is_none());

        // Past its deadline a held message expires; past the hold period an
        // undecided hold takes no decision and ends refused.
        set_time_secs(6_000);
        assert_ok!(src.process(4, &[0, 1]));
        set_time_secs(1_000 + crate::HOLD_PERIOD_S + 1);
        assert_noop!(
            release(ids[3], sign_decision(Release, ids[3], &[0, 1])),
            Error::<Test>::HoldExpired
        );
        assert_ok!(src.process(3, &[0, 1]));
        assert_eq!(HeldCount::<Test>::get(ORIGIN), 0);
        assert_eq!(handled(), 2);
        assert_eq!(
            receipt_ends(),
            vec![
                (ids[2], 1, answer(b"within limits")),
                (ids[0], 1, answer(HELD_BODY)),
                (ids[1], 2, crate::codes::HOLD_REJECTED),
                (ids[4], 3, [0u8; 32]),
                (ids[3], 2, crate::codes::HOLD_EXPIRED),
            ]
        );
    });
}

#[test]
fn process_delivers_once_and_refuses_the_replay() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        assert_ok!(src.process(0, &[0, 1]));
        let id = src.messages[0].id().0;
        assert!(Processed::<Test>::contains_key(id));
        assert_eq!(handled(), 1);
        assert!(events().contains(&Event::MessageProcessed {
            id,
            origin: ORIGIN,
            nonce: 0
        }));
        assert!(events().iter().any(|e| matches!(e,
            Event::CheckpointAccepted { outcomes, .. }
                if outcomes == &vec![AttestationOutcome::Accepted(address(0)), AttestationOutcome::Accepted(address(1))])));
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::AlreadyProcessed);
        assert_eq!(handled(), 1);
    });
}

#[test]
fn a_failing_handler_does_not_consume_the_message() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        assert_ok!(src.process(1, &[0, 1]));
        let id = src.messages[1].id().0;
        assert!(!Processed::<Test>::contains_key(id));
        // The handler's own write was rolled back with it.
        assert_eq!(handled(), 0);
        // (`DispatchError::Other`'s text is not part of its encoding.)
        assert!(matches!(
            events().last().unwrap(),
            Event::MessageHandlerFailed { id: x, origin: ORIGIN, nonce: 1, error: DispatchError::Other(_) }
                if *x == id
        ));
        // Still deliverable: a second attempt runs the handler again.
        assert_ok!(src.process(1, &[1, 2]));
        assert!(!Processed::<Test>::contains_key(id));
    });
}

#[test]
fn process_refuses_unknown_origin_and_untrusted_outbox() {
    new_test_ext().execute_with(|| {
        let src = Source::standard();
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::UnknownOrigin);
        assert_ok!(Isthmus::set_origin(
            RuntimeOrigin::root(),
            ORIGIN,
            [0x01; 32],
            vec![address(0), address(1), address(2)],
            2
        ));
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::OutboxMismatch);
    });
}

#[test]
fn checkpoints_count_only_on_the_network_they_were_signed_for() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        let call = |sigs: Vec<[u8; 65]>| {
            Isthmus::process(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                sigs,
                src.encoded(0),
                Box::new(src.branch(0)),
            )
        };
        // The same members, keys, origin, outbox and checkpoint, signed for a staging
        // network: worthless here.
        let staging = isthmus_protocol::Network::named("isthmus staging");
        assert_noop!(
            call(vec![
                sign_for(&staging, 0, &src.checkpoint),
                sign_for(&staging, 1, &src.checkpoint)
            ]),
            Error::<Test>::QuorumNotReached
        );
        // Nor does one of each make a quorum.
        assert_noop!(
            call(vec![
                sign_for(&staging, 0, &src.checkpoint),
                sign(1, &src.checkpoint)
            ]),
            Error::<Test>::QuorumNotReached
        );
        // A runtime that names no network takes no checkpoint at all.
        crate::mock::Network::set([0u8; 32]);
        assert_noop!(
            call(vec![
                sign_for(&isthmus_protocol::Network([0u8; 32]), 0, &src.checkpoint),
                sign_for(&isthmus_protocol::Network([0u8; 32]), 1, &src.checkpoint)
            ]),
            Error::<Test>::NoNetwork
        );
        crate::mock::Network::set(crate::mock::network().0);
        // Signed for this network, the same checkpoint delivers.
        assert_ok!(call(vec![
            sign(0, &src.checkpoint),
            sign(1, &src.checkpoint)
        ]));
    });
}

#[test]
fn quorum_counts_distinct_valid_members_only() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        // One member: below the threshold of 2.
        assert_noop!(src.process(0, &[0]), Error::<Test>::QuorumNotReached);
        // The same member twice counts once.
        assert_noop!(src.process(0, &[0, 0]), Error::<Test>::QuorumNotReached);
        // A key outside the set does not count.
        assert_noop!(src.process(0, &[0, 3]), Error::<Test>::QuorumNotReached);
        let call = |sigs: Vec<[u8; 65]>| {
            Isthmus::process(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                sigs,
                src.encoded(0),
                Box::new(src.branch(0)),
            )
        };
        // A malleated high-s copy of member 1's signature does not count.
        let mut high_s = sign(1, &src.checkpoint);
        let s: [u8; 32] = high_s[32..64].try_into().unwrap();
        high_s[32..64].copy_from_slice(&order_minus(&s));
        high_s[64] = 55 - high_s[64]; // 27 <-> 28: the malleated copy's recovery id
        assert_eq!(
            crate::verify::recover_signer(
                &isthmus_protocol::Checkpoint::from(src.checkpoint).digest(&crate::mock::network()),
                &high_s
            ),
            Err(InvalidSignature::HighS)
        );
        assert_noop!(
            call(vec![sign(0, &src.checkpoint), high_s]),
            Error::<Test>::QuorumNotReached
        );
        // A bad v does not count.
        let mut bad_v = sign(1, &src.checkpoint);
        bad_v[64] = 1;
        assert_noop!(
            call(vec![sign(0, &src.checkpoint), bad_v]),
            Error::<Test>::QuorumNotReached
        );
        // Signatures over another checkpoint recover to other keys.
        let mut other = src.checkpoint;
        other.block_number += 1;
        assert_noop!(
            call(vec![sign(0, &other), sign(1, &other)]),
            Error::<Test>::QuorumNotReached
        );
        // Too many attestations are refused before any recovery.
        assert_noop!(
            call(vec![sign(0, &src.checkpoint); 17]),
            Error::<Test>::TooManyAttestations
        );
        // Noise around a quorum is reported, not fatal.
        assert_ok!(call(vec![
            bad_v,
            sign(3, &src.checkpoint),
            sign(0, &src.checkpoint),
            sign(0, &src.checkpoint),
            sign(2, &src.checkpoint)
        ]));
        assert!(events().contains(&Event::CheckpointAccepted {
            origin: ORIGIN,
            digest: isthmus_protocol::Checkpoint::from(src.checkpoint)
                .digest(&crate::mock::network()),
            outcomes: vec![
                AttestationOutcome::Invalid(InvalidSignature::BadV),
                AttestationOutcome::UnknownSigner(address(3)),
                AttestationOutcome::Accepted(address(0)),
                AttestationOutcome::Duplicate(address(0)),
                AttestationOutcome::Accepted(address(2)),
            ],
        }));
    });
}

#[test]
fn process_refuses_structural_faults() {
    new_test_ext().execute_with(|| {
        configure();
        // A message of another origin under ORIGIN's checkpoint.
        let mut foreign = message(0, 0, b"x");
        foreign.origin = 5;
        let src = Source::new(vec![foreign]);
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::WrongOrigin);
        // A message for another ledger.
        let mut elsewhere = message(0, 0, b"x");
        elsewhere.destination = 3;
        let src = Source::new(vec![elsewhere]);
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::WrongDestination);

        let src = Source::standard();
        let call = |cp: CheckpointArg, encoded: Vec<u8>, branch| {
            let sigs = vec![sign(0, &cp), sign(1, &cp)];
            Isthmus::process(
                RuntimeOrigin::signed(alice()),
                cp,
                sigs,
                encoded,
                Box::new(branch),
            )
        };
        // A wrong sibling.
        let mut branch = src.branch(0);
        branch[5][0] ^= 1;
        assert_noop!(
            call(src.checkpoint, src.encoded(0), branch),
            Error::<Test>::InvalidBranch
        );
        // Another message's branch.
        assert_noop!(
            call(src.checkpoint, src.encoded(0), src.branch(3)),
            Error::<Test>::InvalidBranch
        );
        // A nonce at the attested count: right root, but outside the committed leaves.
        let mut short = src.checkpoint;
        short.count = 3;
        assert_noop!(
            call(short, src.encoded(3), src.branch(3)),
            Error::<Test>::InvalidBranch
        );
        // Bytes that are not a canonical message.
        let mut trailing = src.encoded(0);
        trailing.push(0);
        assert_noop!(
            call(src.checkpoint, trailing, src.branch(0)),
            Error::<Test>::MalformedMessage
        );
        let mut version = src.encoded(0);
        version[0] = 2;
        assert_noop!(
            call(src.checkpoint, version, src.branch(0)),
            Error::<Test>::MalformedMessage
        );
        assert_noop!(
            call(src.checkpoint, src.encoded(0)[..50].to_vec(), src.branch(0)),
            Error::<Test>::MalformedMessage
        );
        assert_noop!(
            Isthmus::process(
                RuntimeOrigin::none(),
                src.checkpoint,
                src.sigs(&[0, 1]),
                src.encoded(0),
                Box::new(src.branch(0))
            ),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn a_message_past_its_deadline_ends_expired_and_is_never_delivered() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        let id = src.messages[2].id().0;
        // At the deadline itself the message is still valid (`now > deadline` expires).
        set_time_secs(1_000);
        assert!(Source::standard().process(2, &[0, 1]).is_ok());
        assert!(events().contains(&Event::MessageProcessed {
            id,
            origin: ORIGIN,
            nonce: 2
        }));
    });
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        let id = src.messages[2].id().0;
        set_time_secs(1_001);
        assert_ok!(src.process(2, &[0, 1]));
        assert!(events().contains(&Event::MessageExpired {
            id,
            origin: ORIGIN,
            nonce: 2
        }));
        assert!(Processed::<Test>::contains_key(id));
        assert_eq!(handled(), 0, "an expired message never reaches its handler");
        // Consumed: a later submission is a replay, even with the clock turned back.
        set_time_secs(900);
        assert_noop!(src.process(2, &[0, 1]), Error::<Test>::AlreadyProcessed);
        assert_eq!(handled(), 0);
    });
}

// ---------------------------------------------------------------- batch

#[test]
fn batch_delivers_skips_and_reports() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        assert_ok!(src.process(0, &[0, 1]));
        set_time_secs(2_000);
        System::reset_events();
        let items = (0..4).map(|i| (src.encoded(i), src.branch(i))).collect();
        assert_ok!(Isthmus::process_batch(
            RuntimeOrigin::signed(alice()),
            src.checkpoint,
            src.sigs(&[2, 1]),
            items
        ));
        let id = |i: usize| src.messages[i].id().0;
        let evs = events();
        // Exactly one quorum check for the whole batch.
        assert_eq!(
            evs.iter()
                .filter(|e| matches!(e, Event::CheckpointAccepted { .. }))
                .count(),
            1
        );
        assert!(evs.contains(&Event::MessageSkipped {
            id: id(0),
            reason: SkipReason::AlreadyProcessed
        }));
        assert!(evs
            .iter()
            .any(|e| matches!(e, Event::MessageHandlerFailed { id: x, .. } if *x == id(1))));
        assert!(evs.contains(&Event::MessageExpired {
            id: id(2),
            origin: ORIGIN,
            nonce: 2
        }));
        assert!(evs.contains(&Event::MessageProcessed {
            id: id(3),
            origin: ORIGIN,
            nonce: 3
        }));
        assert!(Processed::<Test>::contains_key(id(3)));
        assert!(!Processed::<Test>::contains_key(id(1)));
        assert!(Processed::<Test>::contains_key(id(2)));
        assert_eq!(handled(), 2);
    });
}

#[test]
fn batch_structural_fault_refuses_everything() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        let mut bad = src.branch(3);
        bad[0][0] ^= 1;
        // The good first item is not delivered either: the whole call is refused.
        let items = vec![(src.encoded(0), src.branch(0)), (src.encoded(3), bad)];
        assert_noop!(
            Isthmus::process_batch(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                src.sigs(&[0, 1]),
                items
            ),
            Error::<Test>::InvalidBranch
        );
        assert_noop!(
            Isthmus::process_batch(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                src.sigs(&[0, 1]),
                vec![]
            ),
            Error::<Test>::BadBatchSize
        );
        let nine = vec![(src.encoded(0), src.branch(0)); 9];
        assert_noop!(
            Isthmus::process_batch(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                src.sigs(&[0, 1]),
                nine
            ),
            Error::<Test>::BadBatchSize
        );
        assert_noop!(
            Isthmus::process_batch(
                RuntimeOrigin::signed(alice()),
                src.checkpoint,
                src.sigs(&[0]),
                vec![(src.encoded(0), src.branch(0))]
            ),
            Error::<Test>::QuorumNotReached
        );
    });
}

// ---------------------------------------------------------------- vectors

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../protocol/vectors/v2.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_bytes(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

fn hex32(v: &serde_json::Value) -> [u8; 32] {
    hex_bytes(v).try_into().unwrap()
}

fn dec(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::String(s) => s.parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}

#[test]
fn pallet_reproduces_the_message_vectors() {
    let v = vectors();
    let mut dispatched = 0;
    for case in v["messages"].as_array().unwrap() {
        let fields = &case["message"];
        let encoded = hex_bytes(&case["encoded"]);
        // The id as the pallet computes it, with the keccak host function.
        assert_eq!(sp_io::hashing::keccak_256(&encoded), hex32(&case["id"]));
        let nonce = dec(&fields["nonce"]);
        let origin = u32::try_from(dec(&fields["origin"])).unwrap();
        let destination = u32::try_from(dec(&fields["destination"])).unwrap();
        let Ok(count) = u32::try_from(nonce) else {
            continue;
        };
        if origin == destination {
            continue; // The pallet's outbox refuses local messages.
        }
        // Dispatch the same fields through the pallet's outbox.
        new_test_ext().execute_with(|| {
            LedgerId::set(origin);
            OutboxCount::<Test>::put(count);
            // Before any vector's deadline, which dispatch requires to be in the future.
            pallet_timestamp::Now::<Test>::put(0);
            assert_ok!(Isthmus::dispatch(
                RuntimeOrigin::signed(AccountId32::new(hex32(&fields["sender"]))),
                destination,
                hex32(&fields["recipient"]),
                dec(&fields["deadline"]),
                hex_bytes(&fields["body"]),
            ));
            assert_eq!(
                events().last().unwrap(),
                &Event::Dispatch {
                    id: hex32(&case["id"]),
                    destination,
                    nonce,
                    message: encoded.clone(),
                }
            );
            LedgerId::set(LOCAL);
        });
        dispatched += 1;
    }
    assert!(dispatched >= 3, "most vector messages go through dispatch");
}

#[test]
fn pallet_reproduces_the_merkle_vectors() {
    let v = vectors();
    let zeros: Vec<[u8; 32]> = v["merkle"]["zero_hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(hex32)
        .collect();
    assert_eq!(zeros, isthmus_protocol::merkle::zero_hashes().to_vec());
    for tree in v["merkle"]["trees"].as_array().unwrap() {
        let leaves: Vec<[u8; 32]> = tree["leaves"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex32)
            .collect();
        let mut frontier = [[0u8; 32]; TREE_DEPTH];
        for (i, leaf) in leaves.iter().enumerate() {
            crate::verify::tree_insert(&mut frontier, u32::try_from(i).unwrap(), *leaf);
        }
        let count = u32::try_from(leaves.len()).unwrap();
        assert_eq!(u64::from(count), dec(&tree["count"]));
        assert_eq!(
            crate::verify::tree_root(&frontier, count),
            hex32(&tree["root"])
        );
        for branch in tree["branches"].as_array().unwrap() {
            let i = usize::try_from(dec(&branch["index"])).unwrap();
            let siblings: [[u8; 32]; TREE_DEPTH] = branch["siblings"]
                .as_array()
                .unwrap()
                .iter()
                .map(hex32)
                .collect::<Vec<_>>()
                .try_into()
                .unwrap();
            let proof = isthmus_protocol::Branch {
                index: i as u64,
                siblings,
            };
            assert!(proof.verify(&leaves[i], &hex32(&tree["root"]), u64::from(count)));
        }
    }
}

#[test]
fn pallet_reproduces_the_checkpoint_vectors() {
    let v = vectors();
    let keys: Vec<[u8; 20]> = v["test_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| hex_bytes(&k["address"]).try_into().unwrap())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(*k, address(u8::try_from(i).unwrap()));
    }
    let checkpoints = v["checkpoints"].as_array().unwrap();
    assert!(!checkpoints.is_empty());
    for case in checkpoints {
        let c = &case["checkpoint"];
        let cp = CheckpointArg {
            origin: u32::try_from(dec(&c["origin"])).unwrap(),
            outbox: hex32(&c["outbox"]),
            root: hex32(&c["root"]),
            count: u32::try_from(dec(&c["count"])).unwrap(),
            block_number: dec(&c["block_number"]),
            block_hash: hex32(&c["block_hash"]),
        };
        crate::mock::Network::set(hex32(&v["network"]));
        let digest = crate::Pallet::<Test>::checkpoint_digest(&cp);
        assert_eq!(digest, hex32(&case["digest"]));
        for att in case["attestations"].as_array().unwrap() {
            let sig: [u8; 65] = hex_bytes(&att["signature"]).try_into().unwrap();
            let signer = usize::try_from(dec(&att["signer"])).unwrap();
            // Recovery through the secp256k1 host function.
            assert_eq!(
                crate::verify::recover_signer(&digest, &sig),
                Ok(keys[signer])
            );
        }
    }
}

#[test]
fn invalid_vector_encodings_are_refused() {
    let v = vectors();
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        for case in v["invalid_messages"].as_array().unwrap() {
            assert_noop!(
                Isthmus::process(
                    RuntimeOrigin::signed(alice()),
                    src.checkpoint,
                    src.sigs(&[0, 1]),
                    hex_bytes(&case["encoded"]),
                    Box::new(src.branch(0))
                ),
                Error::<Test>::MalformedMessage
            );
        }
    });
}

// ---------------------------------------------------------------- handler weight

#[test]
fn the_handlers_weight_is_declared_by_the_call_so_a_submitter_cannot_withhold_it() {
    use crate::{Call, MessageHandler, WeightInfo};
    use frame_support::dispatch::GetDispatchInfo;
    new_test_ext().execute_with(|| {
        let src = Source::standard();
        let db = <<Test as frame_system::Config>::DbWeight as frame_support::traits::Get<
            frame_support::weights::RuntimeDbWeight,
        >>::get();
        // The handler's bound, the two marks a failing handler has removed, and a
        // hold's read and two writes (the hold and the origin's count).
        let handler = |i: usize| {
            CountingHandler::weight(src.encoded(i).len() as u32)
                .saturating_add(db.writes(2))
                .saturating_add(db.reads_writes(1, 2))
        };
        let one = Call::<Test>::process {
            checkpoint: src.checkpoint,
            attestations: src.sigs(&[0, 1]),
            message: src.encoded(0),
            branch: Box::new(src.branch(0)),
        }
        .get_dispatch_info()
        .call_weight;
        let base = <Test as crate::Config>::WeightInfo::process(2, src.encoded(0).len() as u32);
        // The receipts it may send: one full receipt batch; and the read of the
        // origin's held count.
        let sent =
            <Test as crate::Config>::WeightInfo::dispatch(64 * 73).saturating_add(db.reads(1));
        assert_eq!(one, base.saturating_add(handler(0)).saturating_add(sent));

        let items: Vec<_> = (0..4).map(|i| (src.encoded(i), src.branch(i))).collect();
        let bytes: usize = items.iter().map(|(m, _)| m.len()).sum();
        let batch = Call::<Test>::process_batch {
            checkpoint: src.checkpoint,
            attestations: src.sigs(&[0, 1]),
            items,
        }
        .get_dispatch_info()
        .call_weight;
        let handlers = (0..4).fold(frame_support::weights::Weight::zero(), |w, i| {
            w.saturating_add(handler(i))
        });
        let base = <Test as crate::Config>::WeightInfo::process_batch(2, 4, bytes as u32);
        assert_eq!(
            batch,
            base.saturating_add(handlers).saturating_add(sent),
            "every handler's weight, in full"
        );
        // A receipt batch's message also declares taking each receipt it can carry,
        // with the receipt handler's bound.
        let receipts =
            Isthmus::message_weight((isthmus_protocol::MESSAGE_HEADER_LEN + 3 * 73) as u32);
        let per_receipt = <Test as crate::Config>::WeightInfo::take_receipt()
            .saturating_add(<RecordingReceipts as crate::ReceiptHandler>::weight())
            .saturating_add(db.writes(1));
        assert_eq!(
            receipts,
            CountingHandler::weight((isthmus_protocol::MESSAGE_HEADER_LEN + 3 * 73) as u32)
                .saturating_add(db.writes(2))
                .saturating_add(db.reads_writes(1, 2))
                .saturating_add(per_receipt.saturating_mul(3))
        );
        assert!(handlers.ref_time() >= 4_000_000);
    });
}

#[test]
fn the_host_keccak_tree_is_the_protocols_tree() {
    assert_eq!(
        crate::verify::ZERO_HASHES,
        isthmus_protocol::merkle::zero_hashes()
    );
    let leaves: Vec<[u8; 32]> = (0u8..11)
        .map(|i| isthmus_protocol::keccak256(&[i]))
        .collect();
    let tree = MerkleTree::from_leaves(leaves.clone()).unwrap();
    let count = tree.count();
    for (i, leaf) in leaves.iter().enumerate() {
        let branch = tree.branch(i as u64).unwrap();
        assert!(crate::verify::branch_verifies(
            leaf,
            i as u64,
            &branch.siblings,
            &tree.root(),
            count
        ));
        // Any flipped bit of the leaf, a sibling or the root is refused, as is the
        // same branch at another index or at an index past the count.
        let mut bad = *leaf;
        bad[i % 32] ^= 1;
        assert!(!crate::verify::branch_verifies(
            &bad,
            i as u64,
            &branch.siblings,
            &tree.root(),
            count
        ));
        let mut siblings = branch.siblings;
        siblings[i % TREE_DEPTH][0] ^= 0x80;
        assert!(!crate::verify::branch_verifies(
            leaf,
            i as u64,
            &siblings,
            &tree.root(),
            count
        ));
        let mut root = tree.root();
        root[31] ^= 1;
        assert!(!crate::verify::branch_verifies(
            leaf,
            i as u64,
            &branch.siblings,
            &root,
            count
        ));
        assert!(!crate::verify::branch_verifies(
            leaf,
            i as u64 + 1,
            &branch.siblings,
            &tree.root(),
            count
        ));
        assert!(!crate::verify::branch_verifies(
            leaf,
            i as u64,
            &branch.siblings,
            &tree.root(),
            i as u64
        ));
    }
}

#[test]
fn every_message_must_fit_one_extrinsic_with_its_handler() {
    // The test runtime's handler declares a small weight: the runtime is sound.
    Isthmus::integrity_test();
    use frame_support::traits::Get;
    let limits: frame_system::limits::BlockWeights =
        <Test as frame_system::Config>::BlockWeights::get();
    let room = limits
        .get(frame_support::dispatch::DispatchClass::Normal)
        .max_extrinsic
        .unwrap();
    assert!(Isthmus::largest_delivery().all_lte(room));
    // A handler that declares more than an extrinsic holds for the largest message
    // would make such messages undeliverable: the runtime's integrity test refuses it.
    HandlerBaseWeight::set(room.ref_time());
    let refused = std::panic::catch_unwind(Isthmus::integrity_test);
    HandlerBaseWeight::set(1_000_000);
    let message = refused
        .unwrap_err()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(message.contains("MessageHandler::weight"), "{message}");
}

// ---------------------------------------------------------------- receipts

/// The inbox of ORIGIN, which takes this ledger's receipts and sends ORIGIN's.
const ORIGIN_INBOX: [u8; 32] = [0x1b; 32];

fn configure_with_receipts() {
    configure();
    assert_ok!(Isthmus::set_receipt_endpoint(
        RuntimeOrigin::root(),
        ORIGIN,
        ORIGIN_INBOX
    ));
}

/// The receipt batches the outbox sent back to ORIGIN, decoded.
fn receipts_sent() -> Vec<Vec<isthmus_protocol::Receipt>> {
    events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Dispatch { message, .. } => Some(Message::decode(&message).unwrap()),
            _ => None,
        })
        .filter(|m| m.sender.0 == INBOX_ID)
        .map(|m| {
            assert_eq!(m.destination, ORIGIN);
            assert_eq!(m.recipient.0, ORIGIN_INBOX);
            assert_eq!(m.deadline, 0);
            isthmus_protocol::Receipt::decode_batch(&m.body).unwrap()
        })
        .collect()
}

#[test]
fn inbox_id_is_the_documented_hash() {
    assert_eq!(
        INBOX_ID,
        isthmus_protocol::keccak256(b"isthmus pallet inbox")
    );
    assert_eq!(
        isthmus_protocol::receipt::result_text(&crate::codes::NO_RECIPIENT),
        "no recipient contract"
    );
}

#[test]
fn every_ending_gives_one_receipt_in_one_batch() {
    use isthmus_protocol::ReceiptOutcome::*;
    new_test_ext().execute_with(|| {
        configure_with_receipts();
        let src = Source::new(vec![
            message(0, 0, b"zero"),
            message(1, 0, FAILING_BODY),
            message(2, 1_000, b"expires at 1000"),
            message(3, 0, REFUSED_BODY),
        ]);
        set_time_secs(2_000);
        let items = (0..4).map(|i| (src.encoded(i), src.branch(i))).collect();
        assert_ok!(Isthmus::process_batch(
            RuntimeOrigin::signed(alice()),
            src.checkpoint,
            src.sigs(&[0, 1]),
            items
        ));
        let id = |i: usize| isthmus_protocol::MessageId(src.messages[i].id().0);
        let receipt = |i: usize, outcome, result| isthmus_protocol::Receipt {
            id: id(i),
            nonce: i as u64,
            outcome,
            result,
        };
        // One batch; the failed handler's message has none (it stays deliverable).
        assert_eq!(
            receipts_sent(),
            vec![vec![
                receipt(0, Delivered, answer(b"zero")),
                receipt(2, Expired, [0; 32]),
                receipt(3, Refused, REFUSAL),
            ]]
        );
        assert!(events().contains(&Event::MessageRefused {
            id: id(3).0,
            origin: ORIGIN,
            nonce: 3,
            code: REFUSAL
        }));
        assert!(events().iter().any(|e| matches!(
            e,
            Event::ReceiptsSent {
                origin: ORIGIN,
                count: 3,
                ..
            }
        )));
        // The receipt batch is an ordinary message of the outbox, from the inbox.
        assert_eq!(OutboxCount::<Test>::get(), 1);
        // Each ended once: a second submission is a replay and sends nothing more.
        System::reset_events();
        for i in [0, 2, 3] {
            assert_noop!(src.process(i, &[0, 1]), Error::<Test>::AlreadyProcessed);
        }
        assert!(receipts_sent().is_empty());
        // The failed one ends later, with its own receipt.
        assert_ok!(src.process(1, &[0, 1]));
        assert!(
            receipts_sent().is_empty(),
            "a handler failure sends no receipt"
        );
    });
}

#[test]
fn an_origin_without_receipt_endpoint_gets_none() {
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        assert_ok!(src.process(0, &[0, 1]));
        assert!(receipts_sent().is_empty());
        assert_eq!(OutboxCount::<Test>::get(), 0);
    });
}

#[test]
fn the_receipt_endpoint_is_set_once_by_the_admin() {
    new_test_ext().execute_with(|| {
        assert_noop!(
            Isthmus::set_receipt_endpoint(RuntimeOrigin::root(), ORIGIN, ORIGIN_INBOX),
            Error::<Test>::UnknownOrigin
        );
        configure();
        assert_noop!(
            Isthmus::set_receipt_endpoint(RuntimeOrigin::signed(alice()), ORIGIN, ORIGIN_INBOX),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Isthmus::set_receipt_endpoint(RuntimeOrigin::root(), ORIGIN, [0; 32]),
            Error::<Test>::ReceiptEndpointExists
        );
        assert_ok!(Isthmus::set_receipt_endpoint(
            RuntimeOrigin::root(),
            ORIGIN,
            ORIGIN_INBOX
        ));
        assert_noop!(
            Isthmus::set_receipt_endpoint(RuntimeOrigin::root(), ORIGIN, [0x2b; 32]),
            Error::<Test>::ReceiptEndpointExists
        );
        assert_eq!(ReceiptEndpoints::<Test>::get(ORIGIN), Some(ORIGIN_INBOX));
    });
}

/// Sends `n` messages from `sender` to ORIGIN through this ledger's outbox; their ids.
fn send_to_origin(sender: [u8; 32], n: u64) -> Vec<[u8; 32]> {
    (0..n)
        .map(|_| {
            <Isthmus as crate::Dispatcher>::dispatch_from(sender, ORIGIN, [0xcc; 32], 0, vec![7])
                .unwrap()
        })
        .collect()
}

/// A receipt batch message from ORIGIN at `nonce`, from `sender` to the inbox.
fn receipt_batch(nonce: u64, sender: [u8; 32], body: Vec<u8>) -> Message {
    Message {
        nonce,
        origin: ORIGIN,
        sender: Address32(sender),
        destination: LOCAL,
        recipient: Address32(INBOX_ID),
        deadline: 0,
        body,
    }
}

fn receipt_of(id: [u8; 32], nonce: u64, code: u8) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&nonce.to_be_bytes());
    out.push(code);
    out.extend_from_slice(&[0x5e; 32]);
    out
}

#[test]
fn receipts_are_taken_once_only_for_messages_sent_there() {
    new_test_ext().execute_with(|| {
        configure_with_receipts();
        let app = [0xa9; 32];
        let ids = send_to_origin(app, 3);
        assert_eq!(
            Sent::<Test>::get(ids[1]),
            Some(SentMessage {
                sender: app,
                destination: ORIGIN,
                nonce: 1
            })
        );
        let unknown = [0x99; 32];
        let body = [
            receipt_of(ids[0], 0, 1),
            receipt_of(ids[1], 1, 2),
            receipt_of(ids[1], 1, 3), // a second receipt for the same message
            receipt_of(ids[2], 0, 3), // the wrong nonce
            receipt_of(unknown, 4, 1), // never sent
            receipt_of(ids[2], 2, 9), // no such outcome
        ]
        .concat();
        let src = Source::new(vec![receipt_batch(0, ORIGIN_INBOX, body)]);
        System::reset_events();
        assert_ok!(src.process(0, &[0, 1]));
        let evs = events();
        let refused = |id, code| Event::ReceiptRefused {
            id,
            destination: ORIGIN,
            code,
        };
        use crate::codes::{DUPLICATE_RECEIPT, UNKNOWN_MESSAGE};
        assert!(evs.contains(&refused(ids[1], DUPLICATE_RECEIPT)));
        assert!(evs.contains(&refused(ids[2], UNKNOWN_MESSAGE)));
        assert!(evs.contains(&refused(unknown, UNKNOWN_MESSAGE)));
        assert_eq!(
            evs.iter()
                .filter(|e| matches!(e, Event::ReceiptRefused { .. }))
                .count(),
            4
        );
        assert_eq!(
            receipts_taken(),
            vec![
                (app, ORIGIN, ids[0], 1, [0x5e; 32]),
                (app, ORIGIN, ids[1], 2, [0x5e; 32]),
            ]
        );
        assert!(ReceiptsTaken::<Test>::contains_key(ids[0]));
        assert!(!ReceiptsTaken::<Test>::contains_key(ids[2]));
        // A receipt batch gets no receipt of its own.
        assert!(receipts_sent().is_empty());

        // The same receipt replayed in a later batch is refused.
        let src = Source::new(vec![
            receipt_batch(0, ORIGIN_INBOX, vec![1]),
            receipt_batch(1, ORIGIN_INBOX, receipt_of(ids[0], 0, 1)),
        ]);
        System::reset_events();
        assert_ok!(src.process(1, &[0, 1]));
        assert!(events().contains(&refused(ids[0], DUPLICATE_RECEIPT)));
        assert_eq!(receipts_taken().len(), 2);
    });
}

#[test]
fn receipts_from_anyone_but_the_origins_inbox_are_refused() {
    new_test_ext().execute_with(|| {
        configure_with_receipts();
        let ids = send_to_origin([0xa9; 32], 1);
        let forged = receipt_of(ids[0], 0, 1);
        let src = Source::new(vec![
            receipt_batch(0, [0x66; 32], forged.clone()),
            receipt_batch(1, ORIGIN_INBOX, forged[..72].to_vec()),
        ]);
        let id = |i: usize| src.messages[i].id().0;
        // From a stranger: refused with a receipt, nothing taken.
        assert_ok!(src.process(0, &[0, 1]));
        assert!(events().contains(&Event::MessageRefused {
            id: id(0),
            origin: ORIGIN,
            nonce: 0,
            code: crate::codes::NOT_RECEIPTS
        }));
        assert_eq!(receipts_sent().len(), 1);
        // Malformed, from the endpoint: refused without a receipt of its own.
        System::reset_events();
        assert_ok!(src.process(1, &[0, 1]));
        assert!(events().contains(&Event::MessageRefused {
            id: id(1),
            origin: ORIGIN,
            nonce: 1,
            code: crate::codes::MALFORMED_RECEIPTS
        }));
        assert!(receipts_sent().is_empty());
        assert!(receipts_taken().is_empty());
        // Without the quorum, or under a bad branch, nothing is read at all.
        let good = Source::new(vec![receipt_batch(0, ORIGIN_INBOX, forged)]);
        assert_noop!(good.process(0, &[0]), Error::<Test>::QuorumNotReached);
        let mut bad = good.branch(0);
        bad[3][0] ^= 1;
        assert_noop!(
            Isthmus::process(
                RuntimeOrigin::signed(alice()),
                good.checkpoint,
                good.sigs(&[0, 1]),
                good.encoded(0),
                Box::new(bad)
            ),
            Error::<Test>::InvalidBranch
        );
        assert!(receipts_taken().is_empty());
        assert_ok!(good.process(0, &[0, 1]));
        assert_eq!(receipts_taken().len(), 1);
    });
}

#[test]
fn a_failing_receipt_handler_keeps_the_receipt_for_a_retry() {
    new_test_ext().execute_with(|| {
        configure_with_receipts();
        let ids = send_to_origin(FAILING_SENDER, 1);
        let src = Source::new(vec![receipt_batch(
            0,
            ORIGIN_INBOX,
            receipt_of(ids[0], 0, 3),
        )]);
        assert_ok!(src.process(0, &[0, 1]));
        // Taken (never twice), its handler's writes rolled back, waiting.
        assert!(ReceiptsTaken::<Test>::contains_key(ids[0]));
        assert!(receipts_taken().is_empty());
        assert_eq!(
            PendingReceipts::<Test>::get(ids[0]),
            Some(PendingReceipt {
                destination: ORIGIN,
                outcome: 3,
                result: [0x5e; 32]
            })
        );
        assert!(events()
            .iter()
            .any(|e| matches!(e, Event::ReceiptHandlerFailed { id, .. } if *id == ids[0])));
        assert_noop!(
            Isthmus::retry_receipt(RuntimeOrigin::signed(alice()), ids[0]),
            Error::<Test>::ReceiptHandlerStillFailing
        );
        FailReceipts::set(false);
        assert_ok!(Isthmus::retry_receipt(
            RuntimeOrigin::signed(alice()),
            ids[0]
        ));
        assert!(events().contains(&Event::ReceiptHandled { id: ids[0] }));
        assert_eq!(
            receipts_taken(),
            vec![(FAILING_SENDER, ORIGIN, ids[0], 3, [0x5e; 32])]
        );
        assert_noop!(
            Isthmus::retry_receipt(RuntimeOrigin::signed(alice()), ids[0]),
            Error::<Test>::NoPendingReceipt
        );
        FailReceipts::set(true);
    });
}

#[test]
fn ended_entries_below_the_low_water_mark_are_pruned_once_relayers_had_time() {
    use crate::{EndedIds, LowWater};
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::new((0..5).map(|n| message(n, 0, b"pay")).collect());
        // Nonces 0, 2, 3 and 4 end at block 1; nonce 1 not yet.
        for i in [0, 2, 3, 4] {
            assert_ok!(src.process(i, &[0, 1]));
        }
        let prune = |max: u32| Isthmus::prune(RuntimeOrigin::signed(alice()), ORIGIN, max);
        let id = |i: usize| src.messages[i].id().0;
        // Within the keep period nothing goes: relayers still look their ends up.
        System::set_block_number(KeepEnded::get());
        assert_ok!(prune(10));
        assert_eq!(LowWater::<Test>::get(ORIGIN), 0);
        assert!(Processed::<Test>::contains_key(id(0)));

        // After it, the entries go up to the first nonce that has not ended.
        System::set_block_number(1 + KeepEnded::get());
        assert_ok!(prune(10));
        assert_eq!(LowWater::<Test>::get(ORIGIN), 1);
        assert!(!Processed::<Test>::contains_key(id(0)));
        assert_eq!(EndedIds::<Test>::get(ORIGIN, 0), None);
        assert!(events().contains(&Event::EndedPruned {
            origin: ORIGIN,
            low_water: 1
        }));
        assert!(Processed::<Test>::contains_key(id(2)));
        // Below the mark a message is a replay, alone or in a batch.
        assert_noop!(src.process(0, &[0, 1]), Error::<Test>::AlreadyProcessed);

        // Nonce 1 ends now, so it is kept a while; 2, 3, 4 wait behind it.
        let now = System::block_number();
        assert_ok!(src.process(1, &[0, 1]));
        assert_eq!(EndedIds::<Test>::get(ORIGIN, 1), Some(id(1)));
        assert_ok!(prune(10));
        assert_eq!(LowWater::<Test>::get(ORIGIN), 1);
        // Past its keep period, at most `max` entries per call.
        System::set_block_number(now + KeepEnded::get());
        assert_ok!(prune(2));
        assert_eq!(LowWater::<Test>::get(ORIGIN), 3);
        assert_ok!(prune(10));
        assert_eq!(LowWater::<Test>::get(ORIGIN), 5);
        for i in 0..5 {
            assert!(!Processed::<Test>::contains_key(id(i)), "nonce {i}");
            assert_noop!(src.process(i, &[0, 1]), Error::<Test>::AlreadyProcessed);
        }
        // Nothing left: no event, no change.
        System::reset_events();
        assert_ok!(prune(10));
        assert!(!events()
            .iter()
            .any(|e| matches!(e, Event::EndedPruned { .. })));

        // Anyone signed may prune, only a configured origin.
        assert_noop!(
            Isthmus::prune(RuntimeOrigin::none(), ORIGIN, 1),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Isthmus::prune(RuntimeOrigin::signed(alice()), 99, 1),
            Error::<Test>::UnknownOrigin
        );
    });
}

#[test]
fn a_failed_handler_leaves_no_index_entry_to_prune() {
    use crate::EndedIds;
    new_test_ext().execute_with(|| {
        configure();
        let src = Source::standard();
        // Message 1's handler fails: the message stays deliverable, unindexed.
        assert_ok!(src.process(1, &[0, 1]));
        assert_eq!(EndedIds::<Test>::get(ORIGIN, 1), None);
        assert_ok!(src.process(0, &[0, 1]));
        System::set_block_number(1 + KeepEnded::get());
        assert_ok!(Isthmus::prune(RuntimeOrigin::signed(alice()), ORIGIN, 10));
        assert_eq!(crate::LowWater::<Test>::get(ORIGIN), 1);
    });
}
