//! Store behaviour against a real Postgres: each test gets its own database
//! (`DATABASE_URL` names the server, e.g. postgres://postgres@127.0.0.1:5432/postgres).

#![expect(clippy::unwrap_used, reason = "test assertions")]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use isthmus_schema::{
    BlockRef, ChainBreak, Claim, CursorKey, FailureOutcome, FinalityMode, Ledger, LedgerKind,
    LightClientCommit, LightClientRecord, LogEvent, MessageFilter, MessageId, MessageStatus,
    NewAttestation, NewCheckpoint, NewDelivery, NewMessage, ObservedRange, ObservedReceipt,
    OperatorAction, OperatorActionKind, PaymentApp, RejectedEntry, RetryPolicy, Route, Stage,
    Store, StoreError, VerifiedHeaderRecord, TRANSITIONS,
};
use serde_json::json;
use sqlx::PgPool;

const SRC: u32 = 7;
const DST: u32 = 9;

use isthmus_protocol::keccak256 as keccak;
use isthmus_protocol::ReceiptOutcome;

fn block(number: u64) -> BlockRef {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&number.to_be_bytes());
    hash[31] = 0xb1;
    BlockRef { number, hash }
}

/// A v1 message with a correct canonical encoding and id (encoded here by hand, so
/// the store's check against the protocol crate is also checked against the layout
/// documented in docs/schema.md).
fn message(origin: u32, destination: u32, nonce: u64, at: u64) -> NewMessage {
    let sender = [0x11; 32];
    let recipient = [0x22; 32];
    let deadline = if nonce & 1 == 0 { 0 } else { u64::MAX };
    let body = format!("payload {nonce}").into_bytes();
    let mut canonical = vec![1u8];
    canonical.extend_from_slice(&nonce.to_be_bytes());
    canonical.extend_from_slice(&origin.to_be_bytes());
    canonical.extend_from_slice(&sender);
    canonical.extend_from_slice(&destination.to_be_bytes());
    canonical.extend_from_slice(&recipient);
    canonical.extend_from_slice(&deadline.to_be_bytes());
    canonical.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    canonical.extend_from_slice(&body);
    NewMessage {
        id: MessageId(keccak(&canonical)),
        version: 1,
        nonce,
        origin,
        sender,
        destination,
        recipient,
        deadline,
        body,
        canonical,
        source_block: block(at),
        source_tx_hash: Some(keccak(&nonce.to_le_bytes())),
    }
}

fn observe_key() -> CursorKey {
    CursorKey {
        ledger: SRC,
        destination: Some(DST),
        stage: Stage::Observe,
    }
}

/// A claim of `statuses` towards `DST` from any origin, without turns.
fn claim_of<'a>(
    statuses: &'a [MessageStatus],
    limit: u32,
    worker: &'a str,
    lease: Duration,
) -> Claim<'a> {
    Claim {
        destination: DST,
        origins: &[],
        statuses,
        limit,
        worker,
        lease,
        turn: None,
    }
}

