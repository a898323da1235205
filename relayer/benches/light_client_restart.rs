//! Restart of a sealed ledger's light client with 1,000,000 verified headers
//! behind the stored head.
//!
//! A QBFT chain (4 validators, 3 committed seals per header, real k256 seals) is
//! built from a trusted checkpoint at block 995,904 to the head at 1,000,000: the
//! window of `HEADER_WINDOW` (4096) headers the relayer keeps. The relayer's own
//! `Follower` starts at the checkpoint, verifies the 4096 headers, and its
//! `commit()` is written with `Store::record_observed_round`, exactly as an
//! observe round writes it. Two databases hold that commit:
//! - **window**: `light_client_headers` holds the 4096 rows the relayer keeps;
//! - **1,000,000 rows**: the same, plus 995,904 rows for blocks 0..=995,903 of the
//!   same ledger (copies of a real row, each with its own number and hash), so the
//!   table holds a header for every block up to the head. The start's query
//!   (`number >= head - 4096`) must skip them.
//!
//! Measured (criterion, medians): what `isthmus run` does for the ledger at start,
//! `Store::light_client_state` + `Store::light_client_headers(id, head - 4096)` +
//! `Follower::resume`, on a connected store. Baselines in the same run: the state
//! read alone (one row), the headers read alone, `Follower::resume` alone on data
//! already read, and `EvmLightClient::resume` alone.
//!
//! Run with `cargo bench -p isthmus-relayer --bench light_client_restart`
//! (Postgres from `DATABASE_URL`).
#![allow(missing_docs)]

#[path = "../../light-clients/evm/tests/common/chain.rs"]
mod chain;
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use chain::BftChain;
use common::{machine_line, TempDb};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use isthmus_config::{ConsensusStep, SealProtocol, SealedFinality, TrustedBlock};
use isthmus_light_client_evm::bft::bft_block_hash;
use isthmus_light_client_evm::{BftKind, ClientState, EvmLightClient, Header};
use isthmus_relayer::ledger::follow::{consensus_config, Follower, HEADER_WINDOW};
use isthmus_schema::{
    CursorKey, FinalityMode, Ledger, LedgerId, LedgerKind, LightClientCommit, LightClientRecord,
    ObservedRange, Stage, Store, VerifiedHeaderRecord,
};

/// The stored head.
const HEAD: u64 = 1_000_000;
/// The trusted checkpoint: the window's headers are the blocks after it.
const CHECKPOINT: u64 = HEAD - HEADER_WINDOW as u64;
/// Rows of `light_client_headers` in the large variant: blocks 0..=CHECKPOINT-1
/// (placeholders) and the window CHECKPOINT+1..=HEAD.
const HISTORY_ROWS: i64 = 1_000_000;
/// The ledger's id.
const LEDGER: LedgerId = 17;
/// The ledger's name.
const NAME: &str = "consortium-qbft";
/// QBFT epoch length.
const EPOCH: u64 = 30_000;

/// The chain, the follower's commit after verifying it, and the next header.
struct Built {
    sealed: SealedFinality,
    commit: LightClientCommit,
    next: Header,
}

