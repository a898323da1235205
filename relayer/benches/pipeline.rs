//! Off-chain pipeline throughput of one relayer: observe -> verify -> record.
//!
//! At start the bench records, from a real anvil with the Outbox deployed, what a
//! relayer's node would answer for 20,000 dispatched messages: the `eth_getLogs`
//! response of each scanned range, every header (`eth_getBlockByNumber`) and the
//! `eth_getProof` of the Outbox's root and count at each range's last block. The
//! measured loop then does, per range, what the relayer's observer and verifier do
//! with those answers: decode the logs into protocol messages and check their ids
//! (as `EvmSource::scan`), verify the header chain and the account proof with the
//! light client and build the `VerifiedCheckpoint` (as
//! `Source::verify_checkpoint` of `EvmLedger`), check each message's Merkle branch against the
//! proven root and count (the leaves are kept in memory, where the deliverer reads
//! them back with `Store::outbox_leaves`), and `Store::record_observed` the range
//! into a fresh migrated database. Chain IO is the only part replaced.
//!
//! Baseline, in the same run: a raw `COPY messages (...) FROM STDIN` of the same
//! rows into a fresh migrated database, the physical bound of writing them.
//!
//! Then the same with receipts flowing (docs/protocol.md, "Receipts"): a second
//! recording in which one message in [`RECEIPT_EVERY`] is a receipt batch of
//! [`RECEIPTS_PER_BATCH`] receipts (a route whose other direction carries as many
//! messages), found among the observed messages as the observer finds them
//! (`pipeline::receipts::carried`) and recorded with their range
//! (`Store::record_observed_round`: one `receipts` row and one `receipt` log row
//! each).
//!
//! Run with `cargo bench -p isthmus-relayer --bench pipeline` (Postgres from
//! `DATABASE_URL`, anvil from `make devnet-tools`).

use std::time::{Duration, Instant};

use ethers::contract::EthEvent;
use ethers::providers::Middleware;
use ethers::signers::{LocalWallet, Signer};
use ethers::types::transaction::eip2718::TypedTransaction;
use ethers::types::{Bytes, Filter, Log, TransactionRequest, H256, U256};
use futures::{StreamExt, TryStreamExt};
use isthmus_adapter_evm::contracts::outbox::{DispatchFilter, Outbox};
use isthmus_adapter_evm::devnet::{self, Anvil, DEV_DAPP_KEY, DEV_KEY_0};
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{EvmSource, ObservedMessage};
use isthmus_light_client_evm::{AccountProof, EvmLightClient, Header, TrustedCheckpoint, B256};
use isthmus_protocol::{Address32, MerkleTree};
use isthmus_relayer::pipeline::receipts::carried;
use isthmus_relayer::verified::VerifiedCheckpoint;
use isthmus_schema::{
    BlockRef, CursorKey, FinalityMode, Ledger, LedgerKind, NewMessage, ObservedRange,
    ObservedReceipt, Stage, Store,
};
use sqlx::postgres::PgPoolCopyExt;

mod common;
use common::{machine_line, median, ms, TempDb};

/// The source ledger's protocol id.
const LEDGER_ID: u32 = 1;
/// Its chain id.
const CHAIN_ID: u64 = 31337;
/// Messages recorded and pushed through the pipeline in each run.
const MESSAGES: usize = 20_000;
/// Dispatches mined per block.
const PER_BLOCK: usize = 100;
/// Blocks per observer round, so that a round records 2,000 messages.
const RANGE_BLOCKS: u64 = 20;
/// Body size: an inter-bank clearing instruction is 128 bytes.
const BODY_LEN: usize = 128;
/// Measured runs of each side.
const RUNS: usize = 5;
/// Actor written into the lifecycle log.
const WORKER: &str = "bench/pipeline";
/// With receipts flowing: one message in this many is a receipt batch.
const RECEIPT_EVERY: usize = 17;
/// Receipts in each batch: the ends of the 16 messages the other direction sent
/// meanwhile.
const RECEIPTS_PER_BATCH: usize = 16;

/// What the node answered for one observer round.
struct RangeResponses {
    from: u64,
    to: u64,
    to_hash: [u8; 32],
    /// `eth_getLogs` result for the Outbox's `Dispatch` topic in `from..=to`.
    logs: String,
    /// `eth_getBlockByNumber(n, false)` for every `n` in `from..=to`.
    headers: Vec<String>,
    /// `eth_getProof(outbox, [slot 0, slot 33], to)`.
    proof: String,
}

