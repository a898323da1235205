//! Networks and deployments: a member configured for another network than its
//! destinations' endpoints refuses to start, naming both ids, and delivers nothing;
//! set right, the same member delivers. An origin's Outbox replaced by one that
//! continues its nonces is followed (its tree starts past zero leaves); one that
//! restarts them is refused at start.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use isthmus_integration_tests::*;

/// Starts `member`, which must stop by itself with a failure within a minute;
/// returns its log.
async fn refuses_to_start(member: &mut Member, who: &str) -> String {
    member.start();
    let mut status = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            status = member.exited();
            std::future::ready(status.is_some())
        })
        .await,
        "{who} kept running:\n{}",
        std::fs::read_to_string(&member.log).unwrap_or_default()
    );
    assert!(!status.unwrap().success(), "{who} exited with success");
    std::fs::read_to_string(&member.log).unwrap()
}

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
    let log = refuses_to_start(bank0, "a member of another network").await;
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

/// Replaces `key = "old"` with `key = "new"` in the `[[ledgers]]` section of `ledger`
/// of a member's configuration file.
fn set_ledger_key(
    config: &std::path::Path,
    ledger: &str,
    key: &str,
    value: ethers::types::Address,
) {
    let text = std::fs::read_to_string(config).unwrap();
    let name = format!("name = \"{ledger}\"\n");
    let sections: Vec<String> = text
        .split("[[ledgers]]")
        .map(|section| {
            if !section.starts_with(&format!("\n{name}")) {
                return section.to_owned();
            }
            section
                .lines()
                .map(|line| {
                    if line.starts_with(&format!("{key} = ")) {
                        format!("{key} = \"{value:?}\"")
                    } else {
                        line.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        })
        .collect();
    std::fs::write(config, sections.join("[[ledgers]]")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_outbox_is_followed_when_it_continues_the_nonces_and_refused_when_it_restarts() {
    use isthmus_adapter_evm::contracts::{Inbox, Outbox, SinkRecipient};
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "outboxes").await;
    for m in &mut consortium.members {
        m.start();
    }
    // Three messages through evm-a's first Outbox.
    let mut old_ids = Vec::new();
    for i in 0..3u8 {
        old_ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &[b'o', i])
                .await,
        );
    }
    devnet
        .b
        .expect_delivered_once(&old_ids, Duration::from_secs(150), || consortium.logs())
        .await;
    // The route is drained: every member's history has the three delivered.
    for m in &consortium.members {
        assert!(
            wait_until(Duration::from_secs(90), || async {
                m.count("SELECT count(*) FROM messages WHERE origin = 1 AND status = 'delivered'")
                    .await
                    == 3
            })
            .await,
            "{}",
            consortium.logs()
        );
    }
    for m in &mut consortium.members {
        m.stop();
    }
    let count = devnet.a.outbox().count().call().await.unwrap().as_u64();
    assert_eq!(count, 3);

    // The Outbox is replaced, and on evm-b an Inbox set up for it from the same
    // nonce, with a recipient of its own.
    let deploy_outbox = |first: u64| {
        let (admin, id) = (devnet.a.admin.clone(), devnet.a.id);
        async move {
            Outbox::deploy(admin, (id, first))
                .unwrap()
                .send()
                .await
                .unwrap()
        }
    };
    let restarted = deploy_outbox(0).await;
    let replacing = deploy_outbox(count).await;
    let inbox = Inbox::deploy(
        devnet.b.admin.clone(),
        (
            devnet.b.id,
            devnet.b.admin_address(),
            ethers::types::U256::from(isthmus_adapter_evm::devnet::HANDLER_GAS_LIMIT),
            devnet.b.deployment.outbox,
            isthmus_adapter_evm::devnet::NETWORK.0,
        ),
    )
    .unwrap()
    .send()
    .await
    .unwrap();
    inbox
        .set_origin(
            devnet.a.id,
            isthmus_protocol::Address32::from_evm(replacing.address().0).0,
            [0u8; 32],
            (0..3).map(member_address).collect(),
            2,
            count,
        )
        .send()
        .await
        .unwrap()
        .await
        .unwrap();
    let sink = SinkRecipient::deploy(devnet.b.admin.clone(), inbox.address())
        .unwrap()
        .send()
        .await
        .unwrap();

    // Configured with an Outbox that restarted at nonce 0, a member refuses to
    // start: its messages would take the old nonces and ids.
    let bank0 = &mut consortium.members[0];
    set_ledger_key(&bank0.config, "evm-a", "outbox", restarted.address());
    set_ledger_key(&bank0.config, "evm-b", "inbox", inbox.address());
    let log = refuses_to_start(bank0, "a member on an Outbox that restarted its nonces").await;
    assert!(
        log.contains(&format!(
            "starts at nonce 0, but this history holds message 0x{} at nonce 2, which \
             that Outbox did not send",
            hex::encode(old_ids[2])
        )),
        "{log}"
    );
    assert!(log.contains("firstNonce 3"), "{log}");

    // With the Outbox that continues at nonce 3, every member follows it: its tree
    // has zero leaves below 3, and its messages are delivered at the new Inbox.
    for m in &mut consortium.members {
        set_ledger_key(&m.config, "evm-a", "outbox", replacing.address());
        set_ledger_key(&m.config, "evm-b", "inbox", inbox.address());
        m.start();
    }
    let recipient = isthmus_protocol::Address32::from_evm(sink.address().0).0;
    let mut new_ids = Vec::new();
    for i in 0..2u8 {
        let r = replacing
            .dispatch(2, recipient, 0, ethers::types::Bytes::from(vec![b'n', i]))
            .send()
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        new_ids.push(dispatched(&r).unwrap());
    }
    let ended = || async {
        let mut n = 0;
        for nonce in [3u64, 4] {
            if inbox.ended(devnet.a.id, nonce).call().await.unwrap() {
                n += 1;
            }
        }
        n == 2
    };
    assert!(
        wait_until(Duration::from_secs(150), ended).await,
        "{}",
        consortium.logs()
    );
    for id in &new_ids {
        assert!(!old_ids.contains(id));
        for m in &consortium.members {
            assert!(
                wait_until(Duration::from_secs(60), || async {
                    m.status(*id).await.as_deref() == Some("delivered")
                })
                .await,
                "0x{} on {}: {:?}\n{}",
                hex::encode(id),
                m.name,
                m.status(*id).await,
                consortium.logs()
            );
        }
    }
    // The old messages keep their rows and their status.
    for id in &old_ids {
        assert_eq!(
            consortium.members[0].status(*id).await.as_deref(),
            Some("delivered")
        );
    }
}
