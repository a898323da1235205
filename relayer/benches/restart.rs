//! Restart to resume with 100,000 messages of history.
//!
//! Two real anvil ledgers carry the endpoints. A database is filled, through
//! `isthmus_schema::Store`, with 100,000 messages from `evm-b` to `evm-a` in their
//! final state (`delivered`): `record_observed` in batches of 5,000 (messages,
//! `observed` log rows, the cursor), then `transition_many` along verified,
//! attested, submitted and delivered (one hash-chained log row per message and
//! step, 500,000 in all), the `deliveries` rows by `COPY`, and both ledgers'
//! observer cursors at real blocks of the anvils. The messages themselves are
//! built here (valid ids and canonical bytes, source blocks and hashes of the real
//! `evm-b` chain); the relayer does not re-read history when it starts.
//!
//! Each start spawns the real `isthmus run` against a fresh copy of that database
//! and measures, from the spawn, when `/readyz` first answers 200 and when the
//! `evm-b` observer logs its first round; the later of the two is the time to
//! resume. The first round must start at the stored cursor + 1 (no rescan): 2,100
//! blocks were mined past the cursor, so that round is a full 2,000-block range
//! with blocks remaining, which the observer always logs. Baselines in the same
//! run: the same start against an empty migrated database (first round from block
//! 0), and against a new, unmigrated one. Last, the one start step that reads the
//! whole `messages` table, `Store::release_orphaned_leases`, is timed on its own on
//! fresh copies of the history.
//!
//! Run with `cargo bench -p isthmus-relayer --bench restart` (Postgres from
//! `DATABASE_URL`, anvil from `make devnet-tools`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use isthmus_adapter_evm::devnet::{self, Anvil, Deployment, DEV_DAPP_KEY, DEV_KEY_0, DEV_KEY_1};
use isthmus_adapter_evm::EvmSource;
use isthmus_protocol::attestation::address_of;
use isthmus_protocol::{keccak256, Address32, Message};
use isthmus_schema::{
    BlockRef, CursorKey, FinalityMode, Ledger, LedgerKind, MessageId, MessageStatus, NewMessage,
    Stage, Store,
};
use k256::ecdsa::SigningKey;
use serde_json::json;
use sqlx::postgres::PgPoolCopyExt;

mod common;
use common::{machine_line, median, ms, TempDb};

/// Messages of history.
const HISTORY: usize = 100_000;
/// Messages per `record_observed` and per `transition_many` while filling.
const FILL_BATCH: usize = 5_000;
/// Messages per delivery transaction in the history.
const DELIVERY_BATCH: usize = 16;
/// The stored observer cursors point at this block of each ledger.
const CURSOR_BLOCK: u64 = 300;
/// Blocks mined past the cursor on `evm-b`: more than one observer range (2,000).
const AHEAD: u64 = 2_100;
/// Starts measured per database.
const STARTS: usize = 5;
/// Give up on a start after this long.
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Chain {
    name: &'static str,
    id: u32,
    chain_id: u64,
    anvil: Anvil,
    deployment: Deployment,
}

async fn chain(name: &'static str, id: u32, chain_id: u64) -> Chain {
    let anvil = Anvil::spawn(chain_id).expect("anvil starts (make devnet-tools)");
    let deployment = devnet::deploy(&anvil.url(), chain_id, id, &DEV_KEY_0, devnet::NETWORK)
        .await
        .expect("endpoints deploy");
    let head = anvil
        .provider()
        .expect("provider")
        .get_block_number()
        .await
        .expect("head")
        .as_u64();
    anvil
        .mine(CURSOR_BLOCK - head)
        .await
        .expect("mine to the cursor block");
    Chain {
        name,
        id,
        chain_id,
        anvil,
        deployment,
    }
}

impl Chain {
    fn source(&self) -> EvmSource {
        EvmSource::new(&self.anvil.url(), self.deployment.outbox, self.id).expect("source")
    }

    async fn block(&self, n: u64) -> BlockRef {
        let b = self
            .source()
            .block_ref(n)
            .await
            .expect("eth_getBlockByNumber")
            .expect("block exists");
        BlockRef {
            number: n,
            hash: b.hash,
        }
    }

    fn ledger(&self) -> Ledger {
        Ledger {
            id: self.id,
            name: self.name.into(),
            kind: LedgerKind::Evm,
            finality: FinalityMode::FinalizedTag,
        }
    }
}

fn observe_key(ledger: u32) -> CursorKey {
    CursorKey {
        ledger,
        destination: None,
        stage: Stage::Observe,
    }
}

