//! Substrate finality as a production relayer takes it: three `isthmus run` members
//! follow the dev chain through its GRANDPA authorities' RPC (`grandpa_proveFinality`)
//! from the devnet's anchor, with their tracker state in Postgres. During the run the
//! dev runtime schedules an authority-set change (sudo) that the voters enact;
//! deliveries continue across it both ways, a member killed during the change resumes
//! from its stored tracker state, and when the node then serves justifications of the
//! retired set, every member refuses them, records the evidence and stops observing
//! that ledger while the EVM routes keep running.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use isthmus_adapter_substrate::devnet::sudo_schedule_grandpa_change;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(180);

/// The set id each member's stored tracker state says is in force after its head.
async fn stored_set_id(consortium: &Consortium, member: usize) -> i64 {
    consortium.members[member]
        .count(&format!(
            "SELECT coalesce((SELECT (state->>'set_id')::bigint FROM light_client_states \
             WHERE ledger_id = {SUB_LEDGER} AND finality = 'grandpa'), -1)"
        ))
        .await
}

/// Three payments of 1 from evm-a to sub's clearing app (instructions `first`..) and
/// three messages from sub to evm-a's echo, their ids added to the lists.
async fn send_round(
    devnet: &Devnet,
    first: u8,
    to_sub: &mut Vec<[u8; 32]>,
    to_evm: &mut Vec<[u8; 32]>,
) {
    let sub = devnet.sub.as_ref().unwrap();
    let echo = isthmus_protocol::Address32::from_evm(devnet.a.deployment.echo.0).0;
    for i in 0..3u8 {
        let body = payment(first + i, SUB_BANK_A, SUB_BANK_B, 1);
        to_sub.push(
            devnet
                .a
                .dispatch_raw(SUB_LEDGER, pallet_clearing_address(), 0, &body)
                .await,
        );
        to_evm.push(sub.dispatch(1, echo, 0, &[first, i]).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_continue_across_an_authority_set_change_and_a_retired_set_is_refused() {
    let devnet = Devnet::start_with_substrate().await;
    let sub = devnet.sub.as_ref().unwrap();
    let mut consortium = Consortium::new(&devnet, "grandpa").await;
    for m in &mut consortium.members {
        m.start();
    }
    let evm_echo = isthmus_protocol::Address32::from_evm(devnet.a.deployment.echo.0).0;

    // Before the change: both ways.
    let mut to_sub = Vec::new();
    let mut to_evm = Vec::new();
    send_round(&devnet, 10, &mut to_sub, &mut to_evm).await;
    let delivered = |to_sub: Vec<[u8; 32]>, to_evm: Vec<[u8; 32]>| {
        let devnet = &devnet;
        async move {
            wait_until(DELIVERY, || async {
                sub.delivered_count(&to_sub).await == to_sub.len()
                    && devnet.a.delivered_count(&to_evm).await == to_evm.len()
            })
            .await
        }
    };
    assert!(
        delivered(to_sub.clone(), to_evm.clone()).await,
        "before the change\n{}",
        consortium.logs()
    );
    for m in 0..3 {
        assert_eq!(stored_set_id(&consortium, m).await, 0, "member {m}");
    }

    // The runtime schedules set 1 (four other authorities) three blocks on; member 0
    // is killed while the change is pending and enacted.
    sudo_schedule_grandpa_change(&sub.client, &[3, 4, 5, 6], 3)
        .await
        .unwrap();
    consortium.members[0].kill();
    send_round(&devnet, 20, &mut to_sub, &mut to_evm).await;
    sub.chain.new_blocks(4).await.unwrap();
    assert!(
        delivered(to_sub.clone(), to_evm.clone()).await,
        "across the change, with two members\n{}",
        consortium.logs()
    );
    let followed = wait_until(Duration::from_secs(60), || async {
        stored_set_id(&consortium, 1).await == 1 && stored_set_id(&consortium, 2).await == 1
    })
    .await;
    assert!(
        followed,
        "members 1 and 2 follow set 1\n{}",
        consortium.logs()
    );

    // Member 0 resumes from the tracker state it stored before the change (set 0),
    // follows the change from the node's proofs, and serves its part again.
    assert_eq!(stored_set_id(&consortium, 0).await, 0);
    consortium.members[0].start();
    consortium.members[1].kill();
    send_round(&devnet, 30, &mut to_sub, &mut to_evm).await;
    assert!(
        delivered(to_sub.clone(), to_evm.clone()).await,
        "after the change, members 0 and 2\n{}",
        consortium.logs()
    );
    assert_eq!(stored_set_id(&consortium, 0).await, 1);
    let log = std::fs::read_to_string(&consortium.members[0].log).unwrap();
    assert!(
        log.contains("following the node's GRANDPA justifications"),
        "member 0 takes new finality from the subscription\n{}",
        consortium.members[0].log_tail()
    );
    assert!(
        log.contains("GRANDPA light client resumed from the stored state"),
        "member 0 resumed from its stored state\n{}",
        consortium.members[0].log_tail()
    );
    // The operator's view of the stored tracker.
    let status = consortium.members[2].isthmus(&["light-client", "status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("sub (#3): grandpa from anchor") && text.contains("authority set 1 of 4"),
        "{text}"
    );
    // Exactly once, all of them: the app moved 9 units.
    assert_eq!(sub.clearing_balance(SUB_BANK_B).await, 1_000_000 + 9);
    consortium.members[1].start();

    // The node now serves justifications of the retired set 0: refused by every
    // member, recorded with its evidence; the sub observer stops, evm-a -> evm-b runs.
    assert!(sub.chain.vote_with_retired_set(true).await.unwrap());
    sub.dispatch(1, evm_echo, 0, b"after the fault").await;
    let halted = wait_until(DELIVERY, || async {
        let mut all = true;
        for m in &consortium.members {
            all &= m
                .count(&format!(
                    "SELECT count(*) FROM lifecycle_log WHERE event = 'consensus_fault' \
                     AND (evidence->>'ledger')::bigint = {SUB_LEDGER}"
                ))
                .await
                >= 1;
        }
        all
    })
    .await;
    assert!(
        halted,
        "every member records the refusal\n{}",
        consortium.logs()
    );
    let evidence = consortium.members[2]
        .count(&format!(
            "SELECT count(*) FROM lifecycle_log WHERE event = 'consensus_fault' \
             AND (evidence->>'ledger')::bigint = {SUB_LEDGER} \
             AND (evidence->>'set_id')::bigint = 1 \
             AND evidence->>'rule' LIKE '%does not verify against authority set 1%' \
             AND length(evidence->>'finality_proof') > 100"
        ))
        .await;
    assert_eq!(evidence, 1, "{}", consortium.logs());
    let log = std::fs::read_to_string(&consortium.members[2].log).unwrap();
    assert!(
        log.contains("ERROR") && log.contains("halted"),
        "{}",
        consortium.members[2].log_tail()
    );
    let evm_only = devnet
        .a
        .dispatch(2, devnet.b.deployment.echo, 0, b"evm routes keep running")
        .await;
    let running = wait_until(DELIVERY, || async {
        devnet.b.delivered_count(&[evm_only]).await == 1
    })
    .await;
    assert!(running, "{}", consortium.logs());
    for m in &mut consortium.members {
        assert!(m.is_running(), "{} keeps running", m.name);
    }
}
