//! The chaos soak of `make chaos` (not part of `cargo test --workspace`: its target
//! has `test = false`). Thousands of messages on the EVM and Substrate routes over
//! several cycles of faults and recoveries; the same invariants as the short run.
//!
//! `CHAOS_SEED` (default 11) and `CHAOS_MESSAGES` (default 2000) set the run; the
//! seed is printed so that a failing run can be repeated.

use isthmus_integration_tests::chaos::{run, Plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let messages = std::env::var("CHAOS_MESSAGES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    eprintln!("chaos soak: CHAOS_SEED={seed} CHAOS_MESSAGES={messages}");
    let report = run(&Plan::soak(seed, messages)).await;
    println!("chaos soak (seed {seed}):\n{report}");
    assert_eq!(report.lost, 0);
    assert_eq!(report.duplicated, 0);
    assert_eq!(report.self_exits, 0, "{report}");
}