/// Fills `url` (migrated) with the delivered history of `b -> a` and the cursors.
async fn fill_history(url: &str, a: &Chain, b: &Chain) {
    let start = Instant::now();
    let store = Store::new(isthmus_schema::connect(url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    store.upsert_ledger(&a.ledger()).await.expect("ledger a");
    store.upsert_ledger(&b.ledger()).await.expect("ledger b");
    let mut hashes = Vec::new();
    for n in 1..=CURSOR_BLOCK {
        hashes.push(b.block(n).await);
    }
    let sender = Address32::from_evm(
        LocalWallet::from_bytes(&DEV_DAPP_KEY)
            .expect("dApp key")
            .address()
            .0,
    );
    let recipient = Address32::from_evm(a.deployment.clearing.0);
    let actor = "bank-0/history";
    for chunk in 0..HISTORY / FILL_BATCH {
        let mut messages = Vec::with_capacity(FILL_BATCH);
        for i in chunk * FILL_BATCH..(chunk + 1) * FILL_BATCH {
            // Spread over blocks 1..=CURSOR_BLOCK in order.
            let block = hashes[i * CURSOR_BLOCK as usize / HISTORY];
            let mut body = vec![0u8; 128];
            body[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let m = Message {
                nonce: i as u64,
                origin: b.id,
                sender,
                destination: a.id,
                recipient,
                deadline: 0,
                body,
            };
            messages.push(NewMessage {
                id: MessageId(m.id().0),
                version: isthmus_protocol::VERSION,
                nonce: m.nonce,
                origin: m.origin,
                sender: m.sender.0,
                destination: m.destination,
                recipient: m.recipient.0,
                deadline: 0,
                body: m.body.clone(),
                canonical: m.encode(),
                source_block: block,
                source_tx_hash: Some(keccak256(&(i as u64).to_be_bytes())),
            });
        }
        let last = messages.last().expect("a full chunk").source_block;
        store
            .record_observed(observe_key(b.id), last, &messages, actor)
            .await
            .expect("record_observed");
        let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
        let digest = hex::encode(keccak256(&(chunk as u64).to_be_bytes()));
        let steps = [
            (
                MessageStatus::Observed,
                MessageStatus::Verified,
                json!({"checkpoint_digest": digest, "source_block": last.number,
                       "finality": "finalized-tag (trusted from the node)"}),
            ),
            (
                MessageStatus::Verified,
                MessageStatus::Attested,
                json!({"checkpoint_digest": digest, "signers": ["bank-0", "bank-1"]}),
            ),
            (
                MessageStatus::Attested,
                MessageStatus::Submitted,
                json!({"checkpoint_digest": digest, "batch_size": DELIVERY_BATCH}),
            ),
            (
                MessageStatus::Submitted,
                MessageStatus::Delivered,
                json!({"destination": a.id, "checkpoint_digest": digest,
                       "batch_size": DELIVERY_BATCH, "gas_used": 929_309}),
            ),
        ];
        for (from, to, evidence) in steps {
            store
                .transition_many(&ids, from, to, &evidence, actor)
                .await
                .expect("transition");
        }
    }
    // `evm-a` has no history here, only its cursor.
    let cursor_a = a.block(CURSOR_BLOCK).await;
    store
        .record_observed(observe_key(a.id), cursor_a, &[], actor)
        .await
        .expect("cursor of evm-a");

    // One delivery row per message, batches of DELIVERY_BATCH sharing a transaction.
    let mut text = String::with_capacity(HISTORY * 400);
    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT id, nonce::text FROM messages ORDER BY nonce")
            .fetch_all(store.pool())
            .await
            .expect("history ids");
    for (id, nonce) in rows {
        let i: usize = nonce.parse().expect("nonce");
        let batch = (i / DELIVERY_BATCH) as u64;
        let tx = keccak256(&[b"delivery".as_slice(), &batch.to_be_bytes()].concat());
        let block = CURSOR_BLOCK / 2 + batch * CURSOR_BLOCK / 2 / (HISTORY / DELIVERY_BATCH) as u64;
        text.push_str(&format!(
            "\\\\x{}\t{}\t\\\\x{}\t{}\t\\\\x{}\t{}\t\\\\x{}\t{}\t{}\n",
            hex::encode(id),
            a.id,
            hex::encode(tx),
            block,
            hex::encode(keccak256(&block.to_be_bytes())),
            929_309 / DELIVERY_BATCH,
            hex::encode(keccak256(&batch.to_be_bytes())),
            i % DELIVERY_BATCH,
            DELIVERY_BATCH,
        ));
    }
    let mut copy = store
        .pool()
        .copy_in_raw(
            "COPY deliveries (message_id, destination, tx_hash, block_number, block_hash, \
             gas_used, checkpoint_digest, batch_index, batch_size) FROM STDIN",
        )
        .await
        .expect("COPY deliveries");
    copy.send(text.as_bytes()).await.expect("COPY data");
    copy.finish().await.expect("COPY ends");
    sqlx::raw_sql("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .expect("vacuum");
    let counts: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM messages WHERE status = 'delivered'), \
                (SELECT count(*) FROM lifecycle_log), (SELECT count(*) FROM deliveries), \
                pg_database_size(current_database()), pg_relation_size('messages')",
    )
    .fetch_one(store.pool())
    .await
    .expect("counts");
    assert_eq!(counts.0, HISTORY as i64);
    assert_eq!(counts.1, 5 * HISTORY as i64);
    assert_eq!(counts.2, HISTORY as i64);
    let cursor = store
        .load_cursor(observe_key(b.id))
        .await
        .expect("cursor")
        .expect("cursor stored");
    assert_eq!(cursor.block, b.block(CURSOR_BLOCK).await);
    store.pool().close().await;
    println!(
        "restart: history of {} delivered messages, {} log rows, {} deliveries, {} MiB ({} MiB in the messages table), filled in {:.1} s",
        counts.0,
        counts.1,
        counts.2,
        counts.3 / (1 << 20),
        counts.4 / (1 << 20),
        start.elapsed().as_secs_f64()
    );
}

fn member_secret(i: usize) -> [u8; 32] {
    keccak256(format!("isthmus test signer {i}").as_bytes())
}

fn member_address(i: usize) -> [u8; 20] {
    let key = SigningKey::from_bytes(&member_secret(i).into()).expect("test key");
    address_of(key.verifying_key())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Member bank-0's configuration (the integration tests' shape) for `database_url`.
fn write_config(dir: &Path, database_url: &str, chains: [&Chain; 2], ports: [u16; 3]) -> PathBuf {
    let key = dir.join("bank-0.key");
    std::fs::write(&key, hex::encode(member_secret(0))).expect("key file");
    let submitter = dir.join("bank-0-submitter.key");
    std::fs::write(&submitter, hex::encode(DEV_KEY_1)).expect("key file");
    let mut toml = format!(
        "[database]\nurl = \"{database_url}\"\npool_size = 4\n\n[member]\nname = \"bank-0\"\nkey = {{ file = \"{}\" }}\n\n",
        key.display()
    );
    for c in chains {
        toml += &format!(
            "[[ledgers]]\nname = \"{}\"\nid = {}\nkind = \"evm\"\nrpc = [\"{}\"]\nchain_id = {}\n\
             outbox = \"{:?}\"\ninbox = \"{:?}\"\nfinality = \"finalized-tag\"\npoll_interval_ms = 200\n\
             submitter = {{ file = \"{}\" }}\n\n",
            c.name,
            c.id,
            c.anvil.url(),
            c.chain_id,
            c.deployment.outbox,
            c.deployment.inbox,
            submitter.display()
        );
    }
    toml += "[[routes]]\nsource = \"evm-a\"\ndestination = \"evm-b\"\nbatch_size = 16\n\n";
    toml += "[[routes]]\nsource = \"evm-b\"\ndestination = \"evm-a\"\nbatch_size = 16\n\n";
    toml += &format!(
        "[consortium]\nnetwork = \"{}\"\nthreshold = 2\n\n",
        devnet::NETWORK
    );
    for (j, port) in ports.iter().enumerate() {
        toml += &format!(
            "[[consortium.members]]\nname = \"bank-{j}\"\nsigner = \"0x{}\"\nattestation_url = \"https://127.0.0.1:{port}\"\n\n",
            hex::encode(member_address(j))
        );
    }
    let tls = dir.join("tls");
    isthmus_relayer::devnet::DevnetCa::new("bench CA")
        .and_then(|ca| ca.write(&tls, &["bank-0".to_owned()]))
        .expect("certificates");
    toml += &format!(
        "[http]\nlisten = \"127.0.0.1:{}\"\n\n[attestation]\nlisten = \"127.0.0.1:{}\"\n\
         certificate = \"{}\"\nkey = {{ file = \"{}\" }}\nca = \"{}\"\n\n\
         [log]\nlevel = \"info\"\nformat = \"json\"\n",
        ports[0],
        free_port(),
        tls.join("bank-0.pem").display(),
        tls.join("bank-0.key").display(),
        tls.join("ca.pem").display(),
    );
    let path = dir.join("bank-0.toml");
    std::fs::write(&path, toml).expect("config file");
    path
}

/// What one start took, measured from the spawn.
struct StartTimes {
    ready: Duration,
    first_round: Duration,
    /// The first block the `evm-b` observer scanned.
    from: u64,
}

impl StartTimes {
    fn resumed(&self) -> Duration {
        self.ready.max(self.first_round)
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `isthmus run --config config` and waits for readiness and the first
/// logged round of the `evm-b` observer.
async fn start_once(config: &Path, port: u16) -> StartTimes {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("HTTP client");
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_isthmus"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("isthmus run starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    // Stamps each log line on arrival, and drains stderr until the process ends.
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let mut ready = None;
    let mut first_round = None;
    let mut log = Vec::new();
    while (ready.is_none() || first_round.is_none()) && t0.elapsed() < START_TIMEOUT {
        if ready.is_none() {
            if let Ok(r) = http.get(&readyz).send().await {
                if r.status().as_u16() == 200 {
                    ready = Some(t0.elapsed());
                }
            }
        }
        while let Ok((at, line)) = rx.try_recv() {
            if first_round.is_none() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["fields"]["message"] == "observed" && v["span"]["ledger"] == "evm-b" {
                        let from = v["fields"]["from"].as_u64().expect("`from` in the log");
                        first_round = Some((at - t0, from));
                    }
                }
            }
            log.push(line);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop(child);
    let _ = reader.join();
    let (Some(ready), Some((first_round, from))) = (ready, first_round) else {
        panic!(
            "the relayer did not become ready and observe within {START_TIMEOUT:?}:\n{}",
            log.join("\n")
        );
    };
    StartTimes {
        ready,
        first_round,
        from,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = chain("evm-a", 1, 31337).await;
    let b = chain("evm-b", 2, 31338).await;
    let pid = std::process::id();
    let history = TempDb::create(&format!("isthmus_bench_restart_history_{pid}"), None).await;
    fill_history(&history.url, &a, &b).await;
    b.anvil.mine(AHEAD).await.expect("mine past the cursor");
    let empty = TempDb::create(&format!("isthmus_bench_restart_empty_{pid}"), None).await;
    {
        let store = Store::new(isthmus_schema::connect(&empty.url).await.expect("connect"));
        store.migrate().await.expect("migrate");
        store.pool().close().await;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let ports = [free_port(), free_port(), free_port()];
    let variants: [(&str, Option<&str>, u64); 3] = [
        ("100,000 delivered", Some(&history.name), CURSOR_BLOCK + 1),
        ("empty, migrated", Some(&empty.name), 0),
        ("new database", None, 0),
    ];
    let mut times: Vec<Vec<StartTimes>> = variants.iter().map(|_| Vec::new()).collect();
    for run in 1..=STARTS {
        for (v, (label, template, expect_from)) in variants.iter().enumerate() {
            let db = TempDb::create(&format!("isthmus_bench_restart_run_{pid}"), *template).await;
            let config = write_config(dir.path(), &db.url, [&a, &b], ports);
            let t = start_once(&config, ports[0]).await;
            drop(db);
            assert_eq!(
                t.from, *expect_from,
                "{label}: the first round starts at block {}",
                t.from
            );
            println!(
                "start {run}, {label:<18}: ready {:>6.0} ms, first round (from block {}) {:>6.0} ms",
                ms(t.ready),
                t.from,
                ms(t.first_round)
            );
            times[v].push(t);
        }
    }
    let medians: Vec<(f64, f64, f64)> = times
        .iter()
        .map(|ts| {
            let f = |g: fn(&StartTimes) -> Duration| {
                median(&ts.iter().map(|t| ms(g(t))).collect::<Vec<_>>())
            };
            (f(|t| t.ready), f(|t| t.first_round), f(StartTimes::resumed))
        })
        .collect();
    for ((label, _, _), (ready, first, resumed)) in variants.iter().zip(&medians) {
        println!(
            "median of {STARTS}, {label:<18}: ready {ready:.0} ms, first round {first:.0} ms, resumed {resumed:.0} ms"
        );
    }
    let resumed = medians[0].2;
    println!(
        "history / empty: {:.2}; target <= 2 s: {}",
        resumed / medians[1].2,
        if resumed <= 2_000.0 { "met" } else { "NOT met" }
    );

    // The start step whose cost follows the history's size: freeing the leases of
    // stopped processes reads the whole messages table.
    let mut release = Vec::new();
    for _ in 0..STARTS {
        let db = TempDb::create(
            &format!("isthmus_bench_restart_run_{pid}"),
            Some(&history.name),
        )
        .await;
        let store = Store::new(isthmus_schema::connect(&db.url).await.expect("connect"));
        let t = Instant::now();
        store
            .release_orphaned_leases("bank-0/")
            .await
            .expect("release_orphaned_leases");
        release.push(ms(t.elapsed()));
        store.pool().close().await;
    }
    println!(
        "median of {STARTS}: Store::release_orphaned_leases on a fresh copy of the history {:.0} ms",
        median(&release)
    );
    println!("machine: {}", machine_line());
}
