//! Holds end to end (docs/protocol.md, "Holds"), on real anvils, a real Postgres and
//! three real `isthmus run` members (threshold 2): a burst of payments over the
//! destination's route limit and a large payment are held by evm-b's clearing app;
//! nothing of them is executed while held, whoever submits. Each member screens a
//! payment before it approves it: bank-2's screening service denies the large one,
//! which bank-0 and bank-1 approve (released, delivered exactly once); bank-0's
//! service hangs on the other, which is never approved by that timeout and is
//! rejected by two members (refused, its escrow returned at the origin).
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_integration_tests::*;
use isthmus_protocol::Address32;

const DELIVERY: Duration = Duration::from_secs(180);
const DAY: u32 = 86_400;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Each member's screening service, on one local port (`/bank-N`): bank-2 denies a
/// payment of 260, bank-0 never answers about one of 50, everything else passes.
async fn screening_services() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/:member",
        post(
            |axum::extract::Path(member): axum::extract::Path<String>,
             axum::Json(payment): axum::Json<serde_json::Value>| async move {
                let amount = payment["amount"].as_str().unwrap_or_default().to_owned();
                match (member.as_str(), amount.as_str()) {
                    ("bank-2", "260") => axum::Json(serde_json::json!({
                        "decision": "deny", "reason": "sanctions list match"
                    })),
                    ("bank-0", "50") => {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        axum::Json(serde_json::json!({"decision": "pass"}))
                    }
                    _ => axum::Json(serde_json::json!({"decision": "pass"})),
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_over_a_limit_are_held_until_a_quorum_of_members_decides_them() {
    let devnet = Devnet::start_with_receipts().await;
    let screening = screening_services().await;
    let mut consortium = Consortium::with_extra(&devnet, "holds", |m| {
        format!(
            "[screening]\nurl = \"{screening}/{}\"\ntimeout_ms = 800\n",
            m.name
        )
    })
    .await;
    let (a, b) = (&devnet.a, &devnet.b);
    let (pay_a, app_b) = (a.clearing(), b.clearing());
    for call in [
        pay_a.set_bank_owner(BANK_A, a.admin_address()),
        pay_a.set_peer(b.id, Address32::from_evm(b.deployment.clearing.0).0),
        pay_a.open_ledger_account(b.id, U256::zero()),
        app_b.set_peer(a.id, Address32::from_evm(a.deployment.clearing.0).0),
        app_b.open_ledger_account(a.id, U256::from(10_000)),
    ] {
        call.send().await.unwrap().await.unwrap();
    }
    // Payments from evm-a into evm-b: 300 a day, none above 250.
    app_b
        .set_limit(a.id, [0; 32], 300, DAY, 250)
        .send()
        .await
        .unwrap()
        .await
        .unwrap();
    let opening = (holdings(&pay_a).await, holdings(&app_b).await);

    // A burst: the first three fit the day's 300; the fourth is over the route's
    // allowance, the fifth above the large-value threshold.
    let mut ids = Vec::new();
    for (uetr, amount) in [(1u8, 100u64), (2, 100), (3, 100), (4, 50), (5, 260)] {
        let r = pay_a
            .pay(b.id, [uetr; 32], BANK_A, BANK_B, U256::from(amount), 0)
            .send()
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        ids.push(dispatched(&r).unwrap());
    }
    let (within, over, large) = (&ids[..3], ids[3], ids[4]);
    for m in &mut consortium.members {
        m.start();
    }
    b.expect_delivered_once(within, DELIVERY, || consortium.logs())
        .await;
    let inbox_b = b.inbox();
    let held = wait_until(DELIVERY, || async {
        inbox_b.held_count(a.id).call().await.unwrap() == 2
    })
    .await;
    assert!(
        held,
        "the two payments were not held\n{}",
        consortium.logs()
    );
    for m in &consortium.members {
        let recorded = wait_until(DELIVERY, || async {
            m.status(over).await.as_deref() == Some("held")
                && m.status(large).await.as_deref() == Some("held")
        })
        .await;
        assert!(
            recorded,
            "{}: not recorded held\n{}",
            m.name,
            consortium.logs()
        );
    }
    // Held, they are submitted again and again, and never executed.
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(b.delivered_count(&[over, large]).await, 0);
    assert_eq!(
        app_b.balance_of(BANK_B).call().await.unwrap(),
        U256::from(300)
    );

    // `isthmus holds` lists them with their amounts and reasons.
    let bank0 = &consortium.members[0];
    let listed = text(&bank0.isthmus(&["holds"]));
    for (id, amount, reason) in [
        (over, "50", "over route limit"),
        (large, "260", "large value"),
    ] {
        let line = listed
            .lines()
            .find(|l| l.contains(&hex::encode(id)))
            .unwrap_or_else(|| panic!("0x{} not listed:\n{listed}", hex::encode(id)));
        assert!(
            line.contains(amount) && line.contains(reason) && line.contains("held"),
            "{line}"
        );
    }

    // Bad input: an id nobody observed, a message that is not held, a rejection
    // without a reason. Nothing is signed or submitted.
    let out = bank0.isthmus(&["approve", &format!("0x{}", "ab".repeat(32))]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not in this member's history"),
        "{}",
        text(&out)
    );
    let out = bank0.isthmus(&["approve", &hex::encode(within[0])]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("holds no message"), "{}", text(&out));
    let out = bank0.isthmus(&["approve", "not-an-id"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not a message id"), "{}", text(&out));
    let out = bank0.isthmus(&["reject", &hex::encode(over)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--reason: say why"), "{}", text(&out));

    // bank-2's screening denies the large payment: bank-2 does not approve it.
    let out = consortium.members[2].isthmus(&["approve", &hex::encode(large)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("screening says deny") && text(&out).contains("sanctions list match"),
        "{}",
        text(&out)
    );
    // One member's approval releases nothing.
    let out = bank0.isthmus(&[
        "approve",
        &hex::encode(large),
        "--reason",
        "limit raised by treasury",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1 of 2 signatures"), "{}", text(&out));
    let (state, ..) = inbox_b.holds(large).call().await.unwrap();
    assert_eq!(state, 1, "still held");
    // The second fetches the first's signature from its endpoint and submits.
    let out = consortium.members[1].isthmus(&["approve", &hex::encode(large)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("released"), "{}", text(&out));
    b.expect_delivered_once(&[large], DELIVERY, || consortium.logs())
        .await;

    // bank-0's screening service hangs on the other: no answer in time is a hold,
    // and bank-0 does not approve it.
    let started = std::time::Instant::now();
    let out = bank0.isthmus(&["approve", &hex::encode(over)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("screening says hold")
            && text(&out).contains("did not answer within 800 ms"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(inbox_b.holds(over).call().await.unwrap().0, 1, "still held");
    // Two members reject it; it ends refused and its escrow comes back.
    let bank2 = &consortium.members[2];
    let out = bank2.isthmus(&[
        "reject",
        &hex::encode(over),
        "--reason",
        "screening match, case 812",
    ]);
    assert!(text(&out).contains("1 of 2 signatures"), "{}", text(&out));
    let out = bank0.isthmus(&[
        "reject",
        &hex::encode(over),
        "--reason",
        "agreed with bank-2",
    ]);
    assert!(text(&out).contains("rejected"), "{}", text(&out));
    let returned = wait_until(DELIVERY, || async {
        pay_a.escrowed().call().await.unwrap().is_zero()
    })
    .await;
    assert!(returned, "escrow outstanding\n{}", consortium.logs());
    let mut states = Vec::new();
    for id in &ids {
        states.push(pay_a.escrows(*id).call().await.unwrap().4);
    }
    assert_eq!(states, vec![2, 2, 2, 3, 2], "settled but the rejected one");
    assert_eq!(
        app_b.balance_of(BANK_B).call().await.unwrap(),
        U256::from(560)
    );
    assert_eq!((holdings(&pay_a).await, holdings(&app_b).await), opening);
    assert_eq!(b.delivered_count(&[over]).await, 0);

    // Every member's history ends both as the destination did, the decisions are
    // recorded with their signatures, and the hash chain holds.
    for m in &consortium.members {
        let ended = wait_until(DELIVERY, || async {
            m.status(large).await.as_deref() == Some("delivered")
                && m.status(over).await.as_deref() == Some("refused")
        })
        .await;
        assert!(ended, "{}\n{}", m.name, consortium.logs());
        let out = m.isthmus(&["audit", "verify"]);
        assert!(out.status.success(), "{}: {}", m.name, text(&out));
    }
    assert_eq!(
        consortium.members[1]
            .count(&format!(
                "SELECT count(*) FROM hold_decisions WHERE message_id = '\\x{}' AND decision = 'release'",
                hex::encode(large)
            ))
            .await,
        2,
        "its own and the one handed over"
    );
    assert_eq!(
        bank0
            .count("SELECT count(*) FROM hold_decisions_v WHERE decision = 'reject' AND member = 'bank-2'")
            .await,
        1
    );
    // Each screening verdict is in the screening member's history.
    for (m, verdict) in [(2usize, "deny"), (0, "hold")] {
        let sql = format!(
            "SELECT count(*) FROM lifecycle_log WHERE event = 'hold_decision' \
             AND evidence->>'step' = 'screened' AND evidence->>'verdict' = '{verdict}'"
        );
        assert_eq!(
            consortium.members[m].count(&sql).await,
            1,
            "bank-{m}: {sql}"
        );
    }
    assert_eq!(
        bank0
            .count(&format!(
                "SELECT count(*) FROM holds_v WHERE id_hex = '{}' AND status = 'delivered' \
                 AND amount = 260 AND reason = 'large value'",
                hex::encode(large)
            ))
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_payments_into_the_substrate_ledger_wait_for_a_quorums_decision() {
    let devnet = Devnet::start_with_substrate_receipts().await;
    let sub = devnet.sub.as_ref().unwrap();
    let a = &devnet.a;
    let mut consortium = Consortium::new(&devnet, "sub_holds").await;
    // The clearing pallet holds payments from evm-a above 250 (no rolling limit).
    isthmus_adapter_substrate::devnet::sudo_set_clearing_limit(
        &sub.client,
        a.id,
        [0; 32],
        0,
        0,
        250,
    )
    .await
    .unwrap();
    let app_a = a.clearing();
    let creditor_before = sub.clearing_balance(SUB_BANK_B).await;
    let opening = (
        holdings_with(&app_a, &[2, SUB_LEDGER]).await,
        sub.clearing_holdings(&[a.id]).await,
    );
    let mut ids = Vec::new();
    for (uetr, amount) in [(1u8, 100u64), (2, 300), (3, 400)] {
        let r = app_a
            .pay(
                SUB_LEDGER,
                [uetr; 32],
                BANK_A,
                SUB_BANK_B,
                U256::from(amount),
                0,
            )
            .send()
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        ids.push(dispatched(&r).unwrap());
    }
    let (small, released, rejected) = (ids[0], ids[1], ids[2]);
    for m in &mut consortium.members {
        m.start();
    }
    let credited = wait_until(DELIVERY, || async {
        sub.delivered_count(&[small]).await == 1
    })
    .await;
    assert!(
        credited,
        "the small payment was not delivered\n{}",
        consortium.logs()
    );
    for m in &consortium.members {
        let recorded = wait_until(DELIVERY, || async {
            m.status(released).await.as_deref() == Some("held")
                && m.status(rejected).await.as_deref() == Some("held")
        })
        .await;
        assert!(
            recorded,
            "{}: not recorded held\n{}",
            m.name,
            consortium.logs()
        );
    }
    assert_eq!(sub.delivered_count(&[released, rejected]).await, 0);
    assert_eq!(
        sub.clearing_balance(SUB_BANK_B).await,
        creditor_before + 100
    );

    for (member, id, verb, reason) in [
        (0usize, released, "approve", "reviewed"),
        (1, released, "approve", "reviewed"),
        (1, rejected, "reject", "no underlying contract"),
        (2, rejected, "reject", "agreed"),
    ] {
        let out = consortium.members[member].isthmus(&[verb, &hex::encode(id), "--reason", reason]);
        assert!(out.status.success(), "{verb} by {member}: {}", text(&out));
    }
    let ended = wait_until(DELIVERY, || async {
        sub.delivered_count(&[released]).await == 1
            && app_a.escrowed().call().await.unwrap().is_zero()
    })
    .await;
    assert!(
        ended,
        "the decisions did not take effect\n{}",
        consortium.logs()
    );
    // The rejected payment ended (refused) without reaching the creditor.
    assert_eq!(
        sub.clearing_balance(SUB_BANK_B).await,
        creditor_before + 400
    );
    let mut states = Vec::new();
    for id in &ids {
        states.push(app_a.escrows(*id).call().await.unwrap().4);
    }
    assert_eq!(states, vec![2, 2, 3], "settled, settled, returned");
    assert_eq!(
        (
            holdings_with(&app_a, &[2, SUB_LEDGER]).await,
            sub.clearing_holdings(&[a.id]).await
        ),
        opening
    );
    for m in &consortium.members {
        let recorded = wait_until(DELIVERY, || async {
            m.status(released).await.as_deref() == Some("delivered")
                && m.status(rejected).await.as_deref() == Some("refused")
        })
        .await;
        assert!(recorded, "{}\n{}", m.name, consortium.logs());
        let out = m.isthmus(&["audit", "verify"]);
        assert!(out.status.success(), "{}: {}", m.name, text(&out));
    }
}
