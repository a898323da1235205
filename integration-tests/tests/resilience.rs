//! Members down, members lying, members killed: delivery still completes, exactly
//! once, and the history says what happened.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_adapter_evm::contracts::EchoRecipient;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_completes_with_a_member_stopped_and_refuses_a_lying_member() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "liar").await;
    for m in &mut consortium.members {
        m.start();
    }
    let first = vec![
        devnet
            .a
            .dispatch(2, devnet.b.deployment.echo, 0, b"all three up")
            .await,
    ];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&first)).await,
        "{}",
        consortium.logs()
    );

    // bank-2 stops: bank-0 and bank-1 are still a quorum.
    assert!(consortium.members[2].stop().unwrap().success());
    let second = vec![
        devnet
            .a
            .dispatch(2, devnet.b.deployment.echo, 0, b"bank-2 down")
            .await,
    ];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&second)).await,
        "{}",
        consortium.logs()
    );

    // bank-2's endpoint now signs a root that was never committed.
    let liar = consortium.spawn_liar(2).await;
    let third = [
        devnet
            .a
            .dispatch(2, devnet.b.deployment.echo, 0, b"bank-2 lies")
            .await,
        devnet
            .b
            .dispatch(1, devnet.a.deployment.echo, 0, b"and on the way back")
            .await,
    ];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&third[..1])).await,
        "{}",
        consortium.logs()
    );
    assert!(
        wait_until(DELIVERY, || devnet.a.all_delivered(&third[1..])).await,
        "{}",
        consortium.logs()
    );
    liar.abort();

    for m in &consortium.members[..2] {
        let refused = m.count("SELECT count(*) FROM attestations WHERE member = 'bank-2' AND outcome = 'refused' \
             AND reason LIKE 'signed a different checkpoint%'",
        )
        .await;
        assert!(
            refused >= 1,
            "{} recorded no refused attestation of bank-2",
            m.name
        );
        // The lie never counted: the quorum recorded for the message names bank-0
        // and bank-1 only.
        let lied_about = format!("\\x{}", hex::encode(third[0]));
        let bank2_in_quorum = m
            .count(&format!(
                "SELECT count(*) FROM lifecycle_log WHERE message_id = '{lied_about}' \
                 AND event = 'attested' AND evidence->'signers' ? 'bank-2'"
            ))
            .await;
        let quorums = m
            .count(&format!(
                "SELECT count(*) FROM lifecycle_log WHERE message_id = '{lied_about}' AND event = 'attested'"
            ))
            .await;
        assert_eq!(bank2_in_quorum, 0, "{}: bank-2's lie counted", m.name);
        assert!(quorums >= 1, "{}: no attested record", m.name);
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_relayers_lose_nothing_and_deliver_exactly_once() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "crash").await;
    for m in &mut consortium.members {
        m.start();
    }
    let mut ids = Vec::new();
    let total = 24u32;
    for i in 0..total {
        ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &i.to_be_bytes())
                .await,
        );
        // SIGKILL at different points of the run, then restart.
        match i {
            4 => consortium.members[0].kill(),
            8 => consortium.members[0].start(),
            12 => {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                consortium.members[1].kill();
                consortium.members[0].kill();
            }
            14 => {
                consortium.members[0].start();
                consortium.members[1].start();
            }
            18 => {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                consortium.members[2].kill();
                consortium.members[2].start();
            }
            _ => {}
        }
    }
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&ids)).await,
        "{}",
        consortium.logs()
    );

    // Exactly once: the recipient handled each message once.
    let echo = EchoRecipient::new(devnet.b.deployment.echo, devnet.b.admin.clone());
    assert_eq!(echo.received().call().await.unwrap(), U256::from(total));

    // Nothing stuck, and every history verifies.
    for m in &consortium.members {
        let settled = wait_until(Duration::from_secs(90), || async {
            m.count("SELECT count(*) FROM messages WHERE status = 'delivered'")
                .await
                == i64::from(total)
        })
        .await;
        assert!(
            settled,
            "{} did not settle every message\n{}",
            m.name,
            consortium.logs()
        );
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}: {}",
            m.name,
            String::from_utf8_lossy(&out.stdout)
        );
        let rows = m.count("SELECT count(*) FROM deliveries").await;
        assert_eq!(
            rows,
            i64::from(total),
            "{}: one delivery row per message",
            m.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_message_is_recorded_and_never_delivered() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "expiry").await;
    // The Outbox refuses a deadline that has passed, so this one is a few seconds
    // ahead of the chain's time (the dispatch's block may come seconds later on a
    // loaded machine), and the members start once the chain's time has passed it.
    let chain_time = || devnet.a.chain_time();
    let deadline = chain_time().await + 8;
    let expired = devnet
        .a
        .dispatch(2, devnet.b.deployment.echo, deadline, b"too late")
        .await;
    assert!(
        wait_until(Duration::from_secs(60), || async {
            chain_time().await > deadline
        })
        .await,
        "evm-a's time did not pass the deadline"
    );
    for m in &mut consortium.members {
        m.start();
    }
    let fine = devnet
        .a
        .dispatch(2, devnet.b.deployment.echo, 0, b"on time")
        .await;
    let fine = [fine];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&fine)).await,
        "{}",
        consortium.logs()
    );
    for m in &consortium.members {
        let recorded = wait_until(Duration::from_secs(60), || async {
            m.count(&format!(
                "SELECT count(*) FROM messages WHERE status = 'expired' AND id = '\\x{}'",
                hex::encode(expired)
            ))
            .await
                == 1
                && m.count("SELECT count(*) FROM messages WHERE status = 'delivered'")
                    .await
                    == 1
        })
        .await;
        assert!(
            recorded,
            "{} did not record the expiry\n{}",
            m.name,
            consortium.logs()
        );
        assert_eq!(m.count("SELECT count(*) FROM deliveries").await, 1);
    }
    assert_eq!(devnet.b.delivered_count(&[expired]).await, 0);
}