async fn store(pool: PgPool) -> Store {
    let store = Store::new(pool);
    for (id, name, kind, finality) in [
        (SRC, "besu", LedgerKind::Evm, FinalityMode::Qbft),
        (
            DST,
            "parachain",
            LedgerKind::Substrate,
            FinalityMode::Grandpa,
        ),
    ] {
        store
            .upsert_ledger(&Ledger {
                id,
                name: name.into(),
                kind,
                finality,
            })
            .await
            .expect("register ledger");
    }
    store
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Records `n` messages (nonces from `first`) and moves them to `status` along legal
/// transitions.
async fn seed(store: &Store, first: u64, n: u64, at: u64, status: MessageStatus) -> Vec<MessageId> {
    let batch: Vec<NewMessage> = (first..first + n)
        .map(|i| message(SRC, DST, i, at))
        .collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    store
        .record_observed(observe_key(), block(at), &batch, "observer")
        .await
        .expect("observe");
    let path = [
        MessageStatus::Verified,
        MessageStatus::Attested,
        MessageStatus::Submitted,
    ];
    let mut from = MessageStatus::Observed;
    for to in path {
        if from == status {
            break;
        }
        store
            .transition_many(&ids, from, to, &json!({"step": to.as_str()}), "pipeline")
            .await
            .expect("advance");
        from = to;
    }
    assert_eq!(from, status, "seed supports observed..submitted");
    ids
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn observed_batch_commits_with_cursor_and_is_idempotent(pool: PgPool) {
    let store = store(pool.clone()).await;
    assert_eq!(store.load_cursor(observe_key()).await.unwrap(), None);

    let n = 5_000u64;
    let batch: Vec<NewMessage> = (0..n)
        .map(|i| message(SRC, DST, i, 100 + i / 100))
        .collect();
    let started = Instant::now();
    let outcome = store
        .record_observed(observe_key(), block(200), &batch, "observer")
        .await
        .unwrap();
    let elapsed = started.elapsed();
    println!("record_observed: {n} messages in {elapsed:?}");
    assert_eq!(outcome.inserted, 5_000);
    assert_eq!(outcome.already_known, 0);
    assert!(outcome.cursor_advanced);
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 5_000);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lifecycle_log WHERE event = 'observed'"
        )
        .await,
        5_000
    );
    assert_eq!(
        store
            .load_cursor(observe_key())
            .await
            .unwrap()
            .unwrap()
            .block,
        block(200)
    );

    // Stored fields round-trip, including u64 values beyond the bigint range.
    let odd = &batch[351];
    let history = store.message(odd.id).await.unwrap().expect("stored");
    assert_eq!(history.message.deadline, u64::MAX);
    assert_eq!(history.message.canonical, odd.canonical);
    assert_eq!(history.message.source_block, odd.source_block);
    assert_eq!(history.message.source_tx_hash, odd.source_tx_hash);
    assert_eq!(history.message.status, MessageStatus::Observed);
    assert_eq!(history.log.len(), 1);
    assert_eq!(history.log[0].event, LogEvent::Observed);
    assert_eq!(history.log[0].evidence["source_block_number"], json!(103));

    // Replaying the same range changes nothing.
    let again = store
        .record_observed(observe_key(), block(200), &batch[..10], "observer")
        .await;
    let again = again.unwrap();
    assert_eq!(
        (again.inserted, again.already_known, again.cursor_advanced),
        (0, 10, false)
    );

    // The next range adds only the new messages.
    let next: Vec<NewMessage> = (n - 2..n + 3).map(|i| message(SRC, DST, i, 201)).collect();
    let outcome = store
        .record_observed(observe_key(), block(201), &next, "observer")
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.already_known), (3, 2));

    let started = Instant::now();
    let verified = store.verify_log_chain().await.unwrap();
    println!(
        "verify_log_chain: {verified} rows in {:?}",
        started.elapsed()
    );
    assert_eq!(verified, 5_003);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn refused_cursor_rolls_back_the_whole_batch(pool: PgPool) {
    let store = store(pool.clone()).await;
    let first: Vec<NewMessage> = (0..5).map(|i| message(SRC, DST, i, 10)).collect();
    store
        .record_observed(observe_key(), block(10), &first, "observer")
        .await
        .unwrap();

    // Messages are inserted before the cursor is checked: the refusal must undo them.
    let stale: Vec<NewMessage> = (5..50).map(|i| message(SRC, DST, i, 5)).collect();
    let err = store
        .record_observed(observe_key(), block(5), &stale, "observer")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CursorBackwards { .. }), "{err}");
    assert!(!err.is_retryable());

    let mut forked = block(10);
    forked.hash[0] ^= 0xff;
    let err = store
        .record_observed(observe_key(), forked, &stale, "observer")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CursorConflict { .. }), "{err}");

    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 5);
    assert_eq!(count(&pool, "SELECT count(*) FROM lifecycle_log").await, 5);
    assert_eq!(
        store
            .load_cursor(observe_key())
            .await
            .unwrap()
            .unwrap()
            .block,
        block(10)
    );
    assert_eq!(store.verify_log_chain().await.unwrap(), 5);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn failing_cursor_row_rolls_back_messages(pool: PgPool) {
    let store = store(pool.clone()).await;
    // Ledger 42 is not registered: the cursor row violates its foreign key after the
    // messages and their log rows were written in the same transaction.
    let key = CursorKey {
        ledger: 42,
        destination: None,
        stage: Stage::Observe,
    };
    let batch: Vec<NewMessage> = (0..20).map(|i| message(42, DST, i, 3)).collect();
    let err = store
        .record_observed(key, block(3), &batch, "observer")
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().as_deref(), Some("23503"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM lifecycle_log").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM progress_cursors").await,
        0
    );
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn inconsistent_messages_are_refused_before_writing(pool: PgPool) {
    let store = store(pool.clone()).await;
    let mut wrong_id = message(SRC, DST, 1, 5);
    wrong_id.id.0[0] ^= 1;
    let err = store
        .record_observed(observe_key(), block(5), &[wrong_id], "o")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");

    let mut wrong_field = message(SRC, DST, 1, 5);
    wrong_field.nonce = 2;
    let err = store
        .record_observed(observe_key(), block(5), &[wrong_field], "o")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");

    let beyond = message(SRC, DST, 1, 6);
    let err = store
        .record_observed(observe_key(), block(5), &[beyond], "o")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 0);
    assert_eq!(store.load_cursor(observe_key()).await.unwrap(), None);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn concurrent_claimers_never_share_a_message(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 600, 50, MessageStatus::Attested).await;

    let mut tasks = Vec::new();
    for worker in ["worker-a", "worker-b", "worker-c"] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim(&claim_of(
                        &[MessageStatus::Attested],
                        17,
                        worker,
                        Duration::from_secs(60),
                    ))
                    .await
                    .expect("claim");
                if claimed.is_empty() {
                    return mine;
                }
                assert!(claimed
                    .iter()
                    .all(|m| m.claimed_by.as_deref() == Some(worker)));
                mine.extend(claimed.into_iter().map(|m| m.id));
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = HashSet::new();
    let mut per_worker = Vec::new();
    for task in tasks {
        let mine = task.await.expect("claimer task");
        per_worker.push(mine.len());
        for id in mine {
            assert!(all.insert(id), "message {id} claimed twice");
        }
    }
    println!("claims per worker: {per_worker:?}");
    assert_eq!(all, ids.iter().copied().collect::<HashSet<_>>());

    // Leases hold: nothing is ready until one is released or a status changes.
    let none = store
        .claim(&claim_of(
            &[MessageStatus::Attested],
            10,
            "late",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    assert!(none.is_empty());
    let holder = sqlx::query_scalar::<_, String>("SELECT claimed_by FROM messages WHERE id = $1")
        .bind(ids[0].0.to_vec())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(store.release_claims(&ids[..1], &holder).await.unwrap(), 1);
    assert_eq!(
        store.release_claims(&ids[..1], &holder).await.unwrap(),
        0,
        "given back already"
    );
    let again = store
        .claim(&claim_of(
            &[MessageStatus::Attested],
            10,
            "late",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0]]);

    // An expired lease makes the message claimable again.
    let short = seed(&store, 600, 1, 51, MessageStatus::Attested).await;
    let first = store
        .claim(&claim_of(
            &[MessageStatus::Attested],
            10,
            "a",
            Duration::from_millis(1),
        ))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = store
        .claim(&claim_of(
            &[MessageStatus::Attested],
            10,
            "b",
            Duration::from_secs(60),
        ))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|m| m.id).collect::<Vec<_>>(), short);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn illegal_and_stale_transitions_change_nothing(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 3, 5, MessageStatus::Observed).await;
    let log_before = count(&pool, "SELECT count(*) FROM lifecycle_log").await;

    // Skipping steps is illegal.
    let err = store
        .transition(
            ids[0],
            MessageStatus::Observed,
            MessageStatus::Submitted,
            &json!({}),
            "x",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IllegalTransition {
                from: MessageStatus::Observed,
                to: MessageStatus::Submitted
            }
        ),
        "{err}"
    );
    // A legal step from the wrong current state is refused by compare-and-set.
    let err = store
        .transition(
            ids[0],
            MessageStatus::Verified,
            MessageStatus::Attested,
            &json!({}),
            "x",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnexpectedStatus {
                actual: MessageStatus::Observed,
                ..
            }
        ),
        "{err}"
    );
    // A batch with one stale member moves none of them.
    store
        .transition(
            ids[2],
            MessageStatus::Observed,
            MessageStatus::Verified,
            &json!({}),
            "x",
        )
        .await
        .unwrap();
    let log_mid = count(&pool, "SELECT count(*) FROM lifecycle_log").await;
    assert_eq!(log_mid, log_before + 1);
    let err = store
        .transition_many(
            &ids,
            MessageStatus::Observed,
            MessageStatus::Verified,
            &json!({}),
            "x",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnexpectedStatus { id, .. } if id == ids[2]),
        "{err}"
    );
    let unknown = MessageId([0xee; 32]);
    let err = store
        .transition(
            unknown,
            MessageStatus::Observed,
            MessageStatus::Verified,
            &json!({}),
            "x",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM messages ORDER BY nonce")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["observed", "observed", "verified"]);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM lifecycle_log").await,
        log_mid
    );

    // The database refuses an illegal change even from a writer bypassing the store.
    let err = sqlx::query("UPDATE messages SET status = 'submitted' WHERE id = $1")
        .bind(ids[0].0.to_vec())
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("23514")
    );
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn database_transition_table_matches_rust(pool: PgPool) {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT from_status, to_status FROM message_status_transitions")
            .fetch_all(&pool)
            .await
            .unwrap();
    let db: HashSet<(String, String)> = rows.into_iter().collect();
    let rust: HashSet<(String, String)> = TRANSITIONS
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    assert_eq!(db, rust);
}

