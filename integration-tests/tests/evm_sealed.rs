//! A consortium EVM ledger followed by its seals, on real recorded data.
//!
//! Each member follows a fourth ledger, `quorum` (id 7), whose node is a
//! [`ReplayServer`] per member replaying blocks 0..=100 of a real GoQuorum IBFT 1.0
//! network (five validators, chain id 1337, epoch 100; exported by geth 1.10.3 into
//! `shared/fixtures/ethereum/goquorum-ibft1-blocks-0-100.json`): the recorded headers,
//! their extra data with the validators, the proposer's seal and four validators'
//! committed seals, and the recorded block hashes. Nothing on it is re-signed or
//! synthesised; the chain has no transactions, so the route from it carries nothing.
//!
//! The members verify the chain from the genesis block as their trusted checkpoint up
//! to block 60 and persist their light clients. Then bank-0 is killed, the nodes serve
//! up to block 100 with one byte of block 80's last committed seal flipped (its hash,
//! which leaves the committed seals out, and so the hash chain stay as recorded), and
//! bank-0 restarts. Every member must resume from its stored state (no header below 60
//! is fetched again), halt the `quorum` observer at block 80 with a recorded
//! `consensus_fault`, keep its light client at block 79, and keep relaying between the
//! anvil ledgers without exiting.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::Path;
use std::time::Duration;

use isthmus_integration_tests::replay::{ReplayServer, Tamper};
use isthmus_integration_tests::*;
use serde_json::Value;

/// The replayed ledger's protocol id.
const QUORUM: u32 = 7;
/// The head the members verify before bank-0 is killed.
const SYNCED: u64 = 60;
/// The block whose committed seal is tampered with.
const TAMPERED: u64 = 80;
/// The served head after the restart.
const LATER_HEAD: u64 = 100;

const SYNC: Duration = Duration::from_secs(180);
const HALT: Duration = Duration::from_secs(180);
const DELIVERY: Duration = Duration::from_secs(150);

/// The `quorum` ledger and its route, as each member's configuration carries them.
/// Every configuration key this test relies on is here.
fn quorum_toml(rpc: &str, submitter: &Path, checkpoint_hash: &str) -> String {
    format!(
        r#"[[ledgers]]
name = "quorum"
id = {QUORUM}
kind = "evm"
rpc = ["{rpc}"]
chain_id = 1337
outbox = "0x00000000000000000000000000000000000000a1"
inbox = "0x00000000000000000000000000000000000000a2"
finality = "ibft"
epoch = 100
poll_interval_ms = 200
submitter = {{ file = "{submitter}" }}
checkpoint = {{ number = 0, hash = "{checkpoint_hash}" }}

[[ledgers.transitions]]
block = 101
finality = "qbft"
epoch = 30000

[[routes]]
source = "quorum"
destination = "evm-a"
batch_size = 16

"#,
        submitter = submitter.display()
    )
}

/// A number from the member's database, or `None` while it has none (or the schema
/// is not there yet).
async fn query_i64(m: &Member, sql: &str) -> Option<i64> {
    let pool = m.db().await;
    let n: Option<Option<i64>> = sqlx::query_scalar(sql).fetch_optional(&pool).await.ok();
    pool.close().await;
    n.flatten()
}

/// The member's light-client head on `quorum`.
async fn light_client_head(m: &Member) -> Option<i64> {
    query_i64(
        m,
        &format!("SELECT head_number FROM light_client_states WHERE ledger_id = {QUORUM}"),
    )
    .await
}

/// How many `consensus_fault` records name block `n`.
async fn faults_at(m: &Member, n: u64) -> i64 {
    query_i64(
        m,
        &format!(
            "SELECT count(*) FROM lifecycle_log WHERE event = 'consensus_fault' \
             AND evidence->>'block_number' = '{n}'"
        ),
    )
    .await
    .unwrap_or(0)
}

/// A field of a JSON log line: top level, or under `fields` (tracing's layout).
fn log_field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line.get(name)
        .or_else(|| line.get("fields").and_then(|f| f.get(name)))
}

