//! Delivery throughput and latency on anvil, with the real relayer.
//!
//! For each setting (batch size, batches in flight): two fresh anvil ledgers (one
//! block per second), three members' `isthmus run` processes (threshold 2, one
//! Postgres database each), and a backlog of messages dispatched on evm-a to evm-b's
//! echo recipient before the members start. Reported, all from the ledgers and one
//! member's history:
//! - sustained throughput: messages / the destination blocks from the first that
//!   includes a delivery to the last (each block counts its block time), against the
//!   chain's capacity = block gas limit / Inbox gas per message / block time;
//! - end to end: messages / (last destination inclusion − first observation);
//! - Inbox gas per message (the transactions that delivered) and gas per message of
//!   every delivery transaction the members sent (the Inbox skips what another
//!   member delivered first);
//! - latency from the relayer seeing a message final on the source (`observed_at`) to
//!   the timestamp of the destination block that includes its delivery: p50 and p95;
//! - messages per delivering transaction, and the CPU share of the ledgers, the
//!   relayers and Postgres over the drain (from /proc);
//! - on stderr, each destination block of the window as transactions:gas used;
//! - after the table, member bank-0's mean seconds per delivery round in each phase
//!   (`isthmus_delivery_round_phase_seconds`).
//!
//! `cargo bench -p isthmus-integration-tests --bench delivery` (uses the `isthmus`
//! binary of `DEVNET_ISTHMUS_BIN`, else `target/debug/isthmus`; `make bench` builds
//! and passes the release one). `DEVNET_BENCH_MESSAGES` sets the backlog size
//! (default 20,000) and `DEVNET_BENCH_SETTINGS` the `BATCHxIN_FLIGHT` list (default
//! 128x1, 128x4, 128x8).
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark program: a panic is the failure report, stdout the result"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ethers::contract::EthEvent;
use ethers::providers::Middleware;
use ethers::types::H256;
use isthmus_adapter_evm::contracts::inbox::{
    MessageDeliveredFilter, MessageHandlerFailedFilter, MessageSkippedFilter,
};
use isthmus_integration_tests::*;

