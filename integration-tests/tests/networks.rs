//! Networks: a member configured for another network than its destinations'
//! endpoints refuses to start, naming both ids, and delivers nothing; set right, the
//! same member delivers.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use isthmus_integration_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_another_network_refuses_to_start_and_signs_nothing() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "networks").await;
    let staging = isthmus_protocol::Network::named("isthmus staging");
    let bank0 = &mut consortium.members[0];
    bank0.env.push((
        "ISTHMUS_CONSORTIUM__NETWORK".to_owned(),
        staging.to_string(),
    ));
    bank0.start();
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            status = bank0.exited();
            std::future::ready(status.is_some())
        })
        .await,
        "a member of another network kept running:\n{}",
        std::fs::read_to_string(&bank0.log).unwrap_or_default()
    );
    assert!(!status.unwrap().success());
    let log = std::fs::read_to_string(&bank0.log).unwrap();
    let expected = format!(
        "takes checkpoints of network {}, but consortium.network is {staging}",
        isthmus_adapter_evm::devnet::NETWORK
    );
    assert!(log.contains(&expected), "{log}");
    assert!(log.contains("consortium.network"), "{log}");
    // Nothing was recorded as signed or delivered.
    assert_eq!(bank0.count("SELECT count(*) FROM attestations").await, 0);

    // With the right id the same member runs.
    bank0.env.clear();
    for m in &mut consortium.members {
        m.start();
    }
    let ids = vec![
        devnet
            .a
            .dispatch(2, devnet.b.deployment.echo, 0, b"one network")
            .await,
    ];
    assert!(
        wait_until(Duration::from_secs(150), || devnet.b.all_delivered(&ids)).await,
        "{}",
        consortium.logs()
    );
}
