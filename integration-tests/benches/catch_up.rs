//! Catch-up of a sealed EVM ledger: a member that starts far behind follows a long
//! QBFT header chain through `isthmus run`, in bounded batches, with bounded memory.
//!
//! A self-signed QBFT chain (4 validators, 3 committed seals per header; the keys
//! are the bench's, `light-clients/evm/tests/common/chain.rs`) of
//! `CATCH_UP_HEADERS` headers (default 20,000) is served by a [`ReplayServer`];
//! bank-0 alone runs with it as a `qbft` ledger from its genesis checkpoint, next to
//! the two anvil ledgers. Measured: seconds until the light client's stored head
//! reaches the chain's head, headers per second, and the member's resident memory
//! (peak, and at the first stored head) sampled every 250 ms.
//!
//! Run: `cargo bench -p isthmus-integration-tests --bench catch_up` (needs Postgres
//! and the devnet tools; `make bench` runs it with the others).
#![allow(missing_docs)]
#![expect(clippy::unwrap_used, reason = "benchmark setup: a panic is the report")]

#[path = "../../light-clients/evm/tests/common/chain.rs"]
mod chain;

use std::time::{Duration, Instant};

use chain::BftChain;
use isthmus_integration_tests::replay::ReplayServer;
use isthmus_integration_tests::*;
use isthmus_light_client_evm::{BftKind, Header, B256};
use serde_json::{json, Value};

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", ::hex::encode(bytes))
}

/// A header as `eth_getBlockByNumber` returns it (no transactions).
fn rpc_json(h: &Header, hash: B256) -> Value {
    json!({
        "parentHash": hex(&h.parent_hash.0),
        "sha3Uncles": hex(&h.ommers_hash.0),
        "miner": hex(&h.beneficiary.0),
        "stateRoot": hex(&h.state_root.0),
        "transactionsRoot": hex(&h.transactions_root.0),
        "receiptsRoot": hex(&h.receipts_root.0),
        "logsBloom": hex(&h.logs_bloom[..]),
        "difficulty": format!("0x{:x}", h.difficulty.to_u64().unwrap()),
        "number": format!("0x{:x}", h.number),
        "gasLimit": format!("0x{:x}", h.gas_limit),
        "gasUsed": format!("0x{:x}", h.gas_used),
        "timestamp": format!("0x{:x}", h.timestamp),
        "extraData": hex(&h.extra_data),
        "mixHash": hex(&h.mix_hash.0),
        "nonce": hex(&h.nonce),
        "hash": hex(&hash.0),
    })
}

async fn head(m: &Member) -> i64 {
    let pool = m.db().await;
    let head: Option<i64> =
        sqlx::query_scalar("SELECT head_number FROM light_client_states WHERE ledger_id = 8")
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
    pool.close().await;
    head.unwrap_or(-1)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("CATCH_UP_HEADERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let built = Instant::now();
    let mut net = BftChain::new(BftKind::Qbft, 4);
    let mut blocks = Vec::with_capacity(n + 1);
    blocks.push(rpc_json(&net.head, net.head_hash));
    for _ in 0..n {
        let h = net.build_plain(3);
        net.push(h.clone());
        blocks.push(rpc_json(&h, net.head_hash));
    }
    let genesis = blocks[0]["hash"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qbft-chain.json");
    std::fs::write(&path, json!({ "blocks": blocks }).to_string()).unwrap();
    drop(blocks);
    eprintln!(
        "built and signed {n} QBFT headers in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let replay = ReplayServer::start(&path, 1337).await.unwrap();
    let devnet = Devnet::start().await;
    let url = replay.url();
    let mut consortium = Consortium::with_extra(&devnet, "catchup", |m| {
        if m.index != 0 {
            return String::new();
        }
        format!(
            "[[ledgers]]\nname = \"besu\"\nid = 8\nkind = \"evm\"\nrpc = [\"{url}\"]\nchain_id = 1337\n\
             outbox = \"0x00000000000000000000000000000000000000a1\"\n\
             inbox = \"0x00000000000000000000000000000000000000a2\"\nfinality = \"qbft\"\n\
             poll_interval_ms = 200\nsubmitter = {{ file = \"{}\" }}\n\
             checkpoint = {{ number = 0, hash = \"{genesis}\" }}\n\n\
             [[routes]]\nsource = \"besu\"\ndestination = \"evm-a\"\n\n",
            m.submitter.display()
        )
    })
    .await;
    let member = &mut consortium.members[0];
    member.start();
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = pid_listening_on(member.port) {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{}",
            member.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut peak = 0u64;
    let mut first: Option<(f64, i64, u64)> = None;
    let mut samples = Vec::new();
    loop {
        let h = head(member).await;
        let rss = rss_kib(pid).unwrap_or(0);
        peak = peak.max(rss);
        if h > 0 && first.is_none() {
            first = Some((started.elapsed().as_secs_f64(), h, rss));
        }
        samples.push((started.elapsed().as_secs_f64(), h, rss));
        if h >= n as i64 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "stuck at {h}\n{}",
            member.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&member.log).unwrap_or_default();
    let progress = log.lines().filter(|l| l.contains("catching up")).count();
    let (t0, h0, rss0) = first.unwrap_or((0.0, 0, 0));
    println!("catch_up: {n} QBFT headers (4 validators, 3 seals) followed through `isthmus run` in {seconds:.1} s from start: {:.0} headers/s", n as f64 / seconds);
    println!(
        "catch_up: from the first stored head ({h0} at {t0:.1} s) on: {:.0} headers/s",
        (n as i64 - h0) as f64 / (seconds - t0).max(0.001)
    );
    println!(
        "catch_up: resident memory: {:.1} MiB at the first stored head, peak {:.1} MiB",
        rss0 as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!("catch_up: {progress} `catching up` progress lines logged");
    let step = (samples.len() / 10).max(1);
    for (t, h, rss) in samples.iter().step_by(step) {
        println!(
            "catch_up: t={t:6.1} s head={h:6} rss={:.1} MiB",
            *rss as f64 / 1024.0
        );
    }
    member.stop();
    drop(replay);
}
