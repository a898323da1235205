//! End to end between an EVM ledger and the Substrate ledger: real anvils, the dev
//! runtime on chopsticks, a real Postgres and three real `isthmus run` processes
//! (threshold 2). Routes evm-a -> sub and sub -> evm-a, with clearing payments whose
//! effect shows on the destination's app.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_and_substrate_exchange_payments_with_two_of_three() {
    let devnet = Devnet::start_with_substrate().await;
    let sub = devnet.sub.as_ref().unwrap();
    let mut consortium = Consortium::new(&devnet, "substrate").await;
    for m in &mut consortium.members {
        m.start();
    }
    let app = pallet_clearing_address();

    // evm-a -> sub: two payment instructions to the runtime's clearing app.
    let to_sub = vec![
        devnet
            .a
            .dispatch_raw(SUB_LEDGER, app, 0, &payment(1, SUB_BANK_A, SUB_BANK_B, 250))
            .await,
        devnet
            .a
            .dispatch_raw(SUB_LEDGER, app, 0, &payment(2, SUB_BANK_B, SUB_BANK_A, 40))
            .await,
    ];
    // sub -> evm-a: a payment to evm-a's clearing app, from //Alice.
    let to_evm = vec![
        sub.dispatch(
            1,
            isthmus_protocol::Address32::from_evm(devnet.a.deployment.clearing.0).0,
            0,
            &payment(3, BANK_A, BANK_B, 700),
        )
        .await,
        sub.dispatch(
            1,
            isthmus_protocol::Address32::from_evm(devnet.a.deployment.echo.0).0,
            0,
            b"hello from the pallet",
        )
        .await,
    ];
    // sub -> evm-a to a 32-byte account: no EVM contract can receive it, so every
    // member records it as rejected with the reason and never submits it.
    let unroutable = sub.dispatch(1, [0x42; 32], 0, b"to nobody").await;

    let all_there = wait_until(DELIVERY, || async {
        sub.delivered_count(&to_sub).await == to_sub.len()
            && devnet.a.delivered_count(&to_evm).await == to_evm.len()
    })
    .await;
    assert!(
        all_there,
        "not every message was delivered in {DELIVERY:?}\n{}",
        consortium.logs()
    );

    // The clearing apps moved the money on both sides.
    assert_eq!(sub.clearing_balance(SUB_BANK_A).await, 1_000_000 - 250 + 40);
    assert_eq!(sub.clearing_balance(SUB_BANK_B).await, 1_000_000 + 250 - 40);
    assert_eq!(
        devnet.a.clearing().balance_of(BANK_B).call().await.unwrap(),
        U256::from(700)
    );
    let echo = isthmus_adapter_evm::contracts::EchoRecipient::new(
        devnet.a.deployment.echo,
        devnet.a.admin.clone(),
    );
    assert_eq!(echo.received().call().await.unwrap(), U256::from(1));
    assert_eq!(devnet.a.delivered_count(&[unroutable]).await, 0);

    let mut grandpa_verified = 0;
    // Every member recorded all four as delivered, with the Substrate checkpoint
    // verified through GRANDPA, and its hash chain verifies.
    for m in &consortium.members {
        let settled = wait_until(Duration::from_secs(60), || async {
            m.count("SELECT count(*) FROM messages WHERE status = 'delivered'")
                .await
                == 4
        })
        .await;
        assert!(settled, "{}\n{}", m.name, consortium.logs());
        // A member verified a Substrate checkpoint through GRANDPA itself, or (when
        // another member's turn delivered first) recorded that delivery.
        let unexplained = m
            .count(&format!(
                "SELECT count(*) FROM lifecycle_log l JOIN messages m ON m.id = l.message_id \
                 WHERE l.event = 'verified' AND m.origin = {SUB_LEDGER} \
                   AND coalesce(l.evidence->>'finality', '') NOT LIKE 'grandpa%' \
                   AND coalesce(l.evidence->>'note', '') NOT LIKE 'delivered by another%'"
            ))
            .await;
        assert_eq!(
            unexplained, 0,
            "{}: a Substrate message verified otherwise",
            m.name
        );
        grandpa_verified += m
            .count(
                "SELECT count(*) FROM lifecycle_log WHERE event = 'verified' \
                 AND evidence->>'finality' LIKE 'grandpa%'",
            )
            .await;
        let rejected = wait_until(Duration::from_secs(60), || async {
            m.count(&format!(
                "SELECT count(*) FROM lifecycle_log WHERE event = 'rejected' \
                 AND message_id = '\\x{}' AND evidence->>'reason' LIKE '%not a 20-byte address%'",
                hex::encode(unroutable)
            ))
            .await
                == 1
        })
        .await;
        assert!(
            rejected,
            "{}: the unroutable message is not rejected\n{}",
            m.name,
            consortium.logs()
        );
        let delivered_on_sub = m
            .count(&format!(
                "SELECT count(*) FROM deliveries WHERE destination = {SUB_LEDGER}"
            ))
            .await;
        assert_eq!(delivered_on_sub, 2, "{}", m.name);
        // The operator's view of the same: counts by route, both submitters funded.
        let metrics = m.metrics().await;
        assert_eq!(
            metric(
                &metrics,
                "isthmus_messages{route=\"evm-a->sub\",status=\"delivered\"}"
            ),
            Some(2.0),
            "{}: {metrics}",
            m.name
        );
        for balance in [
            "isthmus_submitter_free_balance{ledger=\"sub\"}",
            "isthmus_submitter_balance_gwei{ledger=\"evm-a\"}",
        ] {
            assert!(
                metric(&metrics, balance).is_some_and(|v| v > 0.0),
                "{}: no {balance} in\n{metrics}",
                m.name
            );
        }
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}: {}",
            m.name,
            String::from_utf8_lossy(&out.stdout)
        );
    }

    assert!(
        grandpa_verified >= 1,
        "no member verified a Substrate checkpoint through GRANDPA"
    );

    // `isthmus send` from the Substrate ledger prints the id, and it crosses too.
    let out = consortium.members[0].isthmus(&[
        "send",
        "--from",
        "sub",
        "--to",
        "evm-a",
        "--recipient",
        &format!("{:?}", devnet.a.deployment.echo),
        "--body",
        "sent by the CLI",
        "--key-env",
        "DEVNET_SEND_SEED",
    ]);
    // The variable is unset: the error names it and nothing is sent.
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEVNET_SEND_SEED"), "{err}");
    let out = std::process::Command::new(isthmus_bin())
        .args(["send", "--from", "sub", "--to", "evm-a", "--recipient"])
        .arg(format!("{:?}", devnet.a.deployment.echo))
        .args(["--body", "sent by the CLI", "--key-env", "DEVNET_SEND_SEED"])
        .arg("--config")
        .arg(&consortium.members[0].config)
        .env("DEVNET_SEND_SEED", "//Ferdie")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let id: [u8; 32] = hex::decode(id.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let crossed = wait_until(DELIVERY, || async {
        devnet.a.delivered_count(&[id]).await == 1
    })
    .await;
    assert!(crossed, "{}", consortium.logs());
    assert_eq!(echo.received().call().await.unwrap(), U256::from(2));

    for m in &mut consortium.members {
        let status = m.stop().unwrap();
        assert!(status.success(), "{} exited with {status}", m.name);
    }
}
