//! The escrow metric's scrape (`payments::Escrow::outstanding`) against a history of
//! 200,000 settled payments.
//!
//! A migrated database is filled by SQL (`generate_series`, in the shapes the store
//! writes) with 200,000 payments of one app from ledger 1 to ledger 2 (160-byte
//! bodies), 200,000 other messages on the same route, and 12,500 receipt batches
//! from ledger 2 back to ledger 1 carrying the 200,000 receipts (16 each). The last
//! batch is still on its way (`submitted`), so its 16 payments are open and every
//! other payment is settled.
//!
//! Measured, each as the median of its runs:
//! - the first scrape of a relayer that just started (a fresh `Escrow`, which reads
//!   the app's payments from nonce 0);
//! - a steady-state scrape (an `Escrow` that has scraped once, so it reads from the
//!   app's oldest open payment);
//! - the baseline in the same run: `Store::message_counts`, the existing gauge that
//!   every scrape runs (a `GROUP BY` over all messages).
//!
//! Run with `cargo bench -p isthmus-relayer --bench escrow` (Postgres from
//! `DATABASE_URL`).

use std::time::Instant;

use isthmus_relayer::payments::Escrow;
use isthmus_schema::Store;

mod common;
use common::{machine_line, median, ms, TempDb};

/// Settled payments in the history (plus `OPEN` still open).
const PAYMENTS: u64 = 200_000;
/// Receipts per receipt batch.
const PER_BATCH: u64 = 16;
/// The app's address (`Address32`).
const APP: [u8; 32] = [0xa9; 32];
/// First scrapes measured (each on a fresh tracker).
const FIRST_RUNS: usize = 5;
/// Steady-state scrapes and baseline queries measured.
const STEADY_RUNS: usize = 21;

/// Fills the history: ledgers 1 and 2, the payments, the other messages, the receipt
/// batches and the receipts.
async fn fill(pool: &sqlx::PgPool) {
    let batches = PAYMENTS / PER_BATCH;
    for sql in [
        "INSERT INTO ledgers (id, name, kind, finality) \
         VALUES (1, 'a', 'evm', 'finalized-tag'), (2, 'b', 'evm', 'finalized-tag')"
            .to_owned(),
        // Payments: abi.encode(uetr, debtor, creditor, amount 100, "EUR").
        format!(
            "INSERT INTO messages (id, version, nonce, origin, sender, destination, recipient, \
             deadline, body, canonical, status, source_block_number, source_block_hash) \
             SELECT decode(md5('p' || i) || md5('q' || i), 'hex'), 1, i, 1, \
                    decode(repeat('a9', 32), 'hex'), 2, decode(repeat('bb', 32), 'hex'), 0, \
                    decode(repeat('00', 127) || '64' || '455552' || repeat('00', 29), 'hex'), \
                    '\\x01', 'delivered', i / 100, decode(repeat('11', 32), 'hex') \
             FROM generate_series(0, {}) i",
            PAYMENTS - 1
        ),
        // Other messages of the route, after the payments' nonces.
        format!(
            "INSERT INTO messages (id, version, nonce, origin, sender, destination, recipient, \
             deadline, body, canonical, status, source_block_number, source_block_hash) \
             SELECT decode(md5('o' || i) || md5('r' || i), 'hex'), 1, {PAYMENTS} + i, 1, \
                    decode(repeat('11', 32), 'hex'), 2, decode(repeat('bb', 32), 'hex'), 0, \
                    decode(repeat('01', 40), 'hex'), '\\x01', 'delivered', i / 100, \
                    decode(repeat('11', 32), 'hex') \
             FROM generate_series(0, {}) i",
            PAYMENTS - 1
        ),
        // Receipt batches back to ledger 1: all delivered but the last.
        format!(
            "INSERT INTO messages (id, version, nonce, origin, sender, destination, recipient, \
             deadline, body, canonical, status, source_block_number, source_block_hash) \
             SELECT decode(md5('c' || i) || md5('d' || i), 'hex'), 1, i, 2, \
                    decode(repeat('22', 32), 'hex'), 1, decode(repeat('bb', 32), 'hex'), 0, \
                    decode(repeat('02', 600), 'hex'), '\\x01', \
                    CASE WHEN i < {last} THEN 'delivered' ELSE 'submitted' END, i, \
                    decode(repeat('11', 32), 'hex') \
             FROM generate_series(0, {last}) i",
            last = batches - 1
        ),
        format!(
            "INSERT INTO receipts (message_id, outcome, result, carried_by) \
             SELECT decode(md5('p' || i) || md5('q' || i), 'hex'), 'delivered', \
                    decode(repeat('00', 32), 'hex'), \
                    decode(md5('c' || (i / {PER_BATCH})) || md5('d' || (i / {PER_BATCH})), 'hex') \
             FROM generate_series(0, {}) i",
            PAYMENTS - 1
        ),
        "ANALYZE".to_owned(),
    ] {
        sqlx::query(&sql)
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TempDb::create("isthmus_bench_escrow", None).await;
    let pool = sqlx::PgPool::connect(&db.url)
        .await
        .expect("bench database answers");
    isthmus_schema::MIGRATOR
        .run(&pool)
        .await
        .expect("migrations apply");
    let filled = Instant::now();
    fill(&pool).await;
    println!(
        "escrow: history of {PAYMENTS} settled payments, {PAYMENTS} other messages and {} \
         receipt batches filled in {:.1} s",
        PAYMENTS / PER_BATCH,
        filled.elapsed().as_secs_f64()
    );
    let store = Store::new(pool.clone());
    let expected = 100 * u128::from(PER_BATCH);

    let mut first = Vec::new();
    for _ in 0..FIRST_RUNS {
        let escrow = Escrow::new(vec![(1, APP)]);
        let started = Instant::now();
        let sums = escrow.outstanding(&store).await.expect("scrape");
        first.push(ms(started.elapsed()));
        assert_eq!(sums.values().sum::<u128>(), expected, "{sums:?}");
    }
    let escrow = Escrow::new(vec![(1, APP)]);
    escrow.outstanding(&store).await.expect("first scrape");
    let (mut steady, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..STEADY_RUNS {
        let started = Instant::now();
        let sums = escrow.outstanding(&store).await.expect("scrape");
        steady.push(ms(started.elapsed()));
        assert_eq!(sums.values().sum::<u128>(), expected, "{sums:?}");
        let started = Instant::now();
        store.message_counts().await.expect("message counts");
        baseline.push(ms(started.elapsed()));
    }
    let (first, steady, baseline) = (median(&first), median(&steady), median(&baseline));
    println!(
        "escrow: first scrape after a start (from nonce 0), median of {FIRST_RUNS}: {first:.1} ms"
    );
    println!("escrow: steady-state scrape (from the oldest open payment), median of {STEADY_RUNS}: {steady:.2} ms");
    println!(
        "escrow: baseline, the message-count gauge, median of {STEADY_RUNS}: {baseline:.1} ms"
    );
    println!(
        "escrow: steady scrape / baseline {:.4}; first scrape / baseline {:.1}",
        steady / baseline,
        first / baseline
    );
    println!("escrow: {}", machine_line());
    pool.close().await;
}
