//! Payments that settle or come back between an EVM ledger and the Substrate ledger
//! (docs/protocol.md, "Receipts"; docs/dapps.md, "The clearing app"): real anvils,
//! the dev runtime on chopsticks, a real Postgres and three real `isthmus run`
//! members (threshold 2). On both routes, evm-a -> sub and sub -> evm-a, a payment
//! is credited and settles, payments the destination app refuses come back, and a
//! payment past its deadline ends expired on the destination and comes back; a
//! member is killed with SIGKILL during the receipt leg. At the end each ledger's
//! banks plus ledger accounts plus escrow equal the opening total, and every
//! member's history shows both legs.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_between_evm_and_substrate_settle_or_come_back_exactly_once() {
    const ESCROW_TO_SUB: &str = "isthmus_escrow_outstanding{currency=\"EUR\",route=\"evm-a->sub\"}";
    const ESCROW_TO_EVM: &str = "isthmus_escrow_outstanding{currency=\"EUR\",route=\"sub->evm-a\"}";
    let devnet = Devnet::start_with_substrate_receipts().await;
    let sub = devnet.sub.as_ref().unwrap();
    let a = &devnet.a;
    let mut consortium = Consortium::new(&devnet, "sub_receipts").await;
    let app_a = a.clearing();
    let opening = (
        holdings_with(&app_a, &[2, SUB_LEDGER]).await,
        sub.clearing_holdings(&[a.id]).await,
    );
    let unknown = [0xee; 32];

    // evm-a -> sub: credited; refused (unknown bank); refused (more than evm-a's
    // account on sub holds); expired.
    let evm_deadline = a.chain_time().await + 8;
    let mut to_sub = Vec::new();
    for (uetr, creditor, amount, deadline) in [
        (1u8, SUB_BANK_B, 100u64, 0),
        (2, unknown, 40, 0),
        (3, SUB_BANK_B, 600, 0),
        (4, SUB_BANK_B, 30, evm_deadline),
    ] {
        let call = app_a.pay(
            SUB_LEDGER,
            [uetr; 32],
            BANK_A,
            creditor,
            U256::from(amount),
            deadline,
        );
        let r = call.send().await.unwrap().await.unwrap().unwrap();
        to_sub.push(dispatched(&r).unwrap());
    }
    // sub -> evm-a, from //Alice (SUB_BANK_A's operator): credited; refused
    // (unknown bank); expired.
    let to_evm = vec![
        sub.pay(a.id, [5; 32], BANK_B, 70, 0).await,
        sub.pay(a.id, [6; 32], unknown, 20, 0).await,
    ];
    let sub_deadline = sub.chain_time().await + 60;
    let to_evm = [
        to_evm,
        vec![sub.pay(a.id, [7; 32], BANK_B, 10, sub_deadline).await],
    ]
    .concat();
    assert_eq!(
        sub.clearing_holdings(&[a.id]).await,
        opening.1,
        "paying moves value into escrow, it makes none"
    );
    // Both deadlines pass on their destinations before any member runs.
    sub.pass(evm_deadline).await;
    a.pass(sub_deadline).await;
    for m in &mut consortium.members {
        m.start();
    }
    // While the payments wait for their receipts, each route shows its escrow (the
    // clearing app and the clearing pallet are payment apps in the members'
    // configuration): 100 + 40 + 600 + 30 from evm-a, 70 + 20 + 10 from sub.
    let bank0 = &consortium.members[0];
    let (mut to_sub_seen, mut to_evm_seen) = (false, false);
    let watching = std::time::Instant::now();
    while !(to_sub_seen && to_evm_seen) && watching.elapsed() < DELIVERY {
        // Nothing while the member's HTTP server is not up yet.
        let url = format!("http://127.0.0.1:{}/metrics", bank0.port);
        if let Ok(text) = async { reqwest::get(&url).await?.text().await }.await {
            to_sub_seen |= metric(&text, ESCROW_TO_SUB) == Some(770.0);
            to_evm_seen |= metric(&text, ESCROW_TO_EVM) == Some(100.0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        to_sub_seen && to_evm_seen,
        "the escrow of the payments never showed (evm-a->sub {to_sub_seen}, sub->evm-a \
         {to_evm_seen})\n{}",
        bank0.metrics().await
    );

    // Once the pallet has sent a receipt batch back (its outbox holds more than the
    // three payments), a member is killed with SIGKILL and restarted.
    let return_leg = wait_until(DELIVERY, || async { sub.outbox_count().await > 3 }).await;
    assert!(
        return_leg,
        "no receipt batch left sub\n{}",
        consortium.logs()
    );
    consortium.members[1].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    consortium.members[1].start();

    let sub_escrow = || async {
        isthmus_adapter_substrate::devnet::clearing_escrowed(&sub.client)
            .await
            .unwrap()
    };
    let arrived = wait_until(DELIVERY, || async {
        app_a.escrowed().call().await.unwrap().is_zero() && sub_escrow().await == 0
    })
    .await;
    assert!(
        arrived,
        "not every receipt came back: escrow {} on evm-a, {} on sub\n{}",
        app_a.escrowed().call().await.unwrap(),
        sub_escrow().await,
        consortium.logs()
    );

    // evm-a: the first payment settled into sub's account, the others came back.
    let mut states = Vec::new();
    for id in &to_sub {
        states.push(app_a.escrows(*id).call().await.unwrap().4);
    }
    assert_eq!(states, vec![2, 3, 3, 3], "settled, returned x3");
    assert_eq!(
        app_a.balance_of(BANK_A).call().await.unwrap(),
        U256::from(1_000_000 - 100)
    );
    // Credited 70 from sub's account; settled 100 into it.
    assert_eq!(
        app_a.balance_of(BANK_B).call().await.unwrap(),
        U256::from(70)
    );
    assert_eq!(
        app_a.ledger_balance(SUB_LEDGER).call().await.unwrap(),
        U256::from(PAYMENT_LIQUIDITY - 70 + 100)
    );
    // sub: SUB_BANK_A paid 70 (the refused and expired ones came back); SUB_BANK_B
    // was credited 100 out of evm-a's account, which took the settled 70.
    assert_eq!(sub.clearing_balance(SUB_BANK_A).await, 1_000_000 - 70);
    assert_eq!(sub.clearing_balance(SUB_BANK_B).await, 1_000_000 + 100);
    assert_eq!(
        isthmus_adapter_substrate::devnet::clearing_ledger_balance(&sub.client, a.id)
            .await
            .unwrap(),
        u128::from(PAYMENT_LIQUIDITY) - 100 + 70
    );
    assert_eq!(
        (
            holdings_with(&app_a, &[2, SUB_LEDGER]).await,
            sub.clearing_holdings(&[a.id]).await
        ),
        opening,
        "no value made or lost on either ledger"
    );
    // Every payment ended on its destination (the pallet's `Processed` marks each
    // end); only the credited ones reached their app (the balances above).
    assert_eq!(sub.delivered_count(&to_sub).await, to_sub.len());

    let ends = [
        (to_sub[0], "delivered"),
        (to_sub[1], "refused"),
        (to_sub[2], "refused"),
        (to_sub[3], "expired"),
        (to_evm[0], "delivered"),
        (to_evm[1], "refused"),
        (to_evm[2], "expired"),
    ];
    for m in &consortium.members {
        let recorded = wait_until(Duration::from_secs(90), || async {
            for (id, outcome) in ends {
                if m.status(id).await.as_deref() != Some(outcome) {
                    return false;
                }
            }
            true
        })
        .await;
        let mut seen = Vec::new();
        for (id, _) in ends {
            seen.push(m.status(id).await);
        }
        assert!(
            recorded,
            "{}: statuses {seen:?}\n{}",
            m.name,
            consortium.logs()
        );
        for (id, outcome) in ends {
            let sql = format!(
                "SELECT count(*) FROM receipts r JOIN lifecycle_log l \
                 ON l.message_id = r.message_id AND l.event = 'receipt' \
                 WHERE r.message_id = '\\x{}' AND r.outcome = '{outcome}'",
                hex::encode(id)
            );
            assert_eq!(m.count(&sql).await, 1, "{}: {sql}", m.name);
        }
        let out = m.isthmus(&["status", &hex::encode(to_evm[1])]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("status refused")
                && text.contains("receipt  refused (result unknown bank)")
                && text.contains("taken on sub in"),
            "{}: {text}",
            m.name
        );
        // Every receipt is back: no escrow is outstanding any more.
        assert!(
            wait_until(Duration::from_secs(30), || async {
                let text = m.metrics().await;
                metric(&text, ESCROW_TO_SUB).is_none() && metric(&text, ESCROW_TO_EVM).is_none()
            })
            .await,
            "{}: {}",
            m.name,
            m.metrics().await
        );
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}: audit verify: {}",
            m.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
