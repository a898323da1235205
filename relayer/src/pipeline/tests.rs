//! The pipeline's steps against a fake ledger pair (`crate::ledger::fake`), fake
//! peers and a real Postgres (each test gets its own database).

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use isthmus_protocol::{
    Address32, Attestation, Checkpoint, Message, MessageId, MessageOutcome, SignerSet,
};
use isthmus_schema::{FinalityMode, LedgerKind, MessageStatus, RetryPolicy, Store};
use k256::ecdsa::SigningKey;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::attest::{Attester, Consortium, Peer, PeerVerdict, Peers};
use crate::ledger::fake::FakeLedger;
use crate::ledger::{LedgerError, LedgerHandle};
use crate::metrics::Metrics;

const SRC: u32 = 1;
const DST: u32 = 2;

fn secret(i: u8) -> k256::SecretKey {
    k256::SecretKey::from_slice(&[i; 32]).unwrap()
}

/// The other members, answering with their own keys unless told to refuse.
struct FakePeers {
    members: Vec<(String, SigningKey)>,
    refuse: AtomicBool,
}

#[async_trait]
impl Peers for FakePeers {
    async fn attest(&self, checkpoint: &Checkpoint) -> Vec<PeerVerdict> {
        self.members
            .iter()
            .map(|(name, key)| {
                let signer = isthmus_protocol::attestation::address_of(key.verifying_key());
                if self.refuse.load(Ordering::SeqCst) {
                    PeerVerdict {
                        member: name.clone(),
                        signer,
                        attestation: None,
                        verdict: Err("unreachable: connection refused".into()),
                    }
                } else {
                    PeerVerdict {
                        member: name.clone(),
                        signer,
                        attestation: Some(
                            Attestation::sign(key, &checkpoint.digest(&NETWORK)).unwrap(),
                        ),
                        verdict: Ok(()),
                    }
                }
            })
            .collect()
    }
}

/// The network the tests' members sign for.
const NETWORK: isthmus_protocol::Network = isthmus_adapter_evm::devnet::NETWORK;

struct Setup {
    ctx: Context,
    source: Arc<FakeLedger>,
    target: Arc<FakeLedger>,
    peers: Arc<FakePeers>,
}

/// Three members (this one is `bank-a`, turn 0 of 3), threshold 2, one route.
async fn setup(pool: PgPool, target: FakeLedger, takeover: Duration) -> Setup {
    let store = Store::new(pool);
    for id in [SRC, DST] {
        store
            .upsert_ledger(&isthmus_schema::Ledger {
                id,
                name: format!("ledger-{id}"),
                kind: LedgerKind::Evm,
                finality: FinalityMode::FinalizedTag,
            })
            .await
            .unwrap();
    }
    let source = Arc::new(FakeLedger::new(SRC));
    let target = Arc::new(target);
    let attester = Arc::new(Attester::new(
        "bank-a".into(),
        Arc::new(isthmus_keys::LocalKey::new(&secret(1))),
        NETWORK,
    ));
    let others: Vec<(String, SigningKey)> = [("bank-b", 2u8), ("bank-c", 3)]
        .iter()
        .map(|(n, i)| (n.to_string(), SigningKey::from(secret(*i))))
        .collect();
    let mut members = vec![Peer {
        name: "bank-a".into(),
        signer: attester.address(),
        url: String::new(),
    }];
    for (name, key) in &others {
        members.push(Peer {
            name: name.clone(),
            signer: isthmus_protocol::attestation::address_of(key.verifying_key()),
            url: String::new(),
        });
    }
    let signers = SignerSet::new(members.iter().map(|m| m.signer).collect(), 2).unwrap();
    *target.signers.lock().unwrap() =
        Some(isthmus_protocol::ActiveSigners::initial(signers.clone()));
    let peers = Arc::new(FakePeers {
        members: others,
        refuse: AtomicBool::new(false),
    });
    let handle = |l: &Arc<FakeLedger>| LedgerHandle {
        name: format!("ledger-{}", l.id),
        id: l.id,
        poll_interval: Duration::from_millis(50),
        source: l.clone(),
        destination: l.clone(),
    };
    let ledgers = BTreeMap::from([(SRC, handle(&source)), (DST, handle(&target))]);
    let ctx = Context {
        store,
        ledgers,
        routes: vec![Route {
            source: SRC,
            destination: DST,
            batch_size: 16,
            in_flight: 1,
            max_message_gas: Some(1_000_000),
        }],
        attester,
        consortium: Consortium {
            network: NETWORK,
            members,
            signers,
        },
        peers: peers.clone(),
        metrics: Metrics::new(),
        worker: "bank-a/1".into(),
        retry: RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        },
        takeover,
        progress: turns::Progress::new(Instant::now()),
        quiet: quiet::Quiet::new(Duration::from_secs(60)),
        refusals: std::sync::Mutex::new(std::collections::HashSet::new()),
        leases: leases::InUse::default(),
        signer_sets: super::signer_sets::Following::default(),
        paused: Default::default(),
    };
    Setup {
        ctx,
        source,
        target,
        peers,
    }
}