/// The recorded answers of a whole pass.
struct Recording {
    outbox: [u8; 20],
    /// With receipts: the (sender, recipient) of receipt batches, i.e. the Inboxes of
    /// this ledger and of the destination.
    receipt_endpoints: Option<([u8; 32], [u8; 32])>,
    /// The light client's trusted start: the block before the first range.
    trusted: TrustedCheckpoint,
    ranges: Vec<RangeResponses>,
}

fn body(i: usize) -> Vec<u8> {
    let mut b = vec![0u8; BODY_LEN];
    b[..8].copy_from_slice(&(i as u64).to_be_bytes());
    b[8..16].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    b
}

/// A receipt batch body: the receipts of [`RECEIPTS_PER_BATCH`] messages of the other
/// direction, one of each outcome in turn.
fn receipt_body(i: usize) -> Vec<u8> {
    use isthmus_protocol::{MessageId, Receipt, ReceiptOutcome};
    let outcomes = [
        ReceiptOutcome::Delivered,
        ReceiptOutcome::Refused,
        ReceiptOutcome::Expired,
    ];
    let receipts: Vec<Receipt> = (0..RECEIPTS_PER_BATCH)
        .map(|k| Receipt {
            id: MessageId(isthmus_protocol::keccak256(
                format!("bench receipt {i} {k}").as_bytes(),
            )),
            nonce: (i * RECEIPTS_PER_BATCH + k) as u64,
            outcome: outcomes[k % 3],
            result: [k as u8; 32],
        })
        .collect();
    Receipt::encode_batch(&receipts)
}

/// Whether message `i` of a recording with receipts is a receipt batch.
fn is_receipt_batch(receipts: bool, i: usize) -> bool {
    receipts && i % RECEIPT_EVERY == RECEIPT_EVERY - 1
}

/// Dispatches `MESSAGES` messages on a fresh anvil, `PER_BLOCK` per block, and
/// records the responses a relayer's observer and verifier would get. With
/// `receipts`, one message in [`RECEIPT_EVERY`] is a receipt batch (from the dApp
/// account, standing for this ledger's Inbox, to the echo contract, standing for the
/// destination's).
async fn record(anvil: &Anvil, receipts: bool) -> Recording {
    let url = anvil.url();
    let deployment = devnet::deploy(&url, CHAIN_ID, LEDGER_ID, &DEV_KEY_0, devnet::NETWORK)
        .await
        .expect("endpoints deploy on anvil");
    let provider = anvil.provider().expect("anvil provider");
    let _: serde_json::Value = provider
        .request("evm_setAutomine", (false,))
        .await
        .expect("automine off");
    let client = devnet::client(&url, CHAIN_ID, &DEV_DAPP_KEY).expect("dApp client");
    let wallet = LocalWallet::from_bytes(&DEV_DAPP_KEY)
        .expect("dApp key")
        .with_chain_id(CHAIN_ID);
    let outbox = Outbox::new(deployment.outbox, client.clone());
    let recipient = Address32::from_evm(deployment.sink.0).0;
    let other_inbox = Address32::from_evm(deployment.echo.0).0;
    let gas = outbox
        .dispatch(2, recipient, 0, Bytes::from(body(0)))
        .estimate_gas()
        .await
        .expect("estimate dispatch gas")
        * U256::from(2);
    let batch_gas = outbox
        .dispatch(2, other_inbox, 0, Bytes::from(receipt_body(0)))
        .estimate_gas()
        .await
        .expect("estimate receipt batch gas")
        * U256::from(2);
    let gas_price = provider.get_gas_price().await.expect("gas price") * U256::from(4);
    let mut nonce = provider
        .get_transaction_count(wallet.address(), None)
        .await
        .expect("nonce");
    let start = provider.get_block_number().await.expect("head").as_u64();
    let source = EvmSource::new(&url, deployment.outbox, LEDGER_ID).expect("source");
    let trusted = source
        .block_ref(start)
        .await
        .expect("start block")
        .expect("start block exists");

    let blocks = MESSAGES.div_ceil(PER_BLOCK);
    for b in 0..blocks {
        let mut raw = Vec::with_capacity(PER_BLOCK);
        for j in 0..PER_BLOCK.min(MESSAGES - b * PER_BLOCK) {
            let i = b * PER_BLOCK + j;
            let (to, payload, limit) = if is_receipt_batch(receipts, i) {
                (other_inbox, receipt_body(i), batch_gas)
            } else {
                (recipient, body(i), gas)
            };
            let data = outbox
                .dispatch(2, to, 0, Bytes::from(payload))
                .calldata()
                .expect("dispatch calldata");
            let tx: TypedTransaction = TransactionRequest::new()
                .to(deployment.outbox)
                .data(data)
                .gas(limit)
                .gas_price(gas_price)
                .nonce(nonce)
                .chain_id(CHAIN_ID)
                .into();
            nonce += U256::one();
            let sig = wallet.sign_transaction_sync(&tx).expect("sign");
            raw.push(tx.rlp_signed(&sig));
        }
        let provider = &provider;
        let _: Vec<H256> = futures::stream::iter(raw)
            .map(|tx| async move {
                provider
                    .request::<_, H256>("eth_sendRawTransaction", [tx])
                    .await
            })
            .buffered(16)
            .try_collect()
            .await
            .expect("dispatch transactions accepted");
        anvil.mine(1).await.expect("mine a block");
    }
    // The finalized tag trails the head by two blocks.
    anvil.mine(3).await.expect("mine past finality");
    let count = outbox.count().call().await.expect("outbox count");
    assert_eq!(count, U256::from(MESSAGES), "every dispatch was mined");
    let last = start + blocks as u64;
    let finalized = source.finalized().await.expect("finalized");
    assert!(finalized.number >= last, "the recorded blocks are final");

    let mut ranges = Vec::new();
    let mut from = start + 1;
    while from <= last {
        let to = (from + RANGE_BLOCKS - 1).min(last);
        let filter = Filter::new()
            .address(deployment.outbox)
            .topic0(DispatchFilter::signature())
            .from_block(from)
            .to_block(to);
        let logs: serde_json::Value = provider
            .request("eth_getLogs", [&filter])
            .await
            .expect("eth_getLogs");
        let mut headers = Vec::new();
        for n in from..=to {
            headers.push(source.header_json(n).await.expect("header").to_string());
        }
        let to_ref = source
            .block_ref(to)
            .await
            .expect("block")
            .expect("block exists");
        let proof = source.outbox_proof(to_ref).await.expect("eth_getProof");
        ranges.push(RangeResponses {
            from,
            to,
            to_hash: to_ref.hash,
            logs: logs.to_string(),
            headers,
            proof: proof.proof_json.to_string(),
        });
        from = to + 1;
    }
    let dapp = Address32::from_evm(wallet.address().0).0;
    Recording {
        outbox: deployment.outbox.0,
        receipt_endpoints: receipts.then_some((dapp, other_inbox)),
        trusted: TrustedCheckpoint {
            number: trusted.number,
            hash: B256(trusted.hash),
        },
        ranges,
    }
}