struct Report {
    batch: u32,
    in_flight: u32,
    messages: usize,
    seconds: f64,
    window_blocks: u64,
    fill: f64,
    inbox_gas_per_message: f64,
    all_gas_per_message: f64,
    gas_limit: u64,
    /// Messages per transaction that delivered any.
    per_tx: f64,
    p50: f64,
    p95: f64,
    /// CPU seconds per process group over the drain, and the drain's wall seconds.
    cpu: BTreeMap<&'static str, f64>,
    drain_s: f64,
    /// Mean seconds per delivery round in each phase, and the rounds (member bank-0).
    phases: Vec<(&'static str, f64, f64)>,
}

/// The phases of a delivery round, as `isthmus_delivery_round_phase_seconds` names them.
const PHASES: [&str; 6] = ["claim", "checks", "verify", "attest", "submit", "record"];

/// The process groups whose CPU time is reported: the ledgers, the relayers, the
/// database server.
const GROUPS: [&str; 3] = ["anvil", "isthmus", "postgres"];

/// CPU seconds (user + system) used so far by the running processes of each group,
/// by command name, from /proc (Linux; clock ticks of 1/100 s). A process that exits
/// takes its count with it, so both samples are taken while everything runs.
fn cpu_by_group() -> BTreeMap<&'static str, f64> {
    let mut used: BTreeMap<&'static str, f64> = GROUPS.iter().map(|g| (*g, 0.0)).collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return used;
    };
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime stime: fields 14 and 15, counted from 1.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let Some(group) = GROUPS.iter().find(|g| comm.starts_with(**g)) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // After the comm: state is index 0, so utime (14) is 11 and stime (15) is 12.
        *used.get_mut(group).unwrap() += (ticks(11) + ticks(12)) / 100.0;
    }
    used
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn measure(batch: u32, in_flight: u32, n: usize) -> Report {
    let devnet = Devnet::start().await;
    let mut consortium =
        Consortium::with_batch_size(&devnet, &format!("bench{batch}x{in_flight}"), batch).await;
    for m in &consortium.members {
        let toml = std::fs::read_to_string(&m.config).unwrap().replace(
            &format!("batch_size = {batch}\n"),
            &format!("batch_size = {batch}\nin_flight = {in_flight}\n"),
        );
        std::fs::write(&m.config, toml).unwrap();
    }
    // The backlog is on the source before any member runs.
    let dispatching = std::time::Instant::now();
    let ids = devnet
        .a
        .dispatch_burst(2, devnet.b.deployment.echo, n)
        .await;
    eprintln!(
        "{batch} x {in_flight}: {n} messages dispatched on evm-a in {:.0} s; the members start",
        dispatching.elapsed().as_secs_f64()
    );
    let cpu_before = cpu_by_group();
    let drain = std::time::Instant::now();
    for m in &mut consortium.members {
        m.start();
    }
    // Polled by one log query a second, so that watching adds little load to anvil.
    let delivered_events = ethers::types::Filter::new()
        .address(devnet.b.deployment.inbox)
        .topic0(MessageDeliveredFilter::signature())
        .from_block(0u64);
    let all = wait_until(Duration::from_secs(900), || async {
        tokio::time::sleep(Duration::from_millis(750)).await;
        devnet
            .b
            .admin
            .get_logs(&delivered_events)
            .await
            .is_ok_and(|logs| logs.len() >= n)
    })
    .await;
    let cpu_after = cpu_by_group();
    let drain_s = drain.elapsed().as_secs_f64();
    assert!(all, "not delivered in 15 min\n{}", consortium.logs());
    let cpu = GROUPS
        .iter()
        .map(|g| (*g, cpu_after[g] - cpu_before[g]))
        .collect();
    assert!(
        devnet.b.all_delivered(&ids).await,
        "the Inbox delivered other ids"
    );

    // One member's view: when each message was seen final, and where it landed.
    let member = &consortium.members[0];
    let settled = wait_until(Duration::from_secs(120), || async {
        member.count("SELECT count(*) FROM deliveries").await == n as i64
    })
    .await;
    assert!(settled, "{}", consortium.logs());
    let pool = member.db().await;
    let rows: Vec<(f64, i64)> = sqlx::query_as(
        "SELECT extract(epoch FROM m.observed_at)::float8, d.block_number \
           FROM messages m JOIN deliveries d ON d.message_id = m.id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;

    let b = &devnet.b.admin;
    let mut block_time = BTreeMap::new();
    for (_, number) in &rows {
        if let std::collections::btree_map::Entry::Vacant(e) = block_time.entry(*number) {
            let block = b.get_block(*number as u64).await.unwrap().unwrap();
            e.insert(block.timestamp.as_u64() as f64);
        }
    }
    let mut latencies: Vec<f64> = rows
        .iter()
        .map(|(observed, number)| (block_time[number] - observed).max(0.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let first_seen = rows.iter().map(|(o, _)| *o).fold(f64::INFINITY, f64::min);
    let last_included = block_time.values().copied().fold(0.0, f64::max);
    let first_block = *block_time.keys().next().unwrap() as u64;
    let last_block = *block_time.keys().next_back().unwrap() as u64;
    let window_blocks = last_block - first_block + 1;
    let mut window_gas = 0u64;
    // Per block of the window: transactions and the share of the block's gas used.
    let mut blocks = Vec::new();
    for number in first_block..=last_block {
        let block = b.get_block(number).await.unwrap().unwrap();
        window_gas += block.gas_used.as_u64();
        blocks.push(format!(
            "{}:{:.0}%",
            block.transactions.len(),
            100.0 * block.gas_used.as_u64() as f64 / block.gas_limit.as_u64().max(1) as f64
        ));
    }
    eprintln!(
        "{batch} x {in_flight}: destination blocks {first_block}..={last_block} (transactions:gas used) {}",
        blocks.join(" ")
    );

    // Gas, from the chain: every transaction to the Inbox after the wiring.
    let logs = b
        .get_logs(
            &ethers::types::Filter::new()
                .address(devnet.b.deployment.inbox)
                .from_block(0u64),
        )
        .await
        .unwrap();
    let delivered_topic = MessageDeliveredFilter::signature();
    let per_message = [
        delivered_topic,
        MessageSkippedFilter::signature(),
        MessageHandlerFailedFilter::signature(),
    ];
    // Delivery transactions: those with a per-message event (not the wiring's).
    let mut txs: BTreeSet<H256> = BTreeSet::new();
    let mut delivering: BTreeMap<H256, usize> = BTreeMap::new();
    for log in &logs {
        let tx = log.transaction_hash.unwrap();
        let Some(topic) = log.topics.first() else {
            continue;
        };
        if *topic == delivered_topic {
            *delivering.entry(tx).or_default() += 1;
        }
        if per_message.contains(topic) {
            txs.insert(tx);
        }
    }
    let mut inbox_gas = 0u64;
    let mut all_gas = 0u64;
    for tx in &txs {
        let receipt = b.get_transaction_receipt(*tx).await.unwrap().unwrap();
        let gas = receipt.gas_used.unwrap().as_u64();
        all_gas += gas;
        if delivering.contains_key(tx) {
            inbox_gas += gas;
        }
    }
    let delivered: usize = delivering.values().sum();
    let gas_limit = b
        .get_block(ethers::types::BlockNumber::Latest)
        .await
        .unwrap()
        .unwrap()
        .gas_limit
        .as_u64();
    let exposition = consortium.members[0].metrics().await;
    let phases = PHASES
        .iter()
        .map(|phase| {
            let series = |part: &str| {
                metric(
                    &exposition,
                    &format!(
                        "isthmus_delivery_round_phase_seconds_{part}{{ledger=\"evm-b\",phase=\"{phase}\"}}"
                    ),
                )
                .unwrap_or(0.0)
            };
            let (sum, count) = (series("sum"), series("count"));
            (*phase, sum / count.max(1.0), count)
        })
        .collect();
    for m in &mut consortium.members {
        m.stop();
    }
    Report {
        batch,
        in_flight,
        messages: n,
        seconds: last_included - first_seen,
        window_blocks,
        fill: window_gas as f64 / (window_blocks * gas_limit) as f64,
        inbox_gas_per_message: inbox_gas as f64 / delivered as f64,
        all_gas_per_message: all_gas as f64 / n as f64,
        gas_limit,
        per_tx: delivered as f64 / delivering.len().max(1) as f64,
        p50: percentile(&latencies, 50.0),
        p95: percentile(&latencies, 95.0),
        cpu,
        drain_s,
        phases,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        println!(
            "delivery: no options (DEVNET_BENCH_MESSAGES sets the backlog, \
             DEVNET_BENCH_SETTINGS the BATCHxIN_FLIGHT list)"
        );
        return;
    }
    let n: usize = std::env::var("DEVNET_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!(
        "delivery on anvil (1 s blocks), 3 members, threshold 2, backlog of {n} messages per run"
    );
    println!(
        "| batch | in flight | sustained msgs/s | capacity msgs/s | of capacity | block gas used | end to end msgs/s | msgs/tx | Inbox gas/msg | all submissions gas/msg | latency p50 | latency p95 | CPU anvil / isthmus / postgres |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // One batch in flight is the relayer before pipelining: the baseline of the run.
    // `DEVNET_BENCH_SETTINGS=128x4,96x8` runs only those settings.
    let settings: Vec<(u32, u32)> = match std::env::var("DEVNET_BENCH_SETTINGS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                let (b, f) = s.split_once('x').expect("settings are BATCHxIN_FLIGHT");
                (b.trim().parse().unwrap(), f.trim().parse().unwrap())
            })
            .collect(),
        Err(_) => vec![(128, 1), (128, 4), (128, 8)],
    };
    let mut phase_rows = Vec::new();
    for (batch, in_flight) in settings {
        let r = measure(batch, in_flight, n).await;
        phase_rows.push((
            r.batch,
            r.in_flight,
            r.phases
                .iter()
                .map(|(_, mean, _)| format!("{mean:.2} s"))
                .collect::<Vec<_>>()
                .join(" | "),
            r.phases.first().map_or(0.0, |(_, _, rounds)| *rounds),
        ));
        // One second per block (the devnet's block time).
        let sustained = r.messages as f64 / r.window_blocks as f64;
        let end_to_end = r.messages as f64 / r.seconds.max(1.0);
        let capacity = r.gas_limit as f64 / r.inbox_gas_per_message;
        // Per group, the share of one core over the drain (2 cores: 200 % in all).
        let cpu = GROUPS
            .iter()
            .map(|g| format!("{:.0} %", 100.0 * r.cpu[g] / r.drain_s))
            .collect::<Vec<_>>()
            .join(" / ");
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} % | {:.1} % | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} s | {:.1} s | {cpu} |",
            r.batch,
            r.in_flight,
            sustained,
            capacity,
            100.0 * sustained / capacity,
            100.0 * r.fill,
            end_to_end,
            r.per_tx,
            r.inbox_gas_per_message,
            r.all_gas_per_message,
            r.p50,
            r.p95,
        );
    }
    println!();
    println!("mean seconds per delivery round by phase, member bank-0 (`isthmus_delivery_round_phase_seconds`)");
    println!("| batch | in flight | rounds | {} |", PHASES.join(" | "));
    println!("|---|---|---|{}", "---|".repeat(PHASES.len()));
    for (batch, in_flight, phases, rounds) in phase_rows {
        println!("| {batch} | {in_flight} | {rounds:.0} | {phases} |");
    }
}