/// `MessageStatus::PENDING` is the predicate of the partial index of due messages
/// (migration 0004), so a delivery round's claim can use it.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn pending_statuses_are_the_due_index_predicate(pool: PgPool) {
    let predicate: String = sqlx::query_scalar(
        "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'messages_due_idx'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // e.g. (status = ANY (ARRAY['observed'::text, ...])): the quoted names, in order.
    let indexed: Vec<&str> = predicate.split('\'').skip(1).step_by(2).collect();
    let pending: Vec<&str> = MessageStatus::PENDING.iter().map(|s| s.as_str()).collect();
    assert_eq!(indexed, pending, "{predicate}");
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn failures_back_off_then_dead_letter_and_operator_retries(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 1, 5, MessageStatus::Submitted).await;
    let id = ids[0];
    let policy = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(300),
    };
    let outcome = store
        .set_failure(
            id,
            MessageStatus::Submitted,
            "reverted",
            &policy,
            "confirmer",
        )
        .await
        .unwrap();
    let FailureOutcome::Failed {
        attempts: 1,
        next_attempt_at,
    } = outcome
    else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert!(next_attempt_at > chrono::Utc::now() + chrono::Duration::seconds(20));
    // Backing off: not ready yet.
    let ready = store
        .claim(&claim_of(
            &[MessageStatus::Failed],
            10,
            "w",
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
    assert!(ready.is_empty());
    sqlx::query("UPDATE messages SET next_attempt_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    let ready = store
        .claim(&claim_of(
            &[MessageStatus::Failed],
            10,
            "w",
            Duration::from_secs(5),
        ))
        .await
        .unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].last_error.as_deref(), Some("reverted"));

    store
        .transition(
            id,
            MessageStatus::Failed,
            MessageStatus::Attested,
            &json!({}),
            "w",
        )
        .await
        .unwrap();
    let outcome = store
        .set_failure(id, MessageStatus::Attested, "nonce too low", &policy, "w")
        .await
        .unwrap();
    assert_eq!(outcome, FailureOutcome::DeadLettered { attempts: 2 });

    let action = OperatorAction {
        operator: "alice".into(),
        action: OperatorActionKind::Retry,
        reason: "destination gas price spike over".into(),
        message_id: Some(id),
        ledger: None,
        route: Some(Route {
            source: SRC,
            destination: DST,
        }),
        details: json!({"ticket": "OPS-12"}),
    };
    store
        .operator_transition(&action, MessageStatus::DeadLetter, MessageStatus::Attested)
        .await
        .unwrap();
    let history = store.message(id).await.unwrap().unwrap();
    assert_eq!(history.message.status, MessageStatus::Attested);
    let events: Vec<LogEvent> = history.log.iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        [
            LogEvent::Observed,
            LogEvent::Verified,
            LogEvent::Attested,
            LogEvent::Submitted,
            LogEvent::Failed,
            LogEvent::Attested,
            LogEvent::DeadLetter,
            LogEvent::Operator,
            LogEvent::Attested,
        ]
    );
    assert_eq!(history.log[7].actor, "alice");
    assert_eq!(history.log[8].evidence["from_status"], json!("dead_letter"));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM operator_actions").await,
        1
    );
    assert!(history.log.windows(2).all(|w| w[0].seq < w[1].seq));
    store.verify_log_chain().await.unwrap();
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn checkpoints_attestations_deliveries_and_views(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 4, 20, MessageStatus::Submitted).await;
    let checkpoint = NewCheckpoint {
        digest: [0xcd; 32],
        origin: SRC,
        outbox: [0x0b; 32],
        root: [0x77; 32],
        count: 4,
        block: block(21),
    };
    let proof = json!({"finality": "qbft", "seals": 3});
    assert!(store
        .record_checkpoint(&checkpoint, &proof, "verifier")
        .await
        .unwrap());
    assert!(!store
        .record_checkpoint(&checkpoint, &proof, "verifier")
        .await
        .unwrap());
    let stored = store.checkpoint(checkpoint.digest).await.unwrap().unwrap();
    assert_eq!(stored.checkpoint, checkpoint);
    assert_eq!(stored.evidence, proof);

    let accepted = NewAttestation {
        checkpoint_digest: checkpoint.digest,
        signer: [0xa1; 20],
        member: Some("bank-a".into()),
        signature: [0x5a; 65],
        verdict: Ok(()),
    };
    let refused = NewAttestation {
        signer: [0xa2; 20],
        member: None,
        verdict: Err("signer not in the member set".into()),
        ..accepted.clone()
    };
    assert!(store
        .record_attestation(&accepted, "attester")
        .await
        .unwrap());
    assert!(store
        .record_attestation(&refused, "attester")
        .await
        .unwrap());
    assert!(!store
        .record_attestation(&accepted, "attester")
        .await
        .unwrap());
    let recorded = store.attestations(checkpoint.digest).await.unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[1].attestation, refused);

    for (i, id) in ids.iter().take(3).enumerate() {
        let delivery = NewDelivery {
            message_id: *id,
            destination: DST,
            tx_hash: [0xdd; 32],
            block_number: 900,
            block_hash: Some([0xde; 32]),
            gas_used: Some(81_000),
            checkpoint_digest: Some(checkpoint.digest),
            batch_index: u32::try_from(i).unwrap(),
            batch_size: 3,
        };
        store
            .record_deliveries(
                std::slice::from_ref(&delivery),
                MessageStatus::Submitted,
                "confirmer",
            )
            .await
            .unwrap();
    }
    // Wrong destination is refused and leaves the message as it was.
    let wrong = NewDelivery {
        message_id: ids[3],
        destination: SRC,
        tx_hash: [0xdd; 32],
        block_number: 900,
        block_hash: None,
        gas_used: None,
        checkpoint_digest: None,
        batch_index: 0,
        batch_size: 1,
    };
    let err = store
        .record_deliveries(std::slice::from_ref(&wrong), MessageStatus::Submitted, "c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");

    let route = Route {
        source: SRC,
        destination: DST,
    };
    let delivered = store
        .list_messages(&MessageFilter {
            route: Some(route),
            statuses: vec![MessageStatus::Delivered],
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 3);
    let submitted = store
        .list_messages(&MessageFilter {
            statuses: vec![MessageStatus::Submitted],
            observed_to: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        submitted.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[3]]
    );

    let (status, latest): (String, String) =
        sqlx::query_as("SELECT status, latest_event FROM message_status_v WHERE id_hex = $1")
            .bind(hex::encode(ids[0].0))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), latest.as_str()),
        ("delivered", "delivered")
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM route_deliveries_v \
             WHERE origin = 7 AND destination = 9 AND delivered_at >= now() - interval '1 day'"
        )
        .await,
        3
    );
    let (total, delivered_n, submitted_n, has_p95): (i64, i64, i64, bool) = sqlx::query_as(
        "SELECT total, delivered, submitted, latency_p95_seconds IS NOT NULL \
         FROM route_stats_v WHERE origin = 7 AND destination = 9",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((total, delivered_n, submitted_n, has_p95), (4, 3, 1, true));

    // 4 observed + 3x4 transitions + checkpoint + 2 attestations + 3 deliveries.
    assert_eq!(store.verify_log_chain().await.unwrap(), 4 + 12 + 1 + 2 + 3);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn concurrent_appenders_never_fork_the_chain(pool: PgPool) {
    let store = store(pool.clone()).await;
    let mut tasks = Vec::new();
    for t in 0u8..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u8..25 {
                let attestation = NewAttestation {
                    checkpoint_digest: [t; 32],
                    signer: [i; 20],
                    member: None,
                    signature: [t ^ i; 65],
                    verdict: Ok(()),
                };
                store
                    .record_attestation(&attestation, "peer")
                    .await
                    .expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("appender task");
    }
    assert_eq!(store.verify_log_chain().await.unwrap(), 100);
    assert_eq!(
        count(&pool, "SELECT max(seq) FROM lifecycle_log").await,
        100
    );
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn log_refuses_update_delete_and_truncate(pool: PgPool) {
    let store = store(pool.clone()).await;
    seed(&store, 0, 2, 5, MessageStatus::Observed).await;
    for sql in [
        "UPDATE lifecycle_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM lifecycle_log WHERE seq = 2",
        "TRUNCATE lifecycle_log",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        let db = err.as_database_error().expect("database error");
        assert_eq!(db.code().as_deref(), Some("42501"), "{sql}: {db}");
        assert!(db.message().contains("append-only"), "{sql}: {db}");
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM lifecycle_log").await, 2);
    // Writers cannot choose seq or hashes: the trigger assigns them.
    sqlx::query(
        "INSERT INTO lifecycle_log (seq, event, evidence, actor, created_at, prev_hash, row_hash) \
         VALUES (99, 'operator', '{}', 'x', now(), '\\x00'::bytea, '\\x00'::bytea)",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(count(&pool, "SELECT max(seq) FROM lifecycle_log").await, 3);
    assert_eq!(store.verify_log_chain().await.unwrap(), 3);
}

/// The audit query published in docs/schema.md, run verbatim.
fn doc_audit_query() -> String {
    let doc = include_str!("../../docs/schema.md");
    let start = doc
        .find("<!-- chain-audit-query -->")
        .expect("marker in docs/schema.md");
    let rest = &doc[start..];
    let open = rest.find("```sql\n").expect("sql block") + "```sql\n".len();
    let close = rest[open..].find("```").expect("end of sql block");
    rest[open..open + close].to_owned()
}

async fn doc_audit(pool: &PgPool) -> Vec<(i64, String)> {
    sqlx::query_as(&doc_audit_query())
        .fetch_all(pool)
        .await
        .expect("doc audit query")
}

async fn as_superuser_without_triggers(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn verify_detects_an_edited_row(pool: PgPool) {
    let store = store(pool.clone()).await;
    seed(&store, 0, 10, 5, MessageStatus::Verified).await;
    assert_eq!(store.verify_log_chain().await.unwrap(), 20);
    assert!(
        doc_audit(&pool).await.is_empty(),
        "intact chain passes the documented query"
    );

    // The SQL function, the documented query and the Rust verifier agree on every row.
    let mismatched = count(
        &pool,
        "SELECT count(*) FROM lifecycle_log WHERE row_hash <> sha256(lifecycle_log_row_bytes( \
             seq, prev_hash, message_id, event, actor, created_at, evidence))",
    )
    .await;
    assert_eq!(mismatched, 0);

    as_superuser_without_triggers(
        &pool,
        "UPDATE lifecycle_log SET evidence = jsonb_set(evidence, '{source_block_number}', '4') \
         WHERE seq = 7",
    )
    .await;
    match store.verify_log_chain().await {
        Err(StoreError::LogChainBroken {
            seq: 7,
            kind: ChainBreak::HashMismatch { .. },
        }) => {}
        other => panic!("expected a hash mismatch at seq 7, got {other:?}"),
    }
    assert_eq!(doc_audit(&pool).await.first().map(|(seq, _)| *seq), Some(7));

    // Re-hashing the edited row moves the break to the next row's link.
    as_superuser_without_triggers(
        &pool,
        "UPDATE lifecycle_log SET row_hash = sha256(lifecycle_log_row_bytes( \
             seq, prev_hash, message_id, event, actor, created_at, evidence)) WHERE seq = 7",
    )
    .await;
    match store.verify_log_chain().await {
        Err(StoreError::LogChainBroken {
            seq: 8,
            kind: ChainBreak::PrevHashMismatch { .. },
        }) => {}
        other => panic!("expected a prev_hash mismatch at seq 8, got {other:?}"),
    }
    assert_eq!(doc_audit(&pool).await.first().map(|(seq, _)| *seq), Some(8));
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn verify_detects_a_deleted_row(pool: PgPool) {
    let store = store(pool.clone()).await;
    seed(&store, 0, 6, 5, MessageStatus::Observed).await;
    as_superuser_without_triggers(&pool, "DELETE FROM lifecycle_log WHERE seq = 4").await;
    match store.verify_log_chain().await {
        Err(StoreError::LogChainBroken {
            seq: 4,
            kind:
                ChainBreak::Gap {
                    expected: 4,
                    found: 5,
                },
        }) => {}
        other => panic!("expected a gap at seq 4, got {other:?}"),
    }
    let problems = doc_audit(&pool).await;
    assert_eq!(problems.first().map(|(seq, _)| *seq), Some(5));
    assert!(problems[0].1.contains("missing"), "{problems:?}");

    as_superuser_without_triggers(&pool, "DELETE FROM lifecycle_log WHERE seq = 1").await;
    match store.verify_log_chain().await {
        Err(StoreError::LogChainBroken {
            seq: 1,
            kind: ChainBreak::Gap { .. },
        }) => {}
        other => panic!("expected a gap at seq 1, got {other:?}"),
    }
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn auditor_role_reads_but_never_writes(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 2, 5, MessageStatus::Verified).await;
    let id = ids[0].0.to_vec();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE isthmus_auditor")
        .execute(&mut *tx)
        .await
        .unwrap();
    for view in [
        "message_status_v",
        "route_deliveries_v",
        "route_stats_v",
        "lifecycle_log",
        "messages",
    ] {
        sqlx::query(&format!("SELECT * FROM {view}"))
            .fetch_all(&mut *tx)
            .await
            .expect(view);
    }
    tx.commit().await.unwrap();

    let writes = [
        "INSERT INTO lifecycle_log (event, evidence, actor) VALUES ('operator', '{}', 'auditor')",
        "UPDATE messages SET status = 'attested' WHERE id = $1",
        "DELETE FROM messages WHERE id = $1",
        "INSERT INTO ledgers (id, name, kind, finality) VALUES (1, 'x', 'evm', 'clique')",
        "UPDATE progress_cursors SET block_number = 0",
        "DELETE FROM operator_actions",
    ];
    for sql in writes {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE isthmus_auditor")
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut query = sqlx::query(sql);
        if sql.contains("$1") {
            query = query.bind(id.clone());
        }
        let err = query.execute(&mut *tx).await.unwrap_err();
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{sql} must be refused: {err}"
        );
        tx.rollback().await.unwrap();
    }
    assert_eq!(store.verify_log_chain().await.unwrap(), 4);
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM messages")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| s == "verified"));
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn ledgers_and_ledger_wide_cursors(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ledgers = store.ledgers().await.unwrap();
    assert_eq!(ledgers.len(), 2);
    assert_eq!(ledgers[1].finality, FinalityMode::Grandpa);

    let wide = CursorKey {
        ledger: DST,
        destination: None,
        stage: Stage::Confirm,
    };
    store
        .record_observed(wide, block(1), &[], "confirmer")
        .await
        .unwrap();
    store
        .record_observed(wide, block(2), &[], "confirmer")
        .await
        .unwrap();
    assert_eq!(
        store.load_cursor(wide).await.unwrap().unwrap().block,
        block(2)
    );
    // Distinct from a per-route cursor of the same ledger and stage.
    let routed = CursorKey {
        ledger: DST,
        destination: Some(SRC),
        stage: Stage::Confirm,
    };
    assert_eq!(store.load_cursor(routed).await.unwrap(), None);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM progress_cursors").await,
        1
    );
}

/// The outbox leaves come back in numeric nonce order (10 after 9, not after 1), and
/// a hole in the nonces is refused rather than producing a wrong tree.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn outbox_leaves_are_in_numeric_nonce_order_and_holes_are_refused(pool: PgPool) {
    let store = store(pool).await;
    let ids = seed(&store, 0, 25, 10, MessageStatus::Observed).await;
    let leaves = store
        .outbox_leaves(SRC, 0, 25)
        .await
        .expect("all 25 observed");
    assert_eq!(leaves, ids.iter().map(|id| id.0).collect::<Vec<_>>());
    assert_eq!(
        store.outbox_leaves(SRC, 0, 12).await.expect("prefix").len(),
        12
    );
    // An Outbox that continues at nonce 10: its leaves start there.
    assert_eq!(
        store.outbox_leaves(SRC, 10, 25).await.expect("from 10"),
        ids[10..].iter().map(|id| id.0).collect::<Vec<_>>()
    );
    assert!(store
        .outbox_leaves(SRC, 25, 25)
        .await
        .expect("none")
        .is_empty());
    // Nonce 26 is skipped: 25 and 27 exist, so a tree of 28 has a hole.
    store
        .record_observed(
            observe_key(),
            block(11),
            &[message(SRC, DST, 25, 11), message(SRC, DST, 27, 11)],
            "observer",
        )
        .await
        .expect("observe");
    let err = store
        .outbox_leaves(SRC, 0, 28)
        .await
        .expect_err("hole at 26");
    assert!(err.to_string().contains("nonce 26"), "{err}");
    let err = store
        .outbox_leaves(SRC, 20, 28)
        .await
        .expect_err("hole at 26");
    assert!(err.to_string().contains("nonce 26"), "{err}");
    // Nonces past the last observed one are missing too.
    let err = store
        .outbox_leaves(SRC, 27, 30)
        .await
        .expect_err("28, 29 unseen");
    assert!(err.to_string().contains("1 of the 3"), "{err}");
}

/// The highest message of an origin at or above a nonce: what a relayer asks its
/// Outbox about at start.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn the_highest_message_from_a_nonce_is_found_by_numeric_order(pool: PgPool) {
    let store = store(pool).await;
    assert_eq!(store.highest_message_from(SRC, 0).await.unwrap(), None);
    let ids = seed(&store, 0, 12, 10, MessageStatus::Observed).await;
    assert_eq!(
        store.highest_message_from(SRC, 0).await.unwrap(),
        Some((11, ids[11]))
    );
    assert_eq!(
        store.highest_message_from(SRC, 11).await.unwrap(),
        Some((11, ids[11]))
    );
    assert_eq!(store.highest_message_from(SRC, 12).await.unwrap(), None);
    assert_eq!(store.highest_message_from(DST, 0).await.unwrap(), None);
}

/// A claim restricted to some origins never leases another origin's messages, even
/// when those are older: a relayer only takes work of routes it serves.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn claims_can_be_restricted_to_origins(pool: PgPool) {
    let store = store(pool).await;
    let other_origin = SRC + 100;
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| message(other_origin, DST, i, 10))
        .chain((0..3).map(|i| message(SRC, DST, i, 10)))
        .collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    let lease = std::time::Duration::from_secs(60);
    let claimed = store
        .claim(&Claim {
            origins: &[SRC],
            ..claim_of(&[MessageStatus::Observed], 4, "worker", lease)
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|m| m.origin == SRC));
    // Unrestricted, the other origin's messages are there to take.
    let rest = store
        .claim(&claim_of(&[MessageStatus::Observed], 10, "worker-2", lease))
        .await
        .expect("claim");
    assert_eq!(rest.len(), 5);
    assert!(rest.iter().all(|m| m.origin == other_origin));
}

/// A lease survives the moves through the in-flight statuses: a replica polling for
/// work while the holder verifies, attests and submits finds nothing to take. Leaving
/// the in-flight statuses (a final state or `failed`) clears it.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn leases_hold_through_in_flight_statuses(pool: PgPool) {
    let store = store(pool).await;
    let batch: Vec<NewMessage> = (0..2).map(|i| message(SRC, DST, i, 10)).collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    let lease = std::time::Duration::from_secs(60);
    let in_flight = MessageStatus::PENDING;
    let claimed = store
        .claim(&claim_of(in_flight, 10, "replica-a", lease))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 2);
    for (from, to) in [
        (MessageStatus::Observed, MessageStatus::Verified),
        (MessageStatus::Verified, MessageStatus::Attested),
        (MessageStatus::Attested, MessageStatus::Submitted),
    ] {
        store
            .transition_many(&ids, from, to, &json!({}), "replica-a")
            .await
            .expect("transition");
        let taken = store
            .claim(&claim_of(in_flight, 10, "replica-b", lease))
            .await
            .expect("claim");
        assert!(
            taken.is_empty(),
            "replica-b took {to:?} messages of replica-a"
        );
    }
    // One fails (back-off, lease cleared); the other is delivered elsewhere and
    // recorded (lease cleared): once the back-off passes, the failed one is free.
    let policy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_secs(30),
        max_delay: Duration::from_secs(60),
    };
    store
        .set_failure(
            ids[0],
            MessageStatus::Submitted,
            "reverted",
            &policy,
            "replica-a",
        )
        .await
        .expect("failure");
    sqlx::query("UPDATE messages SET next_attempt_at = now() - interval '1 second'")
        .execute(store.pool())
        .await
        .unwrap();
    let taken = store
        .claim(&claim_of(in_flight, 10, "replica-b", lease))
        .await
        .expect("claim");
    assert_eq!(taken.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0]]);
    let holder: Option<String> =
        sqlx::query_scalar("SELECT claimed_by FROM messages WHERE id = $1")
            .bind(ids[1].0.to_vec())
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(holder.as_deref(), Some("replica-a"));
}

