//! The short chaos run of `make test`: three members relay on the EVM routes and the
//! Substrate routes while their nodes and databases misbehave (every proxy fault
//! kind, a node SIGSTOPped, Postgres restarted, a member SIGKILLed, a nonce jam);
//! then nothing is lost, nothing is delivered twice, every member's history equals
//! the chain and verifies, and nothing is left pending. The longer soak is
//! `make chaos` (`tests/chaos_soak.rs`).

use isthmus_integration_tests::chaos::{run, Plan};
use isthmus_integration_tests::FaultKind;

/// Fixed so that a failure reproduces; the soak takes `CHAOS_SEED`.
const SEED: u64 = 0x15_7b_05;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_node_database_and_member_faults_exactly_once() {
    let report = run(&Plan::short(SEED)).await;
    println!("chaos (short, seed {SEED}):\n{report}");
    assert_eq!(report.lost, 0);
    assert_eq!(report.duplicated, 0);
    assert!(report.messages() >= 100, "{report}");
    // No member gave up on a fault (a start retries its dependencies), and no batch
    // waited out its lease (stray leases come back within a minute).
    assert_eq!(report.self_exits, 0, "{report}");
    assert!(
        report.longest_recovery() < std::time::Duration::from_secs(120),
        "{report}"
    );
    // The run did inject what it claims to test: every kind of node fault, Postgres
    // faults, and every scheduled fault.
    let injected = |role: &'static str, kind: FaultKind| {
        report.proxy_faults.get(&(role, kind)).copied().unwrap_or(0)
    };
    for kind in FaultKind::HTTP {
        assert!(
            injected("EVM node", kind) > 0,
            "no {kind} injected\n{report}"
        );
    }
    for kind in [FaultKind::Reset, FaultKind::Restart] {
        assert!(
            injected("Postgres", kind) > 0,
            "no Postgres {kind}\n{report}"
        );
    }
    for scheduled in [
        "EVM node SIGSTOP",
        "Substrate node SIGSTOP",
        "Postgres restart (all members)",
        "one member SIGKILL",
    ] {
        assert!(
            report.scheduled.contains_key(scheduled),
            "no {scheduled}\n{report}"
        );
    }
    assert!(
        report
            .scheduled
            .keys()
            .any(|k| k.starts_with("nonce jam: ")),
        "no nonce jam\n{report}"
    );
}
