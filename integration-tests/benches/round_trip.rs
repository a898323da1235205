//! Round-trip latency on the devnet, with the real relayer: how long a message takes
//! to be delivered (one way) and how long until its receipt is back at its origin
//! (round trip), on the same messages in the same run (docs/protocol.md, "Receipts").
//!
//! Two fresh anvil ledgers (one block per second) whose Inboxes send receipts, three
//! members' `isthmus run` processes (threshold 2, one Postgres database each), and
//! messages sent from evm-a's echo app to evm-b's at a steady pace while the members
//! run (`DEVNET_BENCH_ROUND_TRIPS`, default 60, one every 500 ms). From member
//! bank-0's history (`receipts_v`):
//! - one way: the message observed final on evm-a -> its delivery seen final on evm-b;
//! - round trip: the message observed -> its receipt batch's delivery seen final on
//!   evm-a.
//!
//! Reported: p50 and p95 of both, and the target of the round trip: p50 at most twice
//! the one-way p50 plus one second.
//!
//! `cargo bench -p isthmus-integration-tests --bench round_trip` (uses the `isthmus`
//! binary of `DEVNET_ISTHMUS_BIN`, else `target/debug/isthmus`; `make bench` builds
//! and passes the release one).
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark program: a panic is the failure report, stdout the result"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_adapter_evm::contracts::EchoRecipient;
use isthmus_integration_tests::*;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run(n: usize) {
    let devnet = Devnet::start_with_receipts().await;
    let mut consortium = Consortium::new(&devnet, "roundtrip").await;
    for m in &mut consortium.members {
        m.start();
    }
    let (a, b) = (&devnet.a, &devnet.b);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = format!("round trip {i}");
        ids.push(
            a.send_from_echo(b.id, b.deployment.echo, 0, body.as_bytes())
                .await,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let app = EchoRecipient::new(a.deployment.echo, a.admin.clone());
    let back = wait_until(Duration::from_secs(600), || async {
        app.receipts().call().await.unwrap() == U256::from(n)
    })
    .await;
    assert!(back, "not every receipt came back\n{}", consortium.logs());
    // bank-0 records each delivery and each receipt batch's delivery as it sees them.
    let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let pool = consortium.members[0].db().await;
    let rows = || async {
        sqlx::query_as::<_, (f64, f64)>(
            "SELECT extract(epoch FROM d.delivered_at - m.observed_at)::float8, \
                    r.round_trip_seconds::float8 \
             FROM receipts_v r JOIN messages m ON m.id = r.message_id \
             JOIN deliveries d ON d.message_id = r.message_id \
             WHERE r.message_id = ANY($1::bytea[]) AND r.round_trip_seconds IS NOT NULL",
        )
        .bind(&raw)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let recorded = wait_until(Duration::from_secs(300), || async {
        rows().await.len() == n
    })
    .await;
    assert!(
        recorded,
        "bank-0 did not record every leg\n{}",
        consortium.logs()
    );
    let rows = rows().await;
    let mut one_way: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let mut round_trip: Vec<f64> = rows.iter().map(|r| r.1).collect();
    one_way.sort_by(f64::total_cmp);
    round_trip.sort_by(f64::total_cmp);
    let (o50, o95) = (percentile(&one_way, 50.0), percentile(&one_way, 95.0));
    let (r50, r95) = (percentile(&round_trip, 50.0), percentile(&round_trip, 95.0));
    println!("| messages | one way p50 | one way p95 | round trip p50 | round trip p95 | round trip p50 / (2 x one way p50 + 1 s) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {n} | {o50:.2} s | {o95:.2} s | {r50:.2} s | {r95:.2} s | {:.2} (target <= 1) |",
        r50 / (2.0 * o50 + 1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        println!("round_trip: no options (DEVNET_BENCH_ROUND_TRIPS sets how many messages)");
        return;
    }
    let n = std::env::var("DEVNET_BENCH_ROUND_TRIPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    run(n).await;
}