/// Leases of a process that has no database session left are freed at once; leases
/// of a live process (a session named after its worker id) and of other members stay.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn orphaned_leases_are_freed_and_live_ones_kept(pool: PgPool) {
    let store = store(pool.clone()).await;
    let batch: Vec<NewMessage> = (0..3).map(|i| message(SRC, DST, i, 10)).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    let lease = Duration::from_secs(300);
    let statuses = [MessageStatus::Observed];
    for worker in ["bank-0/live", "bank-0/dead", "bank-1/dead"] {
        let claimed = store
            .claim(&claim_of(&statuses, 1, worker, lease))
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
    }
    // The live process holds a session named after it.
    let mut live = pool.acquire().await.unwrap();
    sqlx::query("SET application_name = 'bank-0/live'")
        .execute(&mut *live)
        .await
        .unwrap();
    assert_eq!(store.release_orphaned_leases("bank-0/").await.unwrap(), 1);
    let holders: Vec<String> = sqlx::query_scalar(
        "SELECT claimed_by FROM messages WHERE claimed_by IS NOT NULL ORDER BY claimed_by",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(holders, vec!["bank-0/live", "bank-1/dead"]);
    // Once the live one's session is gone, its lease is freed too.
    live.close().await.unwrap();
    // The server ends the backend asynchronously: allow it a moment.
    let mut freed = 0;
    for _ in 0..50 {
        freed += store.release_orphaned_leases("bank-0/").await.unwrap();
        if freed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(freed, 1);
}

/// Messages held back for another member's submission turn are skipped by claims
/// until the delay passes; a status change clears the hold.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn held_back_messages_wait_for_their_takeover(pool: PgPool) {
    let store = store(pool).await;
    let batch: Vec<NewMessage> = (0..3).map(|i| message(SRC, DST, i, 10)).collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    let held = store
        .defer_observed(&ids[1..], Duration::from_millis(300))
        .await
        .expect("defer");
    assert_eq!(held, 2);
    let lease = Duration::from_secs(60);
    let now = store
        .claim(&claim_of(&[MessageStatus::Observed], 10, "w", lease))
        .await
        .expect("claim");
    assert_eq!(now.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[0]]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = store
        .claim(&claim_of(&[MessageStatus::Observed], 10, "w2", lease))
        .await
        .expect("claim");
    assert_eq!(later.len(), 2);
    // A moved message is not held back again.
    store
        .transition(
            ids[0],
            MessageStatus::Observed,
            MessageStatus::Verified,
            &json!({}),
            "w",
        )
        .await
        .expect("transition");
    assert_eq!(
        store.defer_observed(&ids[..1], lease).await.expect("defer"),
        0
    );
}