fn build() -> Built {
    let mut chain = BftChain::new(BftKind::Qbft, 4);
    // Move the chain to the block before the checkpoint, so the checkpoint and
    // every header after it carry real numbers, seals and links.
    chain.head.number = CHECKPOINT - 1;
    chain.head.timestamp = 1_700_000_000 + (CHECKPOINT - 1) * 2;
    chain.head_hash = bft_block_hash(BftKind::Qbft, &chain.head).expect("hash");
    let checkpoint = chain.build_plain(3);
    chain.push(checkpoint.clone());
    let sealed = SealedFinality {
        checkpoint: TrustedBlock {
            number: CHECKPOINT,
            hash: chain.head_hash.0,
        },
        validators: None,
        schedule: vec![ConsensusStep {
            from_block: 0,
            protocol: SealProtocol::Qbft,
            epoch: EPOCH,
        }],
    };
    let headers = chain.extend_plain(HEADER_WINDOW, 3);
    let next = chain.build_plain(3);

    let mut follower =
        Follower::start(NAME, LEDGER, &sealed, &checkpoint).expect("the checkpoint is accepted");
    let started = Instant::now();
    follower
        .follow(headers)
        .unwrap_or_else(|h| panic!("the chain verifies: {}", h.rule));
    eprintln!(
        "verified {} headers ({}..={}) in {:.0} ms",
        HEADER_WINDOW,
        CHECKPOINT + 1,
        HEAD,
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(follower.head().number, HEAD);
    assert_eq!(follower.head().hash, chain.head_hash.0);
    let commit = follower.commit();
    assert_eq!(commit.headers.len(), HEADER_WINDOW);
    assert_eq!(commit.keep, HEADER_WINDOW as u64);
    Built {
        sealed,
        commit,
        next,
    }
}

/// A fresh migrated database holding the ledger and `commit`, written as an
/// observe round writes it.
async fn database(name: &str, commit: &LightClientCommit) -> (TempDb, Store) {
    let db = TempDb::create(name, None).await;
    let store = Store::new(isthmus_schema::connect(&db.url).await.expect("connect"));
    store.migrate().await.expect("migrations");
    store
        .upsert_ledger(&Ledger {
            id: LEDGER,
            name: NAME.into(),
            kind: LedgerKind::Evm,
            finality: FinalityMode::Qbft,
        })
        .await
        .expect("ledger");
    store
        .record_observed_round(
            CursorKey {
                ledger: LEDGER,
                destination: None,
                stage: Stage::Observe,
            },
            ObservedRange {
                block: commit.state.head,
                messages: &[],
                rejected: &[],
                receipts: &[],
                light_client: Some(commit),
            },
            "bench",
        )
        .await
        .expect("the observe round commits");
    (db, store)
}

/// Fills `light_client_headers` up to `HISTORY_ROWS` rows for the ledger: blocks
/// 0..=CHECKPOINT-1, each a copy of the stored head's row with its own number and
/// hashes (so rows have the real size), in one statement; then `VACUUM ANALYZE`,
/// so no autovacuum of the new rows runs during the measurements.
async fn fill_history(store: &Store) {
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO light_client_headers (ledger_id, number, hash, parent_hash, state_root, \
             finality, sealed_by, validators, header_rlp) \
         SELECT r.ledger_id, n, sha256(int8send(n)), sha256(int8send(n - 1)), r.state_root, \
                r.finality, r.sealed_by, r.validators, r.header_rlp \
         FROM generate_series(0, $2 - 1) AS n, \
              (SELECT * FROM light_client_headers WHERE ledger_id = $1 AND number = $3) AS r",
    )
    .bind(i64::from(LEDGER))
    .bind(CHECKPOINT as i64)
    .bind(HEAD as i64)
    .execute(store.pool())
    .await
    .expect("placeholder rows");
    sqlx::query("VACUUM ANALYZE light_client_headers")
        .execute(store.pool())
        .await
        .expect("analyze");
    let (rows, size): (i64, String) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM light_client_headers WHERE ledger_id = $1), \
                pg_size_pretty(pg_total_relation_size('light_client_headers'))",
    )
    .bind(i64::from(LEDGER))
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(rows, HISTORY_ROWS);
    eprintln!(
        "light_client_headers: {rows} rows, {size} with indexes, filled in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// What `isthmus run` does for the ledger at start.
async fn restart(store: &Store, sealed: &SealedFinality) -> Follower {
    let record = store
        .light_client_state(LEDGER)
        .await
        .expect("read state")
        .expect("a stored state");
    let from = record.head.number.saturating_sub(HEADER_WINDOW as u64);
    let headers = store
        .light_client_headers(LEDGER, from)
        .await
        .expect("read headers");
    Follower::resume(NAME, LEDGER, sealed, &record, headers).expect("resumes")
}

/// The resumed follower stands where the one that wrote the commit stood, holds
/// the window, and verifies the next header.
fn check(mut resumed: Follower, built: &Built) {
    let expected: &LightClientRecord = &built.commit.state;
    assert_eq!(resumed.head(), expected.head);
    assert_eq!(resumed.checkpoint(), expected.checkpoint);
    let again = resumed.commit();
    assert_eq!(again.state, *expected);
    assert!(again.headers.is_empty());
    assert!(resumed.header(CHECKPOINT).is_none());
    assert!(resumed.header(CHECKPOINT + 1).is_some());
    assert_eq!(
        resumed.header(HEAD).map(|h| h.block_hash().0),
        Some(expected.head.hash)
    );
    resumed
        .follow(vec![built.next.clone()])
        .unwrap_or_else(|h| panic!("the next header verifies after the restart: {}", h.rule));
    assert_eq!(resumed.head().number, HEAD + 1);
}

fn benches(c: &mut Criterion) {
    eprintln!("{}", machine_line());
    let built = build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (window_db, window) = rt.block_on(database("isthmus_bench_lc_window", &built.commit));
    let (history_db, history) = rt.block_on(async {
        let (db, store) = database("isthmus_bench_lc_history", &built.commit).await;
        fill_history(&store).await;
        (db, store)
    });
    for store in [&window, &history] {
        check(rt.block_on(restart(store, &built.sealed)), &built);
    }
    let record = rt
        .block_on(window.light_client_state(LEDGER))
        .expect("read state")
        .expect("a stored state");
    let headers: Vec<VerifiedHeaderRecord> = rt
        .block_on(window.light_client_headers(LEDGER, CHECKPOINT))
        .expect("read headers");
    assert_eq!(headers.len(), HEADER_WINDOW);
    let client_state: ClientState =
        serde_json::from_value(record.state.clone()).expect("the stored state parses");
    let config = consensus_config(&built.sealed);

    let mut g = c.benchmark_group("light_client_restart");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    g.bench_function("restart_window_4096_rows", |b| {
        b.iter(|| black_box(rt.block_on(restart(&window, &built.sealed))))
    });
    g.bench_function("restart_table_1000000_rows", |b| {
        b.iter(|| black_box(rt.block_on(restart(&history, &built.sealed))))
    });
    g.bench_function("baseline_light_client_state", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(window.light_client_state(LEDGER))
                    .expect("read"),
            )
        })
    });
    g.bench_function("light_client_headers_window_4096_rows", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(window.light_client_headers(LEDGER, CHECKPOINT))
                    .expect("read"),
            )
        })
    });
    g.bench_function("light_client_headers_table_1000000_rows", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(history.light_client_headers(LEDGER, CHECKPOINT))
                    .expect("read"),
            )
        })
    });
    g.bench_function("follower_resume_4096_headers", |b| {
        b.iter_batched(
            || headers.clone(),
            |hs| Follower::resume(NAME, LEDGER, &built.sealed, &record, hs).expect("resumes"),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline_evm_light_client_resume", |b| {
        b.iter_batched(
            || client_state.clone(),
            |s| EvmLightClient::resume(&config, s).expect("resumes"),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    rt.block_on(async {
        window.pool().close().await;
        history.pool().close().await;
    });
    drop(window_db);
    drop(history_db);
    eprintln!("{}", machine_line());
}

criterion_group!(all, benches);
criterion_main!(all);