fn message(recipient: [u8; 32], deadline: u64) -> Message {
    Message {
        nonce: 0,
        origin: 0,
        sender: Address32([0x5a; 32]),
        destination: DST,
        recipient: Address32(recipient),
        deadline,
        body: b"pay 10".to_vec(),
    }
}

/// A recipient any ledger takes (a 20-byte address, left-padded).
const RECIPIENT: [u8; 32] = {
    let mut r = [0u8; 32];
    r[31] = 0x42;
    r
};

impl Setup {
    /// Dispatches `n` plain messages; returns their ids by nonce.
    fn dispatch(&self, n: usize) -> Vec<MessageId> {
        (0..n)
            .map(|_| self.source.dispatch(message(RECIPIENT, 0)))
            .collect()
    }

    async fn observe(&self) {
        while observe::observe(&self.ctx, SRC).await.unwrap().is_some() {}
    }

    async fn round(&self) -> Result<usize, PipelineError> {
        round(&self.ctx, DST, &CancellationToken::new()).await
    }

    async fn record(&self, id: MessageId) -> isthmus_schema::MessageRecord {
        self.ctx.store.message(id).await.unwrap().unwrap().message
    }

    async fn status(&self, id: MessageId) -> MessageStatus {
        self.record(id).await.status
    }