/// Claims take messages never scheduled before retries and held-back ones, so a
/// member's own submission turns are not crowded out by messages it only watches.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn claims_take_unscheduled_messages_first(pool: PgPool) {
    let store = store(pool).await;
    let batch: Vec<NewMessage> = (0..3).map(|i| message(SRC, DST, i, 10)).collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    // The oldest is held back (and its hold already over): it comes last.
    store
        .defer_observed(&ids[..1], Duration::from_millis(1))
        .await
        .expect("defer");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let lease = Duration::from_secs(60);
    let mut order = Vec::new();
    for worker in ["w1", "w2", "w3"] {
        let claimed = store
            .claim(&claim_of(&[MessageStatus::Observed], 1, worker, lease))
            .await
            .expect("claim");
        order.extend(claimed.into_iter().map(|m| m.id));
    }
    assert_eq!(order, vec![ids[1], ids[2], ids[0]]);
}

/// A member that submits in turns claims its own turns before the others' messages,
/// which it would only hold back.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn claims_take_a_members_own_turns_first(pool: PgPool) {
    let store = store(pool).await;
    let batch: Vec<NewMessage> = (0..6).map(|i| message(SRC, DST, i, 10)).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    let lease = Duration::from_secs(60);
    let turn = Some(isthmus_schema::Turn {
        members: 3,
        index: 1,
    });
    let claim = |worker: &'static str, limit: u32| {
        let store = &store;
        async move {
            store
                .claim(&Claim {
                    turn,
                    ..claim_of(&[MessageStatus::Observed], limit, worker, lease)
                })
                .await
                .expect("claim")
                .into_iter()
                .map(|m| m.nonce)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(claim("w1", 2).await, vec![1, 4]);
    assert_eq!(claim("w2", 10).await, vec![0, 2, 3, 5]);
}