/// Whether the member's log has an ERROR line saying the observer halted at block
/// `n`, with the rule that failed.
fn logged_halt(m: &Member, n: u64) -> bool {
    let text = std::fs::read_to_string(&m.log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|line| {
            let error = line
                .get("level")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case("error"));
            let block = log_field(&line, "block").is_some_and(|b| {
                b.as_u64() == Some(n) || b.as_str() == Some(n.to_string().as_str())
            });
            let rule = log_field(&line, "rule").is_some();
            let halted = log_field(&line, "message")
                .and_then(Value::as_str)
                .is_some_and(|msg| msg.to_ascii_lowercase().contains("halted"));
            error && block && rule && halted
        })
}

/// Why a member has not halted yet (for failure messages).
async fn halt_status(m: &Member) -> String {
    format!(
        "{}: logged halt {}, consensus_fault rows {}, light-client head {:?}",
        m.name,
        logged_halt(m, TAMPERED),
        faults_at(m, TAMPERED).await,
        light_client_head(m).await
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_committed_seal_halts_the_ledger_and_nothing_else() {
    let devnet = Devnet::start().await;
    let replays = [
        ReplayServer::goquorum_ibft1().await,
        ReplayServer::goquorum_ibft1().await,
        ReplayServer::goquorum_ibft1().await,
    ];
    for r in &replays {
        r.set_head(SYNCED);
    }
    let urls: Vec<String> = replays.iter().map(ReplayServer::url).collect();
    let genesis = replays[0].recorded_hash(0);
    let mut consortium = Consortium::with_extra(&devnet, "sealed", |m| {
        quorum_toml(&urls[m.index], &m.submitter, &genesis)
    })
    .await;
    for m in &mut consortium.members {
        m.start();
    }

    // Every member verifies the recorded chain up to the served head.
    for m in &consortium.members {
        let synced = wait_until(SYNC, || async {
            light_client_head(m).await == Some(SYNCED as i64)
        })
        .await;
        assert!(
            synced,
            "{}'s light client did not reach block {SYNCED} (head {:?}; unknown methods asked: {:?})\n{}",
            m.name,
            light_client_head(m).await,
            replays[m.index].unknown_methods(),
            consortium.logs()
        );
    }

    // bank-0 dies; meanwhile the chain grows to 100 with block 80's seal broken.
    consortium.members[0].kill();
    for r in &replays {
        r.clear_requests();
        r.tamper(TAMPERED, Tamper::CommittedSeal);
        r.set_head(LATER_HEAD);
    }
    consortium.members[0].start();

    // (b) Each member halts the ledger at block 80, with evidence.
    for m in &consortium.members {
        let halted = wait_until(HALT, || async {
            logged_halt(m, TAMPERED)
                && faults_at(m, TAMPERED).await >= 1
                && light_client_head(m).await == Some(TAMPERED as i64 - 1)
        })
        .await;
        assert!(
            halted,
            "{} did not halt at block {TAMPERED}: {}\n{}",
            m.name,
            halt_status(m).await,
            consortium.logs()
        );
    }

    // (a) No member fetched a header below its stored head again: bank-0 resumed from
    // its persisted light client, the others went on from theirs.
    for (m, r) in consortium.members.iter().zip(&replays) {
        let fetched = r.header_numbers_fetched();
        let below: Vec<u64> = fetched.iter().copied().filter(|&n| n < SYNCED).collect();
        assert!(
            below.is_empty(),
            "{} fetched headers below {SYNCED} after the restart: {below:?}\n{}",
            m.name,
            consortium.logs()
        );
        assert!(
            fetched.contains(&TAMPERED),
            "{} never fetched block {TAMPERED}: {fetched:?}",
            m.name
        );
    }

    // The evidence: the ledger, the block, its recorded hash, the rule, and the
    // offending header as served (its tampered extra data).
    let tampered_extra = replays[0].served_block(TAMPERED)["extraData"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .to_ascii_lowercase();
    let block_hash = replays[0]
        .recorded_hash(TAMPERED)
        .trim_start_matches("0x")
        .to_ascii_lowercase();
    let parent_hash = replays[0]
        .recorded_hash(TAMPERED - 1)
        .trim_start_matches("0x")
        .to_ascii_lowercase();
    for m in &consortium.members {
        let pool = m.db().await;
        let evidence: String = sqlx::query_scalar(&format!(
            "SELECT evidence::text FROM lifecycle_log WHERE event = 'consensus_fault' \
             AND evidence->>'block_number' = '{TAMPERED}' ORDER BY seq LIMIT 1"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        let head_hash: String = sqlx::query_scalar(&format!(
            "SELECT encode(head_hash, 'hex') FROM light_client_states WHERE ledger_id = {QUORUM}"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        let json: Value = serde_json::from_str(&evidence).unwrap();
        let ledger = &json["ledger"];
        assert!(
            ledger.as_str() == Some("quorum") || ledger.as_u64() == Some(u64::from(QUORUM)),
            "{}: evidence names ledger {ledger}: {evidence}",
            m.name
        );
        assert!(
            json["block_hash"]
                .as_str()
                .is_some_and(|h| h.to_ascii_lowercase().ends_with(&block_hash)),
            "{}: evidence has not block 80's hash: {evidence}",
            m.name
        );
        assert!(
            json["rule"].as_str().is_some_and(|r| !r.is_empty()),
            "{}: evidence names no rule: {evidence}",
            m.name
        );
        assert!(
            evidence.to_ascii_lowercase().contains(&tampered_extra),
            "{}: evidence does not carry the offending header: {evidence}",
            m.name
        );
        assert_eq!(
            head_hash, parent_hash,
            "{}: the light client's head is not block 79",
            m.name
        );
    }

    // (c) The other routes keep running.
    let ids = [devnet
        .a
        .dispatch(2, devnet.b.deployment.echo, 0, b"after the quorum halt")
        .await];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&ids)).await,
        "evm-a -> evm-b stopped with the quorum ledger\n{}",
        consortium.logs()
    );

    // (d) Nobody exited, the halt stayed one record, the light client stayed at 79.
    for m in &mut consortium.members {
        assert!(m.is_running(), "{} exited\n{}", m.name, m.log_tail());
    }
    for m in &consortium.members {
        assert_eq!(
            faults_at(m, TAMPERED).await,
            1,
            "{}: the halted ledger recorded the fault more than once\n{}",
            m.name,
            consortium.logs()
        );
        assert_eq!(
            light_client_head(m).await,
            Some(TAMPERED as i64 - 1),
            "{}: the light client moved after the halt",
            m.name
        );
    }

    // (e) The operator's view: `light-client status` shows the head, the set and the
    // halt. A reset is refused while the member runs, and recorded once it is stopped.
    let status = consortium.members[0].isthmus(&["light-client", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(
        text.contains("quorum (#7): ibft from checkpoint 0")
            && text.contains(&format!("verified head {}", TAMPERED - 1))
            && text.contains("5 validators")
            && text.contains(&format!("HALTED at block {TAMPERED}")),
        "{text}"
    );
    let reset = [
        "light-client",
        "reset",
        "--ledger",
        "quorum",
        "--operator",
        "it",
        "--reason",
        "new checkpoint agreed",
    ];
    let refused = consortium.members[0].isthmus(&reset);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("are running"),
        "{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert_eq!(
        light_client_head(&consortium.members[0]).await,
        Some(TAMPERED as i64 - 1)
    );
    assert!(consortium.members[0].stop().is_some());
    let done = consortium.members[0].isthmus(&reset);
    let text = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(text.contains("discarded the light-client state"), "{text}");
    assert_eq!(light_client_head(&consortium.members[0]).await, None);
    assert_eq!(
        consortium.members[0]
            .count(
                "SELECT count(*) FROM operator_actions WHERE action = 'reset_light_client' \
                 AND ledger_id = 7 AND operator = 'it'"
            )
            .await,
        1
    );
    assert_eq!(
        consortium.members[0]
            .count(
                "SELECT count(*) FROM lifecycle_log WHERE event = 'operator' \
                 AND evidence->>'action' = 'reset_light_client'"
            )
            .await,
        1
    );
    let audit = consortium.members[0].isthmus(&["audit", "verify"]);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}