    fn batches(&self) -> Vec<isthmus_protocol::Batch> {
        self.target.inbox().batches.clone()
    }
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_message_its_recipient_refuses_for_good_ends_refused_with_the_code(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(1);
    s.target
        .inbox()
        .outcomes
        .insert(ids[0], MessageOutcome::Refused("unknown bank".into()));
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 1);
    let history = s.ctx.store.message(ids[0]).await.unwrap().unwrap();
    assert_eq!(history.message.status, MessageStatus::Refused);
    let last = history.log.last().unwrap();
    assert_eq!(last.evidence["code"], "unknown bank", "{}", last.evidence);
    assert!(last.evidence["tx"].as_str().unwrap().starts_with("0x"));
    // Refused is final: nothing claims it again.
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(s.batches().len(), 1);
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn messages_another_submission_ended_undelivered_are_recorded_as_the_destination_shows(
    pool: PgPool,
) {
    // No takeover delay: other members' turns are taken once they are due.
    let s = setup(pool.clone(), FakeLedger::new(DST), Duration::ZERO).await;
    // Nonces 1 and 2 are other members' turns: this member asks the destination.
    let ids = s.dispatch(4);
    let at = crate::ledger::DeliveryRef {
        tx_hash: [0xab; 32],
        block: isthmus_schema::BlockRef {
            number: 42,
            hash: crate::ledger::fake::block_hash(42),
        },
    };
    {
        let mut inbox = s.target.inbox();
        inbox
            .ended
            .insert(ids[1], (at, MessageOutcome::Refused("unknown bank".into())));
        inbox.ended.insert(ids[2], (at, MessageOutcome::Expired));
    }
    s.observe().await;
    // Observing held the other members' turns back a moment: make them due now.
    sqlx::query("UPDATE messages SET next_attempt_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    s.round().await.unwrap();
    for (id, status) in [
        (ids[1], MessageStatus::Refused),
        (ids[2], MessageStatus::Expired),
    ] {
        let history = s.ctx.store.message(id).await.unwrap().unwrap();
        assert_eq!(history.message.status, status);
        let last = history.log.last().unwrap();
        assert_eq!(last.evidence["tx"], format!("0x{}", "ab".repeat(32)));
        assert_eq!(last.evidence["block"], 42);
    }
    let refused = s.ctx.store.message(ids[1]).await.unwrap().unwrap();
    assert_eq!(refused.log.last().unwrap().evidence["code"], "unknown bank");
    // Neither was submitted by this member.
    assert!(s
        .batches()
        .iter()
        .all(|b| b.messages.iter().all(|(m, _)| m.nonce != 1 && m.nonce != 2)));
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_batch_goes_through_every_step_and_each_outcome_is_recorded(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(10);
    // This member's turns are nonces 0, 3, 6 and 9.
    s.target.delivered_elsewhere(ids[3], 3);
    {
        let mut inbox = s.target.inbox();
        inbox.outcomes.insert(
            ids[6],
            MessageOutcome::HandlerFailed("insufficient funds".into()),
        );
        inbox.outcomes.insert(ids[9], MessageOutcome::Expired);
    }
    s.observe().await;
    let done = s.round().await.unwrap();
    assert_eq!(done, 3, "delivered, delivered elsewhere, expired");

    let batches = s.batches();
    assert_eq!(batches.len(), 1);
    let nonces: Vec<u64> = batches[0].messages.iter().map(|(m, _)| m.nonce).collect();
    assert_eq!(nonces, vec![0, 3, 6, 9], "only this member's turns");
    assert_eq!(
        batches[0].attestations.len(),
        3,
        "every valid signature, in signer order"
    );
    assert_eq!(batches[0].checkpoint.count, 10);
    for (m, branch) in &batches[0].messages {
        assert_eq!(branch.root_for(&m.id().0), batches[0].checkpoint.root);
    }

    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
    assert_eq!(s.status(ids[3]).await, MessageStatus::Delivered);
    let failed = s.record(ids[6]).await;
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.attempts, 1);
    assert!(failed.last_error.unwrap().contains("insufficient funds"));
    assert!(failed.next_attempt_at.is_some());
    assert_eq!(s.status(ids[9]).await, MessageStatus::Expired);
    for held in [1, 2, 4, 5, 7, 8] {
        assert_eq!(
            s.status(ids[held]).await,
            MessageStatus::Observed,
            "nonce {held}"
        );
    }
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_message_over_the_routes_gas_cap_is_dead_lettered_before_any_submission(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    // This member's turns are nonces 0 and 3; nonce 3's handler needs 6M gas.
    let ids = s.dispatch(4);
    s.target.inbox().gas.insert(ids[3], 6_000_000);
    s.target.inbox().gas.insert(ids[0], 1_000_000);
    s.observe().await;
    assert_eq!(
        s.round().await.unwrap(),
        2,
        "one delivered, one dead-lettered"
    );

    assert_eq!(
        s.target.inbox().caps,
        vec![Some(1_000_000)],
        "the route's cap"
    );
    let batches = s.batches();
    assert_eq!(batches.len(), 1);
    let sent: Vec<u64> = batches[0].messages.iter().map(|(m, _)| m.nonce).collect();
    assert_eq!(sent, vec![0], "the unfit message is never submitted");
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
    let unfit = s.record(ids[3]).await;
    assert_eq!(unfit.status, MessageStatus::DeadLetter);
    assert_eq!(unfit.attempts, 1, "no retries: nothing would change");
    let reason = unfit.last_error.unwrap();
    assert!(
        reason.starts_with("not submitted: needs 6000000 gas"),
        "{reason}"
    );
    // A batch of unfit messages only sends nothing at all.
    let more = s.dispatch(3);
    s.target.inbox().gas.insert(more[2], 2_000_000);
    s.observe().await;
    s.round().await.unwrap();
    assert_eq!(s.batches().len(), 1);
    assert_eq!(s.status(more[2]).await, MessageStatus::DeadLetter);
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn unreceivable_and_expired_messages_are_settled_without_a_submission(pool: PgPool) {
    let mut target = FakeLedger::new(DST);
    target.evm_recipients = true;
    let s = setup(pool, target, Duration::from_secs(3600)).await;
    let unreceivable = s.source.dispatch(message([0x77; 32], 0));
    s.dispatch(2);
    let expired = s.source.dispatch(message(RECIPIENT, 1));
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 2);
    assert_eq!(s.status(unreceivable).await, MessageStatus::Rejected);
    assert_eq!(s.status(expired).await, MessageStatus::Expired);
    assert!(s.batches().is_empty(), "nothing was submitted");
    let history = s.ctx.store.message(unreceivable).await.unwrap().unwrap();
    let last = history.log.last().unwrap();
    assert_eq!(last.evidence["reason"], "not a 20-byte address");
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn an_expired_message_is_submitted_to_a_destination_that_ends_it(pool: PgPool) {
    let mut target = FakeLedger::new(DST);
    target.ends_expired = true;
    let s = setup(pool, target, Duration::from_secs(3600)).await;
    // Nonce 0: this member's turn, its deadline long past.
    let expired = s.source.dispatch(message(RECIPIENT, 1));
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 1);
    let batches = s.batches();
    assert_eq!(
        batches.len(),
        1,
        "submitted, so the destination proves the expiry"
    );
    assert_eq!(batches[0].messages[0].0.id(), expired);
    let history = s.ctx.store.message(expired).await.unwrap().unwrap();
    assert_eq!(history.message.status, MessageStatus::Expired);
    let last = history.log.last().unwrap();
    assert_eq!(
        last.evidence["tx"],
        format!("0x{}", "01".repeat(32)),
        "the transaction that ended it: {}",
        last.evidence
    );
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn another_members_turn_waits_while_it_delivers_and_is_taken_over_when_it_stops(
    pool: PgPool,
) {
    let mut target = FakeLedger::new(DST);
    target.with_feed = true;
    let takeover = Duration::from_secs(1);
    let s = setup(pool, target, takeover).await;
    let ids = s.dispatch(2);
    s.observe().await;
    // Nonce 1 is bank-b's turn: held back for the takeover period at observation.
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(ids[1]).await, MessageStatus::Observed);
    tokio::time::sleep(takeover + Duration::from_millis(200)).await;

    // Old enough, but bank-b was just seen delivering: a queue, not a stop.
    let bank_b = s.ctx.consortium.turn_of(1).unwrap();
    s.ctx.progress.delivered(DST, bank_b, Instant::now());
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(
        s.batches().len(),
        1,
        "no takeover while its member delivers"
    );
    let held = s.record(ids[1]).await;
    assert_eq!(held.claimed_by, None, "its lease was given back");

    // bank-b stays silent for a takeover period: this member delivers its turn.
    tokio::time::sleep(takeover + Duration::from_millis(200)).await;
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(ids[1]).await, MessageStatus::Delivered);
    assert_eq!(s.batches().len(), 2);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn another_members_message_expires_soon_after_its_deadline_not_after_the_takeover(
    pool: PgPool,
) {
    let mut target = FakeLedger::new(DST);
    target.with_feed = true;
    let s = setup(pool, target, Duration::from_secs(3600)).await;
    s.dispatch(1);
    let deadline = chrono::Utc::now().timestamp() as u64 + 2;
    // Nonce 1 is bank-b's turn: held back, but only until just past its deadline.
    let expiring = s.source.dispatch(message(RECIPIENT, deadline));
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(expiring).await, MessageStatus::Observed);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(expiring).await, MessageStatus::Expired);
    assert_eq!(
        s.batches().len(),
        1,
        "only this member's own message was sent"
    );
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn an_expiry_the_destination_contradicts_is_a_delivery(pool: PgPool) {
    let mut target = FakeLedger::new(DST);
    target.with_feed = true;
    let s = setup(pool, target, Duration::from_secs(3600)).await;
    // This member's turns (nonces 0 and 3) past their deadline by its clock; the
    // destination shows the first delivered (by another member, before the deadline).
    let ids: Vec<MessageId> = (0..4)
        .map(|_| s.source.dispatch(message(RECIPIENT, 1)))
        .collect();
    let (delivered, expired) = (ids[0], ids[3]);
    s.target.delivered_elsewhere(delivered, 0);
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 2);
    assert_eq!(s.status(delivered).await, MessageStatus::Delivered);
    assert_eq!(s.status(expired).await, MessageStatus::Expired);
    assert!(s.batches().is_empty(), "nothing was submitted");

    // A delivery that becomes final only after the expiry was recorded: the watcher
    // corrects the history from the destination's evidence.
    s.target.inbox().delivered.insert(
        expired,
        (
            3,
            crate::ledger::DeliveryRef {
                tx_hash: [0xee; 32],
                block: isthmus_schema::BlockRef {
                    number: 150,
                    hash: crate::ledger::fake::block_hash(150),
                },
            },
        ),
    );
    watch::watch(&s.ctx, DST, None).await.unwrap();
    let history = s.ctx.store.message(expired).await.unwrap().unwrap();
    assert_eq!(history.message.status, MessageStatus::Delivered);
    let last = history.log.last().unwrap();
    assert_eq!(last.evidence["from_status"], "expired", "{}", last.evidence);
    assert!(
        last.evidence.to_string().contains(&"ee".repeat(32)),
        "the delivering transaction: {}",
        last.evidence
    );
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn the_watcher_records_a_held_message_another_member_delivered(pool: PgPool) {
    let mut target = FakeLedger::new(DST);
    target.with_feed = true;
    let s = setup(pool, target, Duration::from_secs(3600)).await;
    let ids = s.dispatch(2);
    s.observe().await;
    {
        let mut inbox = s.target.inbox();
        inbox.delivered.insert(
            ids[1],
            (
                1,
                crate::ledger::DeliveryRef {
                    tx_hash: [0xee; 32],
                    block: isthmus_schema::BlockRef {
                        number: 150,
                        hash: crate::ledger::fake::block_hash(150),
                    },
                },
            ),
        );
    }
    let next = watch::watch(&s.ctx, DST, None).await.unwrap();
    assert_eq!(next, Some(201));
    assert_eq!(s.status(ids[1]).await, MessageStatus::Delivered);
    let bank_b = s.ctx.consortium.turn_of(1).unwrap();
    assert!(!s
        .ctx
        .progress
        .idle(DST, bank_b, Duration::from_secs(60), Instant::now()));
    assert!(s.batches().is_empty(), "nothing was sent for it");
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_round_without_quorum_sends_nothing_and_gives_its_leases_back(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(1);
    s.observe().await;
    s.peers.refuse.store(true, Ordering::SeqCst);
    assert_eq!(s.round().await.unwrap(), 0);
    assert!(s.batches().is_empty());
    let m = s.record(ids[0]).await;
    assert_eq!(m.status, MessageStatus::Verified);
    assert_eq!(m.claimed_by, None);
    // The history names both refusals, though no signature came back; a second
    // round that asks again does not record them again.
    let unsigned_refusals = || async {
        s.ctx
            .store
            .log_page(0, None, None, 1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.event == isthmus_schema::LogEvent::Attestation
                    && e.evidence["outcome"] == "refused"
                    && e.evidence["signature"].is_null()
            })
            .map(|e| e.evidence["member"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(unsigned_refusals().await, vec!["bank-b", "bank-c"]);
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(unsigned_refusals().await.len(), 2);

    // The peers answer again: the next round delivers.
    s.peers.refuse.store(false, Ordering::SeqCst);
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_failed_submission_is_retried_later(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(1);
    s.observe().await;
    s.target.inbox().fail_next = Some(|| LedgerError::Timeout {
        ledger: "ledger-2".into(),
        what: "finality of the delivery",
        seconds: 120,
    });
    assert_eq!(s.round().await.unwrap(), 0);
    let m = s.record(ids[0]).await;
    assert_eq!(m.status, MessageStatus::Failed);
    assert_eq!(m.attempts, 1);
    assert!(m.last_error.unwrap().contains("took longer than 120 s"));
    assert!(m.next_attempt_at.unwrap() > chrono::Utc::now());
    assert_eq!(s.batches().len(), 1);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_history_that_misses_an_outbox_entry_is_a_final_error(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(1);
    s.observe().await;
    // The chain now proves another message at that position than the one recorded.
    s.source.outbox.lock().unwrap()[0].1.body = b"something else".to_vec();
    let e = s.round().await.unwrap_err();
    assert!(matches!(e, PipelineError::IncompleteHistory { .. }), "{e}");
    assert!(!e.is_retryable());
    let m = s.record(ids[0]).await;
    assert_eq!(m.status, MessageStatus::Observed);
    assert_eq!(m.claimed_by, None, "the round gave its lease back");
    assert!(s.batches().is_empty());
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_dead_letter_the_destination_contradicts_is_corrected_from_its_evidence(pool: PgPool) {
    let mut s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    s.ctx.retry.max_attempts = 1;
    let ids = s.dispatch(4);
    s.target
        .inbox()
        .outcomes
        .insert(ids[0], MessageOutcome::HandlerFailed("out of funds".into()));
    // Nonce 3: refused here, and in the same block another member's submission
    // delivered it; the dead letter is checked before it pages anyone.
    s.target.inbox().outcomes.insert(
        ids[3],
        MessageOutcome::HandlerFailed("already settled".into()),
    );
    s.target.delivered_elsewhere(ids[3], 3);
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(ids[0]).await, MessageStatus::DeadLetter);
    assert_eq!(s.status(ids[3]).await, MessageStatus::Delivered);

    // Nothing shows nonce 0 delivered: the check changes nothing.
    assert_eq!(reconcile::dead_letters(&s.ctx, DST).await.unwrap(), 0);
    assert_eq!(s.status(ids[0]).await, MessageStatus::DeadLetter);

    // Later another member delivers it: the periodic check corrects the history.
    s.target.delivered_elsewhere(ids[0], 0);
    assert_eq!(reconcile::dead_letters(&s.ctx, DST).await.unwrap(), 1);
    let history = s.ctx.store.message(ids[0]).await.unwrap().unwrap();
    assert_eq!(history.message.status, MessageStatus::Delivered);
    let last = history.log.last().unwrap();
    assert_eq!(last.evidence["from_status"], "dead_letter");
    assert_eq!(last.evidence["tx_hash"], hex::encode([0xee; 32]));
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[test]
fn retryability_is_decided_where_the_cause_is_known() {
    let retryable = [
        PipelineError::NotObserved { ledger: "a".into() },
        PipelineError::DeliveryNotFound {
            ledger: "a".into(),
            id: isthmus_schema::MessageId([1; 32]),
        },
        PipelineError::Ledger(LedgerError::BlockMissing {
            ledger: "a".into(),
            number: 3,
        }),
        PipelineError::Ledger(LedgerError::Refused {
            ledger: "a".into(),
            reason: "bad proof".into(),
        }),
    ];
    for e in retryable {
        assert!(e.is_retryable(), "{e}");
    }
    let final_ = [
        PipelineError::IncompleteHistory {
            ledger: "a".into(),
            block: 3,
        },
        PipelineError::UnknownLedger { id: 9 },
        PipelineError::CorruptRecord {
            id: isthmus_schema::MessageId([1; 32]),
            reason: "does not decode".into(),
        },
        PipelineError::Ledger(LedgerError::ChainChanged {
            ledger: "a".into(),
            number: 3,
            hash: "0x01".into(),
        }),
    ];
    for e in final_ {
        assert!(!e.is_retryable(), "{e}");
    }
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn leases_whose_claim_answer_was_lost_are_taken_back_and_those_in_use_kept(pool: PgPool) {
    let s = setup(
        pool.clone(),
        FakeLedger::new(DST),
        Duration::from_secs(3600),
    )
    .await;
    let ids = s.dispatch(6);
    s.observe().await;
    // A claim that committed but whose answer never arrived: the leases are this
    // worker's, and no step knows of them.
    let lost = s
        .ctx
        .store
        .claim_ids(&ids, MessageStatus::PENDING, &s.ctx.worker, LEASE)
        .await
        .unwrap();
    assert_eq!(lost.len(), 6);
    // One of them a step does use (a batch still in flight).
    s.ctx.leases.take([ids[0]]);
    assert_eq!(
        leases::release_stray(&s.ctx).await.unwrap(),
        0,
        "within the grace after the claim, nothing is taken back"
    );
    sqlx::query("UPDATE messages SET claimed_until = claimed_until - interval '40 seconds'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(leases::release_stray(&s.ctx).await.unwrap(), 5);
    // The next round delivers this member's turns without waiting out the lease.
    s.ctx.leases.give_back(&[ids[0]]);
    s.ctx.release(&[ids[0]]).await;
    assert!(s.round().await.unwrap() >= 2);
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
    assert_eq!(s.status(ids[3]).await, MessageStatus::Delivered);
    assert!(
        s.ctx.leases.list().is_empty(),
        "a finished round uses no lease"
    );
}

/// A key whose token fails its next `failures` signatures (unplugged), then signs;
/// `calls` counts every call to the token.
#[derive(Debug)]
struct FlakyKey {
    inner: isthmus_keys::LocalKey,
    failures: std::sync::atomic::AtomicU32,
    calls: Arc<std::sync::atomic::AtomicU32>,
}

impl isthmus_keys::EcdsaKey for FlakyKey {
    fn address(&self) -> [u8; 20] {
        self.inner.address()
    }

    fn public_key(&self) -> k256::PublicKey {
        self.inner.public_key()
    }

    fn describe(&self) -> String {
        "pkcs11 token `flaky` key `attestation`".to_owned()
    }

    fn sign_prehash(
        &self,
        digest: &[u8; 32],
    ) -> Result<isthmus_keys::RecoverableSignature, isthmus_keys::KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(isthmus_keys::KeyError::TokenGone {
                module: "/usr/lib/softhsm/libsofthsm2.so".into(),
                token: "flaky".into(),
                key: "attestation".into(),
            });
        }
        self.inner.sign_prehash(digest)
    }
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_token_that_cannot_sign_delays_the_message_and_loses_nothing(pool: PgPool) {
    use isthmus_keys::EcdsaKey;
    let mut s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let key = FlakyKey {
        inner: isthmus_keys::LocalKey::new(&secret(1)),
        failures: std::sync::atomic::AtomicU32::new(2),
        calls: calls.clone(),
    };
    assert_eq!(key.address(), s.ctx.attester.address());
    s.ctx.attester = Arc::new(Attester::new("bank-a".into(), Arc::new(key), NETWORK));
    let ids = s.dispatch(5);
    s.observe().await;
    for _ in 0..2 {
        let e = s.round().await.unwrap_err();
        assert!(matches!(e, PipelineError::Sign(_)), "{e}");
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("token `flaky`"), "{e}");
        assert!(s.batches().is_empty(), "nothing is sent unsigned");
        let m = s.record(ids[0]).await;
        assert_eq!(m.status, MessageStatus::Verified);
        assert_eq!(m.claimed_by, None, "the round gave its lease back");
        assert_eq!(
            m.attempts, 0,
            "a token failure costs the message no attempt"
        );
    }
    // The token is back: the next round delivers this member's turns among the five
    // (nonces 0 and 3), once, in one batch, with one token call for their checkpoint.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(s.round().await.unwrap(), 2);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "one signature per checkpoint"
    );
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
    assert_eq!(s.status(ids[3]).await, MessageStatus::Delivered);
    assert_eq!(s.batches().len(), 1);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn signatures_count_by_the_destinations_signer_sets_through_a_rotation(pool: PgPool) {
    let mut s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let address = |i: u8| {
        isthmus_protocol::attestation::address_of(SigningKey::from(secret(i)).verifying_key())
    };
    let (a, b_old, b_new, c) = (address(1), address(2), address(4), address(3));
    // bank-b switched to its new key before the consortium's update landed.
    s.ctx.peers = Arc::new(FakePeers {
        members: vec![
            ("bank-b".into(), SigningKey::from(secret(4))),
            ("bank-c".into(), SigningKey::from(secret(3))),
        ],
        refuse: AtomicBool::new(false),
    });
    let refused = |s: &Setup| {
        let store = s.ctx.store.clone();
        async move {
            store
                .log_page(0, None, None, 1_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| {
                    e.event == isthmus_schema::LogEvent::Attestation
                        && e.evidence["outcome"] == "refused"
                })
                .map(|e| e.evidence["reason"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let ids = s.dispatch(1);
    s.observe().await;
    assert_eq!(
        s.round().await.unwrap(),
        1,
        "bank-a and bank-c are a quorum"
    );
    assert_eq!(s.batches()[0].attestations.len(), 2);
    let reasons = refused(&s).await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains(&format!("0x{}", hex::encode(b_new)))
            && reasons[0].contains("version 0"),
        "{reasons:?}"
    );
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);

    // The update landed (version 1); the replaced set's overlap is over, and this
    // member's own key was replaced too: its signature is refused and recorded, and
    // bank-b's new key with bank-c's is the quorum.
    let x = address(9);
    *s.target.signers.lock().unwrap() = Some(isthmus_protocol::ActiveSigners {
        version: 1,
        current: SignerSet::new(vec![x, b_new, c], 2).unwrap(),
        previous: Some((SignerSet::new(vec![a, b_old, c], 2).unwrap(), 1)),
    });
    s.ctx.signer_sets.forget(DST, SRC);
    let ids = s.dispatch(3);
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 1);
    let batch = s.batches().pop().unwrap();
    let signers: Vec<_> = batch
        .attestations
        .iter()
        .map(|att| att.recover(&batch.checkpoint.digest(&NETWORK)).unwrap())
        .collect();
    assert_eq!(signers, vec![b_new, c]);
    assert_eq!(s.status(ids[2]).await, MessageStatus::Delivered);
    let reasons = refused(&s).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains(&format!("0x{}", hex::encode(a))) && r.contains("version 1")),
        "{reasons:?}"
    );

    // A set that holds too few of the answering keys: nothing is sent.
    *s.target.signers.lock().unwrap() = Some(isthmus_protocol::ActiveSigners::initial(
        SignerSet::new(vec![x, b_old, c], 2).unwrap(),
    ));
    s.ctx.signer_sets.forget(DST, SRC);
    let sent = s.batches().len();
    let ids = s.dispatch(3);
    s.observe().await;
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(s.batches().len(), sent);
    assert_eq!(s.status(ids[2]).await, MessageStatus::Verified);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_destination_without_a_signer_set_for_the_origin_holds_its_messages(pool: PgPool) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    *s.target.signers.lock().unwrap() = None;
    let ids = s.dispatch(1);
    s.observe().await;
    // Not an error of the round (other origins' batches go on): the messages wait.
    assert_eq!(s.round().await.unwrap(), 0);
    assert!(s.batches().is_empty());
    let m = s.record(ids[0]).await;
    assert_eq!((m.status, m.claimed_by), (MessageStatus::Verified, None));
    // Once the origin is set up there, they are delivered.
    *s.target.signers.lock().unwrap() = Some(isthmus_protocol::ActiveSigners::initial(
        s.ctx.consortium.signers.clone(),
    ));
    s.ctx.signer_sets.forget(DST, SRC);
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(ids[0]).await, MessageStatus::Delivered);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_paused_route_keeps_its_messages_waiting_without_spending_attempts(pool: PgPool) {
    let mut s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    s.ctx.retry.base_delay = Duration::ZERO;
    // This member's turns: nonces 0 and 3 (the others' wait for a takeover).
    let all = s.dispatch(4);
    let ids = [all[0], all[3]];
    s.observe().await;
    s.target.inbox().route = isthmus_protocol::RouteState {
        paused: true,
        epoch: 0,
    };
    // Paused: nothing is claimed, submitted or charged, however many rounds pass.
    for _ in 0..3 {
        assert_eq!(s.round().await.unwrap(), 0);
    }
    assert!(s.batches().is_empty());
    for id in &ids {
        let m = s.record(*id).await;
        assert_eq!((m.status, m.attempts), (MessageStatus::Observed, 0));
    }
    for id in &all {
        assert_eq!(s.record(*id).await.claimed_by, None, "nothing is leased");
    }
    let gauge = s
        .ctx
        .metrics
        .route_paused
        .with_label_values(&["ledger-1->ledger-2"]);
    assert_eq!(gauge.get(), 1);

    // Resumed: the state is read again after `paused::REFRESH`, or at once when it
    // was dropped; then every message is delivered, once.
    s.target.inbox().route.paused = false;
    s.ctx.paused.forget(DST, SRC);
    assert_eq!(s.round().await.unwrap(), 2);
    assert_eq!(gauge.get(), 0);
    for id in &ids {
        assert_eq!(s.status(*id).await, MessageStatus::Delivered);
    }

    // A pause that lands after the state was read costs the round's submission one
    // attempt; the refusal drops the read, so the next round waits without another.
    let later = [s.dispatch(3)[2]]; // nonce 6, this member's turn
    s.observe().await;
    s.target.inbox().route.paused = true;
    assert_eq!(s.round().await.unwrap(), 0);
    let m = s.record(later[0]).await;
    assert_eq!((m.status, m.attempts), (MessageStatus::Failed, 1));
    let submitted = s.batches().len();
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(s.batches().len(), submitted);
    assert_eq!(s.record(later[0]).await.attempts, 1);
    s.target.inbox().route.paused = false;
    s.ctx.paused.forget(DST, SRC);
    assert_eq!(s.round().await.unwrap(), 1);
    assert_eq!(s.status(later[0]).await, MessageStatus::Delivered);
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_held_message_waits_without_spending_attempts_and_is_delivered_once_released(
    pool: PgPool,
) {
    let s = setup(pool, FakeLedger::new(DST), Duration::from_secs(3600)).await;
    let ids = s.dispatch(1);
    s.observe().await;
    s.target
        .inbox()
        .outcomes
        .insert(ids[0], MessageOutcome::Held("large value".into()));
    assert_eq!(s.round().await.unwrap(), 0);
    let m = s.record(ids[0]).await;
    assert_eq!(
        (m.status, m.attempts),
        (MessageStatus::Held, 0),
        "a hold is no failure"
    );
    let due = m.next_attempt_at.expect("a held message is due again");
    assert!(due > chrono::Utc::now() + chrono::Duration::seconds(20));
    assert!(due <= chrono::Utc::now() + chrono::Duration::seconds(31));
    let history = s.ctx.store.message(ids[0]).await.unwrap().unwrap();
    let held = history.log.last().unwrap();
    assert_eq!(held.event, isthmus_schema::LogEvent::Held);
    assert_eq!(held.evidence["reason"], "large value");
    assert_eq!(held.evidence["from_status"], "submitted");
    // Not due: the next round submits nothing.
    let submitted = s.batches().len();
    assert_eq!(s.round().await.unwrap(), 0);
    assert_eq!(s.batches().len(), submitted);
    assert_eq!(
        s.ctx
            .metrics
            .holds
            .with_label_values(&["ledger-1->ledger-2"])
            .get(),
        1
    );
    // Held again at each recheck until a quorum decides; a decision submitted here
    // makes it due at once, and its next submission delivers it.
    s.target.inbox().outcomes.remove(&ids[0]);
    s.ctx
        .store
        .hold_decided(ids[0], &serde_json::json!({"step": "submit"}), "test")
        .await
        .unwrap();
    assert_eq!(s.round().await.unwrap(), 1);
    let m = s.record(ids[0]).await;
    assert_eq!((m.status, m.attempts), (MessageStatus::Delivered, 0));
    assert!(s.ctx.store.verify_log_chain().await.unwrap() > 0);
}