/// The deliveries of one transaction are recorded together: one bad entry leaves
/// every message of the batch as it was.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_batchs_deliveries_commit_together(pool: PgPool) {
    let store = store(pool).await;
    let batch: Vec<NewMessage> = (0..3).map(|i| message(SRC, DST, i, 10)).collect();
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    store
        .record_observed(observe_key(), block(10), &batch, "observer")
        .await
        .expect("observe");
    for (from, to) in [
        (MessageStatus::Observed, MessageStatus::Verified),
        (MessageStatus::Verified, MessageStatus::Attested),
        (MessageStatus::Attested, MessageStatus::Submitted),
    ] {
        store
            .transition_many(&ids, from, to, &json!({}), "w")
            .await
            .expect("transition");
    }
    let deliveries = |last_destination: u32| -> Vec<NewDelivery> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| NewDelivery {
                message_id: *id,
                destination: if i == 2 { last_destination } else { DST },
                tx_hash: [0xdd; 32],
                block_number: 900,
                block_hash: Some([0xde; 32]),
                gas_used: Some(180_000),
                checkpoint_digest: None,
                batch_index: u32::try_from(i).unwrap(),
                batch_size: 3,
            })
            .collect()
    };
    let err = store
        .record_deliveries(&deliveries(SRC), MessageStatus::Submitted, "c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput(_)), "{err}");
    for id in &ids {
        let history = store.message(*id).await.unwrap().unwrap();
        assert_eq!(history.message.status, MessageStatus::Submitted);
    }
    store
        .record_deliveries(&deliveries(DST), MessageStatus::Submitted, "c")
        .await
        .expect("record");
    for id in &ids {
        let history = store.message(*id).await.unwrap().unwrap();
        assert_eq!(history.message.status, MessageStatus::Delivered);
    }
    assert_eq!(store.verify_log_chain().await.unwrap(), 3 * 5);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn rejected_entries_are_recorded_with_their_range_once(pool: PgPool) {
    let store = store(pool.clone()).await;
    let rejected = RejectedEntry {
        block: block(41),
        tx_hash: Some([0x7e; 32]),
        index: 3,
        reason: "not a v1 message: truncated".into(),
        raw: vec![0xde, 0xad],
    };
    // Beyond the cursor: refused before anything is written.
    let beyond = RejectedEntry {
        block: block(43),
        ..rejected.clone()
    };
    let refused = store
        .record_observed_with_rejected(observe_key(), block(42), &[], &[beyond], "observer")
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(store.load_cursor(observe_key()).await.unwrap(), None);

    let batch = [message(SRC, DST, 0, 41)];
    let outcome = store
        .record_observed_with_rejected(
            observe_key(),
            block(42),
            &batch,
            std::slice::from_ref(&rejected),
            "observer",
        )
        .await
        .unwrap();
    assert_eq!((outcome.inserted, outcome.rejected), (1, 1));
    let rows: Vec<(Option<Vec<u8>>, serde_json::Value)> =
        sqlx::query_as("SELECT message_id, evidence FROM lifecycle_log WHERE event = 'rejected'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (message_id, evidence) = &rows[0];
    assert_eq!(*message_id, None);
    assert_eq!(evidence["reason"], json!("not a v1 message: truncated"));
    assert_eq!(evidence["source_block_number"], json!(41));
    assert_eq!(evidence["source_tx_hash"], json!(hex::encode([0x7e; 32])));
    assert_eq!(evidence["index"], json!(3));
    assert_eq!(evidence["raw"], json!("dead"));
    assert_eq!(evidence["ledger"], json!(SRC));

    // The same range again (a restart before the next range): no second row.
    let again = store
        .record_observed_with_rejected(
            observe_key(),
            block(42),
            &batch,
            std::slice::from_ref(&rejected),
            "observer",
        )
        .await
        .unwrap();
    assert_eq!((again.cursor_advanced, again.rejected), (false, 0));
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lifecycle_log WHERE event = 'rejected'"
        )
        .await,
        1
    );
    // The rejection is part of the hash chain like every other row.
    assert_eq!(store.verify_log_chain().await.unwrap(), 2);
}

/// A relayer that saw messages delivered on the destination claims them by id to
/// record it: held-back ones too, but never one a delivery lane holds or one in a
/// status it did not ask for; the leases go back in one statement.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn messages_are_claimed_and_released_by_id(pool: PgPool) {
    let store = store(pool).await;
    let observed = seed(&store, 0, 4, 10, MessageStatus::Observed).await;
    let submitted = seed(&store, 4, 1, 11, MessageStatus::Submitted).await;
    let lease = Duration::from_secs(60);
    // Held back for another member's turn: claims by id ignore that.
    store
        .defer_observed(&observed[..2], lease)
        .await
        .expect("defer");
    // A delivery lane holds one.
    let lane = store
        .claim(&claim_of(&[MessageStatus::Observed], 1, "lane", lease))
        .await
        .expect("lane claim");
    assert_eq!(lane.len(), 1);
    assert_eq!(lane[0].id, observed[2]);

    let mut wanted = observed.clone();
    wanted.extend(&submitted);
    let got = store
        .claim_ids(&wanted, &[MessageStatus::Observed], "watcher", lease)
        .await
        .expect("claim by id");
    let got: HashSet<MessageId> = got.iter().map(|m| m.id).collect();
    assert_eq!(
        got,
        HashSet::from([observed[0], observed[1], observed[3]]),
        "not the lane's message, not the submitted one"
    );
    // Claimed: nobody else gets them until they are released.
    let again = store
        .claim_ids(&wanted, &[MessageStatus::Observed], "other", lease)
        .await
        .expect("claim by id");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(
        store
            .release_claims(&wanted, "watcher")
            .await
            .expect("release"),
        3,
        "only the watcher's leases"
    );
    let after = store
        .claim_ids(&wanted, &[MessageStatus::Observed], "other", lease)
        .await
        .expect("claim by id");
    assert_eq!(after.len(), 3);
    assert!(store
        .claim_ids(&[], &[MessageStatus::Observed], "other", lease)
        .await
        .expect("empty")
        .is_empty());
    assert!(matches!(
        store
            .claim_ids(&wanted, &[MessageStatus::Observed], "", lease)
            .await,
        Err(StoreError::InvalidInput(_))
    ));
}

/// A message another member delivered before this relayer verified it goes from
/// `observed` (or `verified`) straight to `delivered`, with no verification or
/// attestation in its history that this relayer never made.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_delivery_seen_elsewhere_skips_the_unmade_steps(pool: PgPool) {
    let store = store(pool).await;
    let observed = seed(&store, 0, 1, 10, MessageStatus::Observed).await;
    let verified = seed(&store, 1, 1, 11, MessageStatus::Verified).await;
    for (id, from) in [
        (observed[0], MessageStatus::Observed),
        (verified[0], MessageStatus::Verified),
    ] {
        store
            .record_deliveries(
                &[NewDelivery {
                    message_id: id,
                    destination: DST,
                    tx_hash: [0xdd; 32],
                    block_number: 20,
                    block_hash: Some([0xbb; 32]),
                    gas_used: None,
                    checkpoint_digest: None,
                    batch_index: 0,
                    batch_size: 1,
                }],
                from,
                "watcher",
            )
            .await
            .expect("delivered elsewhere");
    }
    let history = store.message(observed[0]).await.unwrap().expect("stored");
    assert_eq!(history.message.status, MessageStatus::Delivered);
    assert_eq!(
        history.log.iter().map(|e| e.event).collect::<Vec<_>>(),
        vec![LogEvent::Observed, LogEvent::Delivered]
    );
    assert_eq!(history.log[1].evidence["from_status"], json!("observed"));
    assert_eq!(
        store
            .message(verified[0])
            .await
            .unwrap()
            .expect("stored")
            .message
            .status,
        MessageStatus::Delivered
    );
    assert!(store.verify_log_chain().await.unwrap() >= 5);
}

/// Whatever the auditor role can hold cannot stop the relayer's history writes: an
/// auditor session holds the log writers' former advisory lock, a share lock on
/// every table it reads and an open transaction over them, and tries the writers'
/// row lock and stronger table locks (refused); meanwhile the relayer records a
/// range and moves a message, and the chain stays whole.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn the_auditor_role_cannot_stall_the_relayers_writes(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 2, 5, MessageStatus::Observed).await;

    let mut auditor = pool.acquire().await.unwrap();
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *auditor)
        .await
        .unwrap();
    sqlx::query("SET LOCAL ROLE isthmus_auditor")
        .execute(&mut *auditor)
        .await
        .unwrap();
    // What an auditor can take: any advisory lock (the writers used one before
    // migration 0005), share locks by reading, an open snapshot.
    sqlx::query("SELECT pg_advisory_lock(7350213370001)")
        .execute(&mut *auditor)
        .await
        .unwrap();
    sqlx::query("LOCK TABLE lifecycle_log, messages, progress_cursors IN ACCESS SHARE MODE")
        .execute(&mut *auditor)
        .await
        .unwrap();
    sqlx::query("SELECT count(*) FROM lifecycle_log")
        .execute(&mut *auditor)
        .await
        .unwrap();
    // What it cannot: the writers' row lock, row locks on what it reads, or table
    // locks that conflict with writers. Each is refused, in a savepoint.
    for sql in [
        "SELECT 1 FROM lifecycle_log_writer FOR UPDATE",
        "SELECT 1 FROM lifecycle_log_writer",
        "SELECT 1 FROM messages FOR SHARE",
        "SELECT 1 FROM lifecycle_log FOR KEY SHARE",
        "LOCK TABLE lifecycle_log IN SHARE MODE",
        "LOCK TABLE messages IN EXCLUSIVE MODE",
    ] {
        sqlx::query("SAVEPOINT probe")
            .execute(&mut *auditor)
            .await
            .unwrap();
        let err = sqlx::query(sql).execute(&mut *auditor).await.unwrap_err();
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{sql} must be refused to the auditor: {err}"
        );
        sqlx::query("ROLLBACK TO SAVEPOINT probe")
            .execute(&mut *auditor)
            .await
            .unwrap();
    }

    // The relayer writes while all of that is held. A write that waited on the
    // auditor would never finish; the bound only turns a hang into a failure.
    let writes = async {
        seed(&store, 2, 3, 6, MessageStatus::Observed).await;
        store
            .transition(
                ids[0],
                MessageStatus::Observed,
                MessageStatus::Verified,
                &json!({"note": "written while an auditor held everything it can"}),
                "relayer",
            )
            .await
            .unwrap();
    };
    tokio::time::timeout(Duration::from_secs(60), writes)
        .await
        .expect("the relayer's writes did not wait on the auditor");

    sqlx::query("ROLLBACK")
        .execute(&mut *auditor)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *auditor)
        .await
        .unwrap();
    // 2 + 3 observed rows and one transition, in one unbroken chain.
    assert_eq!(store.verify_log_chain().await.unwrap(), 6);
}