/// Ids of the messages each transaction from `submitter` to `inbox` carried
/// (delivered, skipped or handler-failed: every per-message Inbox event).
async fn ids_per_transaction(
    ledger: &Ledger,
    submitter: ethers::types::Address,
) -> Vec<Vec<[u8; 32]>> {
    use ethers::contract::EthEvent;
    use ethers::providers::Middleware;
    use isthmus_adapter_evm::contracts::inbox::{
        MessageDeliveredFilter, MessageHandlerFailedFilter, MessageSkippedFilter,
    };
    let per_message = [
        MessageDeliveredFilter::signature(),
        MessageHandlerFailedFilter::signature(),
        MessageSkippedFilter::signature(),
    ];
    let filter = ethers::types::Filter::new()
        .address(ledger.deployment.inbox)
        .from_block(0u64);
    let logs = ledger.admin.get_logs(&filter).await.unwrap();
    let mut by_tx: std::collections::BTreeMap<ethers::types::H256, Vec<[u8; 32]>> =
        std::collections::BTreeMap::new();
    for log in logs {
        if !per_message.contains(&log.topics[0]) {
            continue;
        }
        let tx = log.transaction_hash.unwrap();
        let from = ledger
            .admin
            .get_transaction(tx)
            .await
            .unwrap()
            .unwrap()
            .from;
        if from == submitter {
            by_tx.entry(tx).or_default().push(log.topics[1].0);
        }
    }
    by_tx.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_a_member_share_its_database_and_never_submit_a_message_twice() {
    use ethers::signers::{LocalWallet, Signer};
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "replicas").await;
    let replica = consortium.add_replica(0);
    // bank-0 first runs alone (with bank-1; bank-2 stays down) until it has submitted
    // something; then its replica joins on the same database and both run while
    // more messages come; then the first is killed and the replica finishes.
    for i in [0, 1] {
        consortium.members[i].start();
    }
    let mut ids = Vec::new();
    for i in 0..12u8 {
        ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &[b'r', i])
                .await,
        );
    }
    let first_submitted = wait_until(DELIVERY, || async {
        consortium.members[0]
            .count("SELECT count(*) FROM lifecycle_log WHERE event = 'submitted'")
            .await
            > 0
    })
    .await;
    assert!(first_submitted, "{}", consortium.logs());
    consortium.members[replica].start();
    for i in 12..28u8 {
        ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &[b'r', i])
                .await,
        );
    }
    consortium.members[0].kill();
    for i in 28..40u8 {
        ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &[b'r', i])
                .await,
        );
    }
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&ids)).await,
        "{}",
        consortium.logs()
    );
    let echo = EchoRecipient::new(devnet.b.deployment.echo, devnet.b.admin.clone());
    assert_eq!(echo.received().call().await.unwrap(), U256::from(40));

    // bank-0's history settles with every message delivered once.
    let bank0 = &consortium.members[0];
    let settled = wait_until(Duration::from_secs(60), || async {
        bank0
            .count("SELECT count(*) FROM messages WHERE status = 'delivered'")
            .await
            == 40
    })
    .await;
    assert!(settled, "{}", consortium.logs());
    assert_eq!(bank0.count("SELECT count(*) FROM deliveries").await, 40);
    // Both processes worked: each recorded some of the claims and submissions.
    let workers = bank0
        .count(
            "SELECT count(DISTINCT actor) FROM lifecycle_log \
             WHERE event IN ('verified', 'attested', 'submitted', 'delivered')",
        )
        .await;
    assert_eq!(workers, 2, "both processes of bank-0 took part");
    // On the ledger: no message is in two of bank-0's transactions.
    let submitter = LocalWallet::from_bytes(&SUBMITTERS[0]).unwrap().address();
    let txs = ids_per_transaction(&devnet.b, submitter).await;
    let mut seen = std::collections::BTreeSet::new();
    for tx in &txs {
        for id in tx {
            if !seen.insert(*id) {
                let needle = hex::encode(id);
                let mut trace = String::new();
                for m in &consortium.members {
                    let text = std::fs::read_to_string(&m.log).unwrap_or_default();
                    for line in text.lines().filter(|l| {
                        l.contains(&needle) || l.contains("WARN") || l.contains("ERROR")
                    }) {
                        trace += &format!("{}: {line}\n", m.name);
                    }
                }
                panic!("0x{needle} was submitted twice by bank-0: {txs:?}\n{trace}");
            }
        }
    }
    assert!(!txs.is_empty(), "bank-0 submitted nothing");
    assert!(bank0.isthmus(&["audit", "verify"]).status.success());
    for i in [replica, 1] {
        let status = consortium.members[i].stop().unwrap();
        assert!(
            status.success(),
            "{} exited with {status}",
            consortium.members[i].name
        );
    }
}
