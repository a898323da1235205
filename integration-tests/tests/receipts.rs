//! The receipt leg end to end, on real anvils, a real Postgres and three real
//! `isthmus run` members (threshold 2), on routes whose Inboxes send receipts back
//! (docs/protocol.md, "Receipts"): every message a contract sends ends once on its
//! destination, and its receipt, relayed by the same pipeline as any message,
//! reaches the sending contract, also when a member is killed (SIGKILL) during the
//! return leg.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_adapter_evm::contracts::EchoRecipient;
use isthmus_integration_tests::*;
use isthmus_protocol::{keccak256, Address32};

const DELIVERY: Duration = Duration::from_secs(180);

fn code(text: &str) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..text.len()].copy_from_slice(text.as_bytes());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_comes_back_to_the_sending_contract_and_each_history_shows_it() {
    const ESCROW: &str = "isthmus_escrow_outstanding{currency=\"EUR\",route=\"evm-a->evm-b\"}";
    let devnet = Devnet::start_with_receipts().await;
    let mut consortium = Consortium::new(&devnet, "receipts").await;
    let (a, b) = (&devnet.a, &devnet.b);
    let refuser = EchoRecipient::deploy(b.admin.clone(), b.deployment.inbox)
        .unwrap()
        .send()
        .await
        .unwrap();
    refuser
        .set_refusal_code(code("unknown bank"))
        .send()
        .await
        .unwrap()
        .await
        .unwrap();

    // Payments from evm-a's clearing app: BANK_A pays from its balance (the admin
    // operates it); evm-a's ledger holds 500 of liquidity on evm-b.
    let (pay_a, app_b) = (a.clearing(), b.clearing());
    for call in [
        pay_a.set_bank_owner(BANK_A, a.admin_address()),
        pay_a.set_peer(b.id, Address32::from_evm(b.deployment.clearing.0).0),
        pay_a.open_ledger_account(b.id, U256::zero()),
        app_b.set_peer(a.id, Address32::from_evm(a.deployment.clearing.0).0),
        app_b.open_ledger_account(a.id, U256::from(500)),
    ] {
        call.send().await.unwrap().await.unwrap();
    }
    let opening = (holdings(&pay_a).await, holdings(&app_b).await);

    // A deadline a few seconds ahead (the Outbox refuses one already passed); the
    // members start once both chains' time has passed it.
    let deadline = a.chain_time().await + 8;
    let payment = |uetr: u8, creditor: [u8; 32], amount: u64, deadline: u64| {
        pay_a.pay(
            b.id,
            [uetr; 32],
            BANK_A,
            creditor,
            U256::from(amount),
            deadline,
        )
    };
    let mut payments = Vec::new();
    for call in [
        payment(1, BANK_B, 100, 0),
        payment(2, [0xee; 32], 40, 0),
        payment(3, BANK_B, 30, deadline),
    ] {
        let r = call.send().await.unwrap().await.unwrap().unwrap();
        payments.push(dispatched(&r).unwrap());
    }
    let settled = a
        .send_from_echo(b.id, b.deployment.echo, 0, b"settle me")
        .await;
    let refused = a
        .send_from_echo(b.id, refuser.address(), 0, b"to a refuser")
        .await;
    let expired = a
        .send_from_echo(b.id, b.deployment.echo, deadline, b"too late")
        .await;
    // The other way too: evm-b's app sends to evm-a.
    let back_the_other_way = b
        .send_from_echo(a.id, a.deployment.echo, 0, b"hello a")
        .await;
    assert!(
        wait_until(Duration::from_secs(60), || async {
            a.chain_time().await > deadline && b.chain_time().await > deadline
        })
        .await,
        "the chains' time did not pass the deadline"
    );
    for m in &mut consortium.members {
        m.start();
    }
    // While the payments wait for their receipts, their escrow shows per route: the
    // three payments of 100, 40 and 30 (the clearing app is a payment app in the
    // members' configuration).
    let bank0 = &consortium.members[0];
    let escrow = || async {
        // Nothing while the member's HTTP server is not up yet.
        let url = format!("http://127.0.0.1:{}/metrics", bank0.port);
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        metric(&text, ESCROW)
    };
    assert!(
        wait_until(DELIVERY, || async { escrow().await == Some(170.0) }).await,
        "the escrow of the three payments never showed\n{}",
        bank0.metrics().await
    );

    // Once the return leg has begun (evm-b's Inbox sent a receipt batch: evm-b's
    // Outbox holds more than the one message its app sent), a member is killed with
    // SIGKILL and restarted: nothing may be lost or recorded twice.
    let return_leg = wait_until(DELIVERY, || async {
        b.outbox().count().call().await.unwrap() > U256::one()
    })
    .await;
    assert!(
        return_leg,
        "no receipt batch left evm-b\n{}",
        consortium.logs()
    );
    consortium.members[1].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    consortium.members[1].start();

    let app_a = EchoRecipient::new(a.deployment.echo, a.admin.clone());
    let echo_b = EchoRecipient::new(b.deployment.echo, b.admin.clone());
    let arrived = wait_until(DELIVERY, || async {
        app_a.receipts().call().await.unwrap() == U256::from(3)
            && echo_b.receipts().call().await.unwrap() == U256::one()
            && pay_a.escrowed().call().await.unwrap().is_zero()
    })
    .await;
    assert!(
        arrived,
        "not every receipt came back\n{}",
        consortium.logs()
    );
    for (id, outcome, result) in [
        (settled, 1u8, keccak256(b"settle me")),
        (refused, 2, code("unknown bank")),
        (expired, 3, [0; 32]),
    ] {
        assert_eq!(app_a.receipt_outcome(id).call().await.unwrap(), outcome);
        assert_eq!(app_a.receipt_result(id).call().await.unwrap(), result);
    }
    assert_eq!(
        echo_b
            .receipt_outcome(back_the_other_way)
            .call()
            .await
            .unwrap(),
        1
    );
    // Only the settled message was handed to its recipient; the refused and
    // expired ones ended undelivered, for good.
    assert_eq!(b.delivered_count(&[settled, refused, expired]).await, 1);
    assert_eq!(refuser.received().call().await.unwrap(), U256::zero());

    // The payment that was credited settled; the refused and expired ones came back
    // to BANK_A; no value was made or lost on either ledger.
    let states: Vec<u8> = {
        let mut v = Vec::new();
        for id in &payments {
            v.push(pay_a.escrows(*id).call().await.unwrap().4);
        }
        v
    };
    assert_eq!(states, vec![2, 3, 3], "settled, returned, returned");
    assert_eq!(
        pay_a.balance_of(BANK_A).call().await.unwrap(),
        U256::from(1_000_000 - 100)
    );
    assert_eq!(
        pay_a.ledger_balance(b.id).call().await.unwrap(),
        U256::from(100)
    );
    assert_eq!(
        app_b.balance_of(BANK_B).call().await.unwrap(),
        U256::from(100)
    );
    assert_eq!(
        app_b.ledger_balance(a.id).call().await.unwrap(),
        U256::from(400)
    );
    assert_eq!((holdings(&pay_a).await, holdings(&app_b).await), opening);

    // Every member's history ends each message as its destination did, and holds
    // the receipt batches as delivered messages.
    for m in &consortium.members {
        let recorded = wait_until(Duration::from_secs(90), || async {
            m.status(settled).await.as_deref() == Some("delivered")
                && m.status(refused).await.as_deref() == Some("refused")
                && m.status(expired).await.as_deref() == Some("expired")
                && m.status(payments[0]).await.as_deref() == Some("delivered")
                && m.status(payments[1]).await.as_deref() == Some("refused")
                && m.status(payments[2]).await.as_deref() == Some("expired")
                // Each receipt in the history, and the origin's taking of it.
                && m.count("SELECT count(*) FROM receipts_v WHERE receipt_status = 'delivered'")
                    .await
                    == 7
                && m.count(&format!(
                    "SELECT count(*) FROM messages WHERE status = 'delivered' AND sender = '\\x{}'",
                    hex::encode(Address32::from_evm(b.deployment.inbox.0).0)
                ))
                .await
                    >= 1
        })
        .await;
        assert!(
            recorded,
            "{}: settled {:?}, refused {:?}, expired {:?}\n{}",
            m.name,
            m.status(settled).await,
            m.status(refused).await,
            m.status(expired).await,
            consortium.logs()
        );
        for (id, outcome) in [
            (settled, "delivered"),
            (refused, "refused"),
            (expired, "expired"),
            (payments[0], "delivered"),
            (payments[1], "refused"),
            (payments[2], "expired"),
        ] {
            let sql = format!(
                "SELECT count(*) FROM receipts r JOIN lifecycle_log l \
                 ON l.message_id = r.message_id AND l.event = 'receipt' \
                 WHERE r.message_id = '\\x{}' AND r.outcome = '{outcome}'",
                hex::encode(id)
            );
            assert_eq!(m.count(&sql).await, 1, "{}: {sql}", m.name);
        }
        // `isthmus status` shows both legs; `isthmus messages` filters by outcome.
        let out = m.isthmus(&["status", &hex::encode(refused)]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("status refused")
                && text.contains("receipt  refused (result unknown bank)")
                && text.contains("taken on evm-a in tx 0x"),
            "{}: {text}",
            m.name
        );
        let out = m.isthmus(&["messages", "--outcome", "refused"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&hex::encode(refused))
                && text.contains(&hex::encode(payments[1]))
                && !text.contains(&hex::encode(settled))
                && text.contains("2 message(s)"),
            "{}: {text}",
            m.name
        );
        let out = m.isthmus(&["messages", "--outcome", "lost"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--outcome lost: not an outcome"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every receipt is back: no escrow is outstanding any more.
        assert!(
            wait_until(Duration::from_secs(30), || async {
                metric(&m.metrics().await, ESCROW).is_none()
            })
            .await,
            "{}: {}",
            m.name,
            m.metrics().await
        );
        // The round trip shows in the metrics (observed to receipt taken).
        let exposition = m.metrics().await;
        let p50 = metric(
            &exposition,
            "isthmus_round_trip_seconds{quantile=\"0.5\",route=\"evm-a->evm-b\"}",
        );
        assert!(p50.is_some_and(|s| s > 0.0), "{}: {exposition}", m.name);
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}: audit verify: {}",
            m.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