/// The relayer's row for an observed message (as `Source::scan` makes it).
fn new_message(o: &ObservedMessage) -> NewMessage {
    NewMessage::from_protocol(&o.message, o.id, o.block, Some(o.tx_hash.0))
}

/// Observe and verify one recorded range: decoded, checked messages, and the
/// receipts their receipt batches carry (found as the observer finds them).
fn observe_and_verify(
    r: &RangeResponses,
    rec: &Recording,
    client: &mut EvmLightClient,
    leaves: &mut Vec<[u8; 32]>,
) -> (Vec<NewMessage>, Vec<ObservedReceipt>) {
    let outbox = rec.outbox;
    // Observe: the logs as the provider deserializes them, in chain order.
    let mut logs: Vec<Log> = serde_json::from_str(&r.logs).expect("eth_getLogs result parses");
    logs.sort_by_key(|l| (l.block_number, l.log_index));
    // The relayer's own decoder; decoding does no IO, so the URL is never contacted.
    let decoder = EvmSource::new("http://127.0.0.1:9", outbox.into(), LEDGER_ID).expect("decoder");
    let mut observed = Vec::with_capacity(logs.len());
    for log in logs {
        match decoder
            .decode_log(log)
            .expect("log is mined and the Outbox's")
        {
            Scanned::Message(m) => observed.push(m),
            Scanned::Rejected { reason, .. } => panic!("recorded log rejected: {reason}"),
        }
    }

    // Verify: header chain, then the Outbox's account proof at the range's end.
    let headers: Vec<Header> = r
        .headers
        .iter()
        .map(|text| {
            let json: serde_json::Value = serde_json::from_str(text).expect("header JSON");
            Header::from_rpc_json(&json.to_string()).expect("header decodes")
        })
        .collect();
    let verified = client.verify_headers(headers).expect("header chain links");
    let header = verified.last().expect("range has headers");
    assert_eq!(
        header.block_hash().0,
        r.to_hash,
        "verified head is the range's end"
    );
    let proof: serde_json::Value = serde_json::from_str(&r.proof).expect("proof JSON");
    let account = AccountProof::from_rpc_json(&proof.to_string())
        .and_then(|p| header.verify_account_proof(&p))
        .expect("account proof verifies");
    let finality = isthmus_relayer::ledger::follow::describe(header);
    let verified = VerifiedCheckpoint::from_evm(LEDGER_ID, outbox, header, &account, &finality)
        .expect("proof makes a checkpoint");
    let checkpoint = verified.checkpoint();

    // Every message is a leaf of the proven tree, at its nonce.
    leaves.extend(observed.iter().map(|m| m.id.0));
    assert_eq!(leaves.len() as u64, u64::from(checkpoint.count), "count");
    let tree = MerkleTree::from_leaves(leaves.clone()).expect("tree");
    assert_eq!(
        tree.root(),
        checkpoint.root,
        "observed messages give the proven root"
    );
    let count = u64::from(checkpoint.count);
    for m in &observed {
        let branch = tree.branch(m.message.nonce).expect("branch");
        assert!(
            branch.verify(&m.id.0, &checkpoint.root, count),
            "branch of nonce {}",
            m.message.nonce
        );
    }
    let messages: Vec<NewMessage> = observed.iter().map(new_message).collect();
    let (from, to) = rec.receipt_endpoints.unzip();
    let mut receipts = Vec::new();
    for m in &messages {
        receipts.extend(carried(m, from, to).expect("receipt batches carry receipts"));
    }
    (messages, receipts)
}

