//! End to end on real anvils, a real Postgres and real `isthmus run` processes:
//! three members, threshold 2, routes evm-a -> evm-b and evm-b -> evm-a.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::types::U256;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(120);

async fn statuses(member: &Member) -> Vec<(String, i64)> {
    let pool = member.db().await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM messages GROUP BY status ORDER BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_delivers_with_two_of_three_and_the_history_verifies() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "routes").await;
    // bank-0 lists a dead endpoint first for evm-a: its calls fail over to the live
    // one, and the metrics show both.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let live = devnet.a.anvil.url();
    let config = std::fs::read_to_string(&consortium.members[0].config).unwrap();
    let single = format!("rpc = [\"{live}\"]");
    assert!(config.contains(&single), "{config}");
    std::fs::write(
        &consortium.members[0].config,
        config.replace(&single, &format!("rpc = [\"{dead}\", \"{live}\"]")),
    )
    .unwrap();
    for m in &mut consortium.members {
        m.start();
    }

    let mut a_to_b = Vec::new();
    for i in 0..5u8 {
        // The last one's handler needs about 6M gas (it stores 8 KiB): the delivery
        // carries what the simulation showed, not the handler's out-of-gas path.
        let body = if i == 4 { vec![i; 8192] } else { vec![i; 3] };
        a_to_b.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &body)
                .await,
        );
    }
    a_to_b.push(
        devnet
            .a
            .dispatch(
                2,
                devnet.b.deployment.clearing,
                0,
                &payment(1, BANK_A, BANK_B, 250),
            )
            .await,
    );
    a_to_b.push(
        devnet
            .a
            .dispatch(
                2,
                devnet.b.deployment.clearing,
                0,
                &payment(2, BANK_A, BANK_B, 50),
            )
            .await,
    );
    let mut b_to_a = Vec::new();
    for i in 0..3u8 {
        b_to_a.push(
            devnet
                .b
                .dispatch(1, devnet.a.deployment.echo, 0, &[i; 5])
                .await,
        );
    }
    b_to_a.push(
        devnet
            .b
            .dispatch(
                1,
                devnet.a.deployment.clearing,
                0,
                &payment(9, BANK_A, BANK_B, 1_000),
            )
            .await,
    );

    let all_there = wait_until(DELIVERY, || async {
        devnet.b.delivered_count(&a_to_b).await == a_to_b.len()
            && devnet.a.delivered_count(&b_to_a).await == b_to_a.len()
    })
    .await;
    assert!(
        all_there,
        "not every message was delivered in {DELIVERY:?}\n{}",
        consortium.logs()
    );

    // The recipients show the effect: echo counts and moved clearing balances.
    let echo_b = isthmus_adapter_evm::contracts::EchoRecipient::new(
        devnet.b.deployment.echo,
        devnet.b.admin.clone(),
    );
    assert_eq!(echo_b.received().call().await.unwrap(), U256::from(5));
    assert_eq!(
        devnet.b.clearing().balance_of(BANK_B).call().await.unwrap(),
        U256::from(300)
    );
    assert_eq!(
        devnet.b.clearing().balance_of(BANK_A).call().await.unwrap(),
        U256::from(1_000_000 - 300)
    );
    assert_eq!(
        devnet.a.clearing().balance_of(BANK_B).call().await.unwrap(),
        U256::from(1_000)
    );

    // Every member's history settles at delivered, and its hash chain verifies.
    for m in &consortium.members {
        let settled = wait_until(Duration::from_secs(60), || async {
            statuses(m).await == vec![("delivered".to_owned(), 11)]
        })
        .await;
        assert!(
            settled,
            "{}: {:?}\n{}",
            m.name,
            statuses(m).await,
            consortium.logs()
        );
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "{}: {}",
            m.name,
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
    }
    // `isthmus audit export` writes the log with its hash links, row after row.
    let out = consortium.members[1].isthmus(&["audit", "export", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!rows.is_empty());
    for (i, pair) in rows.windows(2).enumerate() {
        assert_eq!(
            pair[1]["seq"].as_i64(),
            Some(i as i64 + 2),
            "seq runs without gaps"
        );
        assert_eq!(
            pair[1]["prev_hash"],
            pair[0]["row_hash"],
            "row {} links to its predecessor",
            i + 2
        );
    }
    let delivered = rows.iter().filter(|r| r["event"] == "delivered").count();
    assert_eq!(delivered, 11);
    let csv = consortium.members[1].isthmus(&["audit", "export"]);
    assert!(csv.status.success());
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).lines().count(),
        rows.len() + 1,
        "header + one line per row"
    );
    let none =
        consortium.members[1].isthmus(&["audit", "export", "--until", "2000-01-01T00:00:00Z"]);
    assert_eq!(
        String::from_utf8_lossy(&none.stdout).lines().count(),
        1,
        "only the header before any row"
    );

    // `isthmus status` shows the lifecycle with evidence.
    let out = consortium.members[0].isthmus(&["status", &format!("0x{}", hex::encode(a_to_b[0]))]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for step in ["observed", "delivered"] {
        assert!(text.contains(step), "status lacks {step}:\n{text}");
    }
    // bank-0's calls to evm-a failed over from the dead endpoint to the live one.
    let metrics = consortium.members[0].metrics().await;
    let series = |endpoint: &str, outcome: &str| {
        metric(
            &metrics,
            &format!(
                "isthmus_rpc_requests_total{{endpoint=\"{endpoint}\",ledger=\"evm-a\",outcome=\"{outcome}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(series(&dead, "error") >= 1.0, "{metrics}");
    assert!(series(&live, "ok") > series(&dead, "error"), "{metrics}");
    assert_eq!(series(&dead, "ok"), 0.0);

    // SIGTERM stops each member cleanly.
    for m in &mut consortium.members {
        let status = m.stop().unwrap();
        assert!(status.success(), "{} exited with {status}", m.name);
    }
}