/// The gauges' reads: counts by route and status, and the oldest pending message's
/// age per route (a delivered or dead-lettered message is not pending).
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn gauges_count_by_status_and_age_the_oldest_pending(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 3, 5, MessageStatus::Observed).await;
    store
        .transition(
            ids[0],
            MessageStatus::Observed,
            MessageStatus::Rejected,
            &json!({"reason": "test"}),
            "relayer",
        )
        .await
        .unwrap();
    let counts = store.message_counts().await.unwrap();
    let route = Route {
        source: SRC,
        destination: DST,
    };
    let count = |status| {
        counts
            .iter()
            .find(|c| c.route == route && c.status == status)
            .map_or(0, |c| c.count)
    };
    assert_eq!(count(MessageStatus::Observed), 2);
    assert_eq!(count(MessageStatus::Rejected), 1);

    // Backdate the observation of one pending message: the oldest is that one.
    sqlx::query("UPDATE messages SET observed_at = now() - interval '90 seconds' WHERE id = $1")
        .bind(ids[2].0.to_vec())
        .execute(&pool)
        .await
        .unwrap();
    let oldest = store.oldest_pending().await.unwrap();
    assert_eq!(oldest.len(), 1);
    assert_eq!(oldest[0].route, route);
    assert!((89.0..200.0).contains(&oldest[0].age_seconds), "{oldest:?}");

    // No pending message left on the route: no age.
    for id in &ids[1..] {
        store
            .transition(
                *id,
                MessageStatus::Observed,
                MessageStatus::Rejected,
                &json!({"reason": "test"}),
                "relayer",
            )
            .await
            .unwrap();
    }
    assert!(store.oldest_pending().await.unwrap().is_empty());
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn a_live_workers_stray_leases_are_freed_and_those_in_use_kept(pool: PgPool) {
    let store = store(pool.clone()).await;
    let ids = seed(&store, 0, 4, 10, MessageStatus::Attested).await;
    let lease = Duration::from_secs(300);
    let claimed = store
        .claim(&claim_of(&[MessageStatus::Attested], 4, "bank-a/7", lease))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    // Just claimed: within the grace, nothing is stray.
    let grace = Duration::from_secs(30);
    assert_eq!(
        store
            .release_stray_leases("bank-a/7", &ids[..1], lease, grace)
            .await
            .unwrap(),
        0
    );
    // Claimed 40 s ago (the lease has 260 s left): ids[0] is in use, the rest stray.
    sqlx::query("UPDATE messages SET claimed_until = now() + interval '260 seconds'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        store
            .release_stray_leases("bank-a/7", &ids[..1], lease, grace)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .release_stray_leases("bank-a/7", &ids[..1], lease, grace)
            .await
            .unwrap(),
        0,
        "freed once"
    );
    let holders: Vec<Option<String>> =
        sqlx::query_scalar("SELECT claimed_by FROM messages ORDER BY nonce")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(holders, vec![Some("bank-a/7".to_owned()), None, None, None]);
    // Another worker's leases are never touched.
    assert_eq!(
        store
            .release_stray_leases("bank-a/8", &[], lease, grace)
            .await
            .unwrap(),
        0
    );
}

fn light_client_commit(head: u64, from: u64, keep: u64) -> LightClientCommit {
    let validators = vec![[0xa1; 20], [0xa2; 20], [0xa3; 20]];
    LightClientCommit {
        state: LightClientRecord {
            ledger: SRC,
            finality: FinalityMode::Qbft,
            checkpoint: block(0),
            head: block(head),
            validators: validators.clone(),
            state: json!({"version": 1, "head": head}),
        },
        headers: (from..=head)
            .map(|n| VerifiedHeaderRecord {
                number: n,
                hash: block(n).hash,
                parent_hash: block(n.saturating_sub(1)).hash,
                state_root: [0x5e; 32],
                finality: FinalityMode::Qbft,
                sealed_by: validators[..2].to_vec(),
                validators: validators.clone(),
                header_rlp: vec![0xc0, n as u8],
                finality_proof: None,
            })
            .collect(),
        keep,
    }
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn light_client_state_commits_with_the_cursor_and_keeps_a_window(pool: PgPool) {
    let store = store(pool.clone()).await;
    assert_eq!(store.light_client_state(SRC).await.unwrap(), None);
    let batch = vec![message(SRC, DST, 0, 5)];
    let first = light_client_commit(10, 1, 4);
    store
        .record_observed_round(
            observe_key(),
            ObservedRange {
                block: block(8),
                messages: &batch,
                rejected: &[],
                receipts: &[],
                light_client: Some(&first),
            },
            "observer",
        )
        .await
        .unwrap();
    assert_eq!(
        store.light_client_state(SRC).await.unwrap(),
        Some(first.state.clone())
    );
    // Only the last `keep` headers stay, with their sealers and set.
    let window = store.light_client_headers(SRC, 0).await.unwrap();
    assert_eq!(
        window.iter().map(|h| h.number).collect::<Vec<_>>(),
        [7, 8, 9, 10]
    );
    assert_eq!(window[3], first.headers[9]);
    assert_eq!(
        store.light_client_header(SRC, block(9).hash).await.unwrap(),
        Some(first.headers[8].clone())
    );

    // A state that does not cover the cursor, or goes back, is refused with the round:
    // nothing of it commits.
    let behind = light_client_commit(9, 9, 4);
    assert!(store
        .record_observed_round(
            observe_key(),
            ObservedRange {
                block: block(12),
                messages: &[],
                rejected: &[],
                receipts: &[],
                light_client: Some(&behind),
            },
            "observer",
        )
        .await
        .is_err());
    assert!(store
        .record_observed_round(
            observe_key(),
            ObservedRange {
                block: block(9),
                messages: &[message(SRC, DST, 1, 9)],
                rejected: &[],
                receipts: &[],
                light_client: Some(&behind),
            },
            "observer",
        )
        .await
        .is_err());
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        store
            .load_cursor(observe_key())
            .await
            .unwrap()
            .unwrap()
            .block,
        block(8)
    );
    assert_eq!(
        store.light_client_state(SRC).await.unwrap().unwrap().head,
        block(10)
    );

    // A halt is recorded in the chained log; the operator's reset deletes the state
    // and the window and is recorded as an action.
    let seq = store
        .record_consensus_fault(
            SRC,
            &json!({"block_number": 11, "rule": "bad seal"}),
            "observer",
        )
        .await
        .unwrap();
    let faults = store.consensus_faults(SRC).await.unwrap();
    assert_eq!(faults.len(), 1);
    assert_eq!(
        (
            faults[0].seq,
            faults[0].block_number,
            faults[0].rule.as_str()
        ),
        (seq, 11, "bad seal")
    );
    let action = OperatorAction {
        operator: "alice".into(),
        action: OperatorActionKind::ResetLightClient,
        reason: "checkpoint moved".into(),
        message_id: None,
        route: None,
        ledger: Some(SRC),
        details: json!({}),
    };
    let (id, discarded) = store.reset_light_client(SRC, &action).await.unwrap();
    assert_eq!(discarded.unwrap().head, block(10));
    assert_eq!(store.light_client_state(SRC).await.unwrap(), None);
    assert!(store.light_client_headers(SRC, 0).await.unwrap().is_empty());
    assert_eq!(
        count(&pool, &format!("SELECT count(*) FROM operator_actions WHERE id = {id} AND ledger_id = {SRC} AND action = 'reset_light_client'")).await,
        1
    );
    store.verify_log_chain().await.unwrap();
    // An action that names another ledger is refused.
    let wrong = OperatorAction {
        ledger: Some(DST),
        ..action
    };
    assert!(store.reset_light_client(SRC, &wrong).await.is_err());
}