async fn fresh_store(name: &str) -> (TempDb, Store) {
    let db = TempDb::create(name, None).await;
    let store = Store::new(isthmus_schema::connect(&db.url).await.expect("connect"));
    store.migrate().await.expect("migrate");
    store
        .upsert_ledger(&Ledger {
            id: LEDGER_ID,
            name: "evm-a".into(),
            kind: LedgerKind::Evm,
            finality: FinalityMode::FinalizedTag,
        })
        .await
        .expect("ledger row");
    (db, store)
}

/// One pass of the pipeline over the recording; returns the total time and the
/// part spent in `record_observed`.
async fn pipeline_run(rec: &Recording, store: &Store) -> (Duration, Duration) {
    let key = CursorKey {
        ledger: LEDGER_ID,
        destination: None,
        stage: Stage::Observe,
    };
    let mut client = EvmLightClient::finalized_tag(rec.trusted);
    let mut leaves = Vec::with_capacity(MESSAGES);
    let mut in_db = Duration::ZERO;
    let start = Instant::now();
    for r in &rec.ranges {
        let cursor = store.load_cursor(key).await.expect("load cursor");
        assert_eq!(cursor.map_or(r.from, |c| c.block.number + 1), r.from);
        let (messages, receipts) = observe_and_verify(r, rec, &mut client, &mut leaves);
        let t = Instant::now();
        let range = ObservedRange {
            block: BlockRef {
                number: r.to,
                hash: r.to_hash,
            },
            messages: &messages,
            rejected: &[],
            receipts: &receipts,
            light_client: None,
        };
        let outcome = store
            .record_observed_round(key, range, WORKER)
            .await
            .expect("record_observed_round");
        in_db += t.elapsed();
        assert_eq!(outcome.inserted, messages.len());
    }
    (start.elapsed(), in_db)
}

fn hex_bytea(out: &mut String, bytes: &[u8]) {
    // COPY text format: the bytea hex form `\x..` with its backslash escaped.
    out.push_str("\\\\x");
    out.push_str(&hex::encode(bytes));
}

/// The rows of `messages` in COPY text format, as `record_observed` inserts them.
fn copy_text(messages: &[NewMessage]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(messages.len() * 1200);
    for m in messages {
        hex_bytea(&mut out, &m.id.0);
        let _ = write!(out, "\t{}\t{}\t{}\t", m.version, m.nonce, m.origin);
        hex_bytea(&mut out, &m.sender);
        let _ = write!(out, "\t{}\t", m.destination);
        hex_bytea(&mut out, &m.recipient);
        let _ = write!(out, "\t{}\t", m.deadline);
        hex_bytea(&mut out, &m.body);
        out.push('\t');
        hex_bytea(&mut out, &m.canonical);
        let _ = write!(out, "\tobserved\t{}\t", m.source_block.number);
        hex_bytea(&mut out, &m.source_block.hash);
        out.push('\t');
        match m.source_tx_hash {
            Some(h) => hex_bytea(&mut out, &h),
            None => out.push_str("\\N"),
        }
        out.push('\n');
    }
    out.into_bytes()
}