/// `message` with another sender and body (its canonical bytes and id follow).
fn message_with(origin: u32, nonce: u64, at: u64, sender: [u8; 32], body: Vec<u8>) -> NewMessage {
    let mut m = message(origin, DST, nonce, at);
    let decoded = isthmus_protocol::Message {
        nonce,
        origin,
        sender: isthmus_protocol::Address32(sender),
        destination: DST,
        recipient: isthmus_protocol::Address32(m.recipient),
        deadline: m.deadline,
        body: body.clone(),
    };
    m.sender = sender;
    m.body = body;
    m.canonical = decoded.encode();
    m.id = MessageId(keccak(&m.canonical));
    m
}

/// A payment app's payments stay open until the receipt batch carrying their
/// receipts is delivered back to the origin; other senders' messages and bodies that
/// are not payments are not the app's payments; a scan starts at the app's nonce.
#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn payments_stay_open_until_their_receipt_is_delivered_at_the_origin(pool: PgPool) {
    let store = store(pool.clone()).await;
    let app = [0xa9; 32];
    let payment = |amount: u8| {
        let mut body = vec![0u8; 160];
        body[127] = amount;
        body[128..131].copy_from_slice(b"EUR");
        body
    };
    let sent = [
        message_with(SRC, 0, 3, app, payment(10)),
        message_with(SRC, 1, 3, app, payment(20)),
        message_with(SRC, 2, 3, [0x11; 32], payment(40)),
        message_with(SRC, 3, 3, app, b"a note, not a payment".to_vec()),
    ];
    store
        .record_observed(observe_key(), block(3), &sent, "observer")
        .await
        .unwrap();
    assert!(store.payments_from(&[]).await.unwrap().is_empty());
    // (origin, nonce, amount while open) of the app's payments from `from_nonce`.
    let scan = |origin: u32, from_nonce: u64| {
        let store = store.clone();
        async move {
            let mut rows: Vec<(u32, u64, Option<u8>)> = store
                .payments_from(&[PaymentApp {
                    origin,
                    sender: app,
                    from_nonce,
                }])
                .await
                .unwrap()
                .into_iter()
                .map(|p| (p.route.source, p.nonce, p.open_body.map(|b| b[127])))
                .collect();
            rows.sort_unstable();
            rows
        }
    };
    assert_eq!(scan(SRC, 0).await, [(SRC, 0, Some(10)), (SRC, 1, Some(20))]);
    assert_eq!(scan(SRC, 1).await, [(SRC, 1, Some(20))]);
    // The app is named per origin: on another ledger the same bytes are another app.
    assert!(scan(DST, 0).await.is_empty());

    // The receipt of the first payment arrives in a batch (a message from DST):
    // still open until that batch is delivered at the origin.
    let carrier = message(DST, SRC, 0, 5);
    let receipt = ObservedReceipt {
        message_id: sent[0].id,
        carried_by: carrier.id,
        outcome: ReceiptOutcome::Delivered,
        result: [0u8; 32],
    };
    let carrier_key = CursorKey {
        ledger: DST,
        destination: None,
        stage: Stage::Observe,
    };
    store
        .record_observed_round(
            carrier_key,
            ObservedRange {
                block: block(5),
                messages: std::slice::from_ref(&carrier),
                rejected: &[],
                receipts: std::slice::from_ref(&receipt),
                light_client: None,
            },
            "observer",
        )
        .await
        .unwrap();
    assert_eq!(scan(SRC, 0).await, [(SRC, 0, Some(10)), (SRC, 1, Some(20))]);
    for (from, to) in [
        (MessageStatus::Observed, MessageStatus::Verified),
        (MessageStatus::Verified, MessageStatus::Attested),
        (MessageStatus::Attested, MessageStatus::Submitted),
    ] {
        store
            .transition_many(&[carrier.id], from, to, &json!({}), "w")
            .await
            .unwrap();
    }
    store
        .record_deliveries(
            &[NewDelivery {
                message_id: carrier.id,
                destination: SRC,
                tx_hash: [0xdd; 32],
                block_number: 900,
                block_hash: Some([0xde; 32]),
                gas_used: None,
                checkpoint_digest: None,
                batch_index: 0,
                batch_size: 1,
            }],
            MessageStatus::Submitted,
            "w",
        )
        .await
        .unwrap();
    assert_eq!(scan(SRC, 0).await, [(SRC, 0, None), (SRC, 1, Some(20))]);
}

#[sqlx::test(migrator = "isthmus_schema::MIGRATOR")]
async fn receipts_commit_with_their_batch_once_and_join_the_log(pool: PgPool) {
    let store = store(pool.clone()).await;
    // Two messages from SRC, then a receipt batch (any message of the range serves
    // as the carrier here) with their receipts, and one for a message never seen.
    let sent = [message(SRC, DST, 0, 3), message(SRC, DST, 1, 3)];
    store
        .record_observed(observe_key(), block(3), &sent, "observer")
        .await
        .unwrap();
    let batch = message(SRC, DST, 2, 5);
    let unknown = MessageId([0x77; 32]);
    let receipt = |id: MessageId, outcome| ObservedReceipt {
        message_id: id,
        carried_by: batch.id,
        outcome,
        result: [0xab; 32],
    };
    let receipts = [
        receipt(sent[0].id, ReceiptOutcome::Delivered),
        receipt(sent[1].id, ReceiptOutcome::Refused),
        receipt(unknown, ReceiptOutcome::Expired),
    ];
    // A receipt must ride in a message of the range it is recorded with.
    let stray = [ObservedReceipt {
        carried_by: MessageId([0x55; 32]),
        ..receipts[0]
    }];
    assert!(store
        .record_observed_round(
            observe_key(),
            ObservedRange {
                block: block(5),
                messages: std::slice::from_ref(&batch),
                rejected: &[],
                receipts: &stray,
                light_client: None,
            },
            "observer",
        )
        .await
        .is_err());
    assert_eq!(count(&pool, "SELECT count(*) FROM receipts").await, 0);

    for _ in 0..2 {
        store
            .record_observed_round(
                observe_key(),
                ObservedRange {
                    block: block(5),
                    messages: std::slice::from_ref(&batch),
                    rejected: &[],
                    receipts: &receipts,
                    light_client: None,
                },
                "observer",
            )
            .await
            .unwrap();
    }
    // Recorded once, however often the range is observed.
    assert_eq!(count(&pool, "SELECT count(*) FROM receipts").await, 3);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lifecycle_log WHERE event = 'receipt'"
        )
        .await,
        3
    );
    // The receipt of a message this relayer never saw keeps its id in the evidence.
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM lifecycle_log WHERE event = 'receipt' AND message_id IS NULL \
             AND evidence->>'message' = repeat('77', 32)"
        )
        .await,
        1
    );
    let history = store.message(sent[1].id).await.unwrap().unwrap();
    let last = history.log.last().unwrap();
    assert_eq!(last.event, LogEvent::Receipt);
    assert_eq!(last.evidence["outcome"], "refused");
    assert_eq!(last.evidence["result"], "ab".repeat(32));
    assert_eq!(last.evidence["carried_by"], hex::encode(batch.id.0));
    let r = store.receipt(sent[1].id).await.unwrap().unwrap();
    assert_eq!(r.outcome, ReceiptOutcome::Refused);
    assert_eq!(
        (r.carried_by, r.batch_status),
        (batch.id, MessageStatus::Observed)
    );
    assert_eq!(r.taken_tx, None);
    assert_eq!(store.receipt(batch.id).await.unwrap(), None);
    let refused = store
        .list_messages(&MessageFilter {
            outcomes: vec![ReceiptOutcome::Refused],
            ..MessageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        refused.iter().map(|m| m.id).collect::<Vec<_>>(),
        [sent[1].id]
    );
    // Both legs in one view; receipts never change.
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM receipts_v WHERE outcome = 'delivered' AND receipt_status = 'observed'"
        )
        .await,
        1
    );
    for change in [
        "UPDATE receipts SET outcome = 'delivered'",
        "DELETE FROM receipts",
    ] {
        assert!(
            sqlx::query(change).execute(&pool).await.is_err(),
            "{change}"
        );
    }
    assert!(store.verify_log_chain().await.unwrap() > 0);
}