async fn copy_run(rows: &[u8], store: &Store) -> Duration {
    let start = Instant::now();
    let mut copy = store
        .pool()
        .copy_in_raw(
            "COPY messages (id, version, nonce, origin, sender, destination, recipient, \
             deadline, body, canonical, status, source_block_number, source_block_hash, \
             source_tx_hash) FROM STDIN",
        )
        .await
        .expect("COPY starts");
    copy.send(rows).await.expect("COPY data");
    let n = copy.finish().await.expect("COPY ends");
    let elapsed = start.elapsed();
    assert_eq!(n, MESSAGES as u64);
    elapsed
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let plain = measure(false).await;
    let with_receipts = measure(true).await;
    println!(
        "with receipts flowing: {:.0} msg/s against {:.0} msg/s without, ratio {:.2}; pipeline/COPY {:.3} against {:.3}",
        with_receipts.0,
        plain.0,
        with_receipts.0 / plain.0,
        with_receipts.1,
        plain.1
    );
    println!("machine: {}", machine_line());
}

/// Records a pass (with receipt batches or not) and measures it: the medians of
/// the pipeline's msg/s and of pipeline/COPY.
async fn measure(receipts: bool) -> (f64, f64) {
    let label = if receipts {
        "pipeline with receipts"
    } else {
        "pipeline"
    };
    let setup = Instant::now();
    let anvil = Anvil::spawn_with(CHAIN_ID, &["--gas-limit", "1000000000"])
        .expect("anvil starts (make devnet-tools)");
    let rec = record(&anvil, receipts).await;
    drop(anvil);
    let batches = (0..MESSAGES)
        .filter(|i| is_receipt_batch(receipts, *i))
        .count();
    let expected_receipts = batches * RECEIPTS_PER_BATCH;
    println!(
        "{label}: recorded {MESSAGES} messages ({batches} of them receipt batches carrying {expected_receipts} receipts; {PER_BLOCK} per block, {BODY_LEN}-byte bodies) in {} rounds of {RANGE_BLOCKS} blocks from anvil in {:.1} s",
        rec.ranges.len(),
        setup.elapsed().as_secs_f64()
    );

    // The baseline's rows: exactly what the pipeline records.
    let mut client = EvmLightClient::finalized_tag(rec.trusted);
    let mut leaves = Vec::new();
    let rows: Vec<NewMessage> = rec
        .ranges
        .iter()
        .flat_map(|r| observe_and_verify(r, &rec, &mut client, &mut leaves).0)
        .collect();
    assert_eq!(rows.len(), MESSAGES);
    let text = copy_text(&rows);

    let pid = std::process::id();
    let tag = if receipts { "r" } else { "p" };
    let mut pipeline = Vec::new();
    let mut db_share = Vec::new();
    let mut copy = Vec::new();
    for run in 1..=RUNS {
        let (db, store) = fresh_store(&format!("isthmus_bench_pipeline_{tag}{pid}_{run}")).await;
        let (total, in_db) = pipeline_run(&rec, &store).await;
        assert_eq!(
            count(&store, "SELECT count(*) FROM messages").await,
            MESSAGES as i64
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM lifecycle_log WHERE event = 'observed'"
            )
            .await,
            MESSAGES as i64
        );
        assert_eq!(
            count(&store, "SELECT count(*) FROM receipts").await,
            expected_receipts as i64
        );
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM lifecycle_log WHERE event = 'receipt'"
            )
            .await,
            expected_receipts as i64
        );
        store.pool().close().await;
        drop(db);

        let (db, store) = fresh_store(&format!("isthmus_bench_copy_{tag}{pid}_{run}")).await;
        let copied = copy_run(&text, &store).await;
        store.pool().close().await;
        drop(db);

        let p = MESSAGES as f64 / total.as_secs_f64();
        let c = MESSAGES as f64 / copied.as_secs_f64();
        println!(
            "{label} run {run}: {p:>8.0} msg/s ({:.0} ms, recording {:.0} ms); COPY {c:>8.0} rows/s ({:.0} ms)",
            ms(total),
            ms(in_db),
            ms(copied)
        );
        pipeline.push(p);
        db_share.push(in_db.as_secs_f64() / total.as_secs_f64());
        copy.push(c);
    }
    let p = median(&pipeline);
    let c = median(&copy);
    println!(
        "{label}: median of {RUNS}: {p:.0} msg/s, COPY {c:.0} rows/s, pipeline/COPY {:.3}; recording is {:.0} % of the pipeline's time",
        p / c,
        median(&db_share) * 100.0
    );
    println!(
        "{label}: target >= 5,000 msg/s: {}",
        if p >= 5_000.0 { "met" } else { "NOT met" }
    );
    (p, p / c)
}
