//! The adapter against real anvils: index the Outbox, prove its commitment through
//! the light client, deliver to another ledger's Inbox, refuse the replay, notice a
//! reorg, replace a stuck transaction.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use std::time::Duration;

use common::*;
use ethers::providers::Middleware;
use ethers::types::{Bytes, U256};
use isthmus_adapter_evm::contracts::{EchoRecipient, Outbox};
use isthmus_adapter_evm::devnet::DEV_KEY_1;
use isthmus_adapter_evm::source::Scanned;
use isthmus_adapter_evm::{address32, Batch, EvmDestination, EvmError, EvmSource, MessageOutcome};
use isthmus_light_client_evm::AccountProof;
use isthmus_light_client_evm::Header;
use isthmus_light_client_evm::{EvmLightClient, TrustedCheckpoint};
use isthmus_protocol::{Checkpoint, MerkleTree};

const FINALITY: Duration = Duration::from_secs(30);

#[tokio::test]
async fn index_prove_deliver_and_refuse_the_replay() {
    let a = ledger(1, 31337).await;
    let b = ledger(2, 31338).await;
    let outbox = Outbox::new(a.deployment.outbox, a.admin.clone());
    for body in [&b"first"[..], b"second", b"third"] {
        outbox
            .dispatch(
                2,
                address32(b.deployment.echo).0,
                0,
                Bytes::from(body.to_vec()),
            )
            .send()
            .await
            .unwrap()
            .await
            .unwrap();
    }
    a.anvil.mine(3).await.unwrap();

    // Index: a finalized range scan yields exactly the three messages, in order.
    let source = EvmSource::new(&a.anvil.url(), a.deployment.outbox, 1).unwrap();
    let finalized = source.finalized().await.unwrap();
    let scanned = source.scan(0, finalized.number).await.unwrap();
    let observed: Vec<_> = scanned
        .into_iter()
        .map(|s| match s {
            Scanned::Message(m) => m,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        observed.iter().map(|o| o.message.nonce).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(observed[1].message.body, b"second");
    assert_eq!(observed[0].message.sender, address32(a.admin.address()));
    assert!(observed
        .iter()
        .all(|o| o.message.destination == 2 && o.block.number <= finalized.number));

    // Prove: headers from genesis to the finalized block link up in the light client,
    // and the Outbox's root and count verify against the final header's state root.
    let genesis = source.block_ref(0).await.unwrap().unwrap();
    let mut client = EvmLightClient::finalized_tag(TrustedCheckpoint {
        number: 0,
        hash: genesis.hash.into(),
    });
    let mut headers = Vec::new();
    for n in 1..=finalized.number {
        let json = source.header_json(n).await.unwrap();
        headers.push(Header::from_rpc_json(&json.to_string()).unwrap());
    }
    let verified = client.verify_headers(headers).unwrap();
    let final_header = verified.last().unwrap();
    assert_eq!(final_header.block_hash().0, finalized.hash);
    assert!(final_header.finality_trusted_from_tag());
    let proof = source.outbox_proof(finalized).await.unwrap();
    let account = AccountProof::from_rpc_json(&proof.proof_json.to_string()).unwrap();
    let proven = final_header.verify_account_proof(&account).unwrap();
    let root = proven.value().slot(&[0u8; 32].into()).unwrap();
    let mut count_slot = [0u8; 32];
    count_slot[31] = 33;
    let count = proven.value().slot(&count_slot.into()).unwrap();
    let tree = MerkleTree::from_leaves(observed.iter().map(|o| o.id.0).collect()).unwrap();
    assert_eq!(
        root.0,
        tree.root(),
        "the proven root is the root of the indexed ids"
    );
    assert_eq!(count.to_u64(), Some(3));
    // A tampered proof node does not verify.
    let mut tampered = account.clone();
    let last = tampered.storage[0].2.len() - 1;
    tampered.storage[0].2[last][3] ^= 0x40;
    assert!(final_header.verify_account_proof(&tampered).is_err());

    // Deliver under the proven checkpoint with 2 of 3 attestations.
    let trusted_outbox = address32(a.deployment.outbox);
    trust_origin(&b, 1, trusted_outbox).await;
    let checkpoint = Checkpoint {
        origin: 1,
        outbox: trusted_outbox,
        root: tree.root(),
        count: 3,
        block_number: finalized.number,
        block_hash: finalized.hash,
    };
    let delivery = Batch {
        checkpoint,
        attestations: attest(&checkpoint, &[0, 2]),
        messages: observed
            .iter()
            .map(|o| (o.message.clone(), tree.branch(o.message.nonce).unwrap()))
            .collect(),
    };
    let destination =
        EvmDestination::new(&b.anvil.url(), 31338, b.deployment.inbox, &DEV_KEY_1).unwrap();
    // The destination's finalized tag must pass the delivery block: keep mining.
    let miner = keep_mining(b.anvil.url());
    let outcome = destination.deliver(&delivery, FINALITY).await.unwrap();
    assert_eq!(outcome.outcomes.len(), 3);
    assert!(
        outcome
            .outcomes
            .iter()
            .all(|(_, o)| *o == MessageOutcome::Delivered),
        "{:?}",
        outcome.outcomes
    );
    assert!(outcome.gas_used > 0);
    // The Inbox's delivered bits, read a word at a time: the three, and not the
    // next nonce, nor the same nonce of another origin.
    let mut keys: Vec<(u32, u64)> = observed
        .iter()
        .map(|o| (o.message.origin, o.message.nonce))
        .collect();
    let (origin, last) = keys[keys.len() - 1];
    keys.extend([(origin, last + 1), (origin + 100, last)]);
    assert_eq!(
        destination.delivered_among(&keys).await.unwrap(),
        [true, true, true, false, false]
    );
    let echo = EchoRecipient::new(b.deployment.echo, b.admin.clone());
    assert_eq!(echo.received().call().await.unwrap(), U256::from(3));
    assert_eq!(
        echo.last_body().call().await.unwrap().to_vec(),
        b"third".to_vec()
    );

    // The replay: accepted as a transaction, but every message is skipped.
    let replay = destination.deliver(&delivery, FINALITY).await.unwrap();
    assert!(
        replay
            .outcomes
            .iter()
            .all(|(_, o)| *o == MessageOutcome::AlreadyDelivered),
        "{:?}",
        replay.outcomes
    );
    assert_eq!(echo.received().call().await.unwrap(), U256::from(3));

    // A delivery the Inbox refuses fails before anything is sent, with the reason.
    let mut forged = delivery.clone();
    forged.attestations = attest(&checkpoint, &[0]);
    let err = destination.prepare(&forged).await.unwrap_err();
    assert!(
        matches!(err, EvmError::Reverted { ref reason, .. } if reason.contains("QuorumNotReached")),
        "{err}"
    );
    assert!(!err.is_retryable());
    miner.abort();
}

#[tokio::test]
async fn a_reorg_before_finality_is_detected_and_its_message_never_indexed() {
    let a = ledger(1, 31337).await;
    let outbox = Outbox::new(a.deployment.outbox, a.admin.clone());
    let source = EvmSource::new(&a.anvil.url(), a.deployment.outbox, 1).unwrap();
    outbox
        .dispatch(2, [1; 32], 0, Bytes::from_static(b"doomed"))
        .send()
        .await
        .unwrap()
        .await
        .unwrap();
    let head = source.latest().await.unwrap();
    let finalized = source.finalized().await.unwrap();
    assert!(
        finalized.number < head.number,
        "the dispatch is not final yet"
    );
    source.check_linkage(head).await.unwrap();

    // Replace the last block with an empty one: the dispatch is gone.
    let provider = a.anvil.provider().unwrap();
    let _: serde_json::Value = provider
        .request("anvil_reorg", (1u64, Vec::<serde_json::Value>::new()))
        .await
        .unwrap();
    let err = source.check_linkage(head).await.unwrap_err();
    assert!(
        matches!(err, EvmError::Reorg { number, .. } if number == head.number),
        "{err}"
    );
    assert!(err.is_retryable(), "a reorg is handled by rescanning");

    a.anvil.mine(4).await.unwrap();
    let finalized = source.finalized().await.unwrap();
    assert!(finalized.number >= head.number);
    assert!(source.scan(0, finalized.number).await.unwrap().is_empty());
    assert_eq!(outbox.count().call().await.unwrap(), U256::zero());
}

#[tokio::test]
async fn a_stuck_delivery_is_replaced_with_higher_fees() {
    let (b, m, delivery, destination) =
        one_message_delivery(31338, b"patience", Duration::from_millis(1500)).await;
    let provider = b.anvil.provider().unwrap();
    let nonce_before = destination.next_nonce().await.unwrap();
    // Stop mining: the first submission sits in the pool until it is replaced.
    let _: serde_json::Value = provider.request("evm_setAutomine", (false,)).await.unwrap();
    let url = b.anvil.url();
    let miner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let p = ethers::providers::Provider::<ethers::providers::Http>::try_from(url).unwrap();
        loop {
            let _: Result<serde_json::Value, _> = p.request("evm_mine", ()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let outcome = destination.deliver(&delivery, FINALITY).await.unwrap();
    miner.abort();
    assert_eq!(outcome.outcomes, vec![(m.id(), MessageOutcome::Delivered)]);
    let mined = provider
        .get_transaction(outcome.tx_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mined.nonce, nonce_before,
        "the replacement reused the stuck nonce"
    );
    assert!(
        mined.max_priority_fee_per_gas.unwrap() > U256::from(3_000_000_000u64),
        "the mined transaction is the fee-bumped replacement"
    );
    assert_eq!(
        destination.next_nonce().await.unwrap(),
        nonce_before + 1,
        "exactly one transaction landed"
    );
}

/// A node may drop a pending delivery from its pool (anvil does under load). The
/// delivery notices within seconds and sends the batch again at the free nonce,
/// long before the replacement deadline.
#[tokio::test]
async fn a_delivery_dropped_from_the_pool_is_sent_again() {
    // Replacement would only come after 10 minutes: only the pool check can help.
    let (b, m, delivery, destination) =
        one_message_delivery(31339, b"dropped", Duration::from_secs(600)).await;
    let provider = b.anvil.provider().unwrap();
    let nonce_before = destination.next_nonce().await.unwrap();
    let _: serde_json::Value = provider.request("evm_setAutomine", (false,)).await.unwrap();
    let url = b.anvil.url();
    let submitter = destination.submitter();
    let dropper = tokio::spawn(async move {
        let p =
            ethers::providers::Provider::<ethers::providers::Http>::try_from(url.as_str()).unwrap();
        // Wait until the delivery is pending, then empty the pool once.
        loop {
            let pending = p
                .get_transaction_count(submitter, Some(ethers::types::BlockNumber::Pending.into()))
                .await
                .unwrap();
            if pending > nonce_before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _: serde_json::Value = p.request("anvil_dropAllTransactions", ()).await.unwrap();
        let after = p
            .get_transaction_count(submitter, Some(ethers::types::BlockNumber::Pending.into()))
            .await
            .unwrap();
        assert_eq!(after, nonce_before, "the pool still holds the delivery");
        keep_mining(url).abort_handle()
    });
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        destination.deliver(&delivery, FINALITY),
    )
    .await
    .expect("the dropped delivery was not sent again")
    .unwrap();
    dropper.await.expect("the pool was emptied").abort();
    assert_eq!(outcome.outcomes, vec![(m.id(), MessageOutcome::Delivered)]);
    let mined = provider
        .get_transaction(outcome.tx_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mined.nonce, nonce_before, "sent again at the freed nonce");
    assert_eq!(
        destination.next_nonce().await.unwrap(),
        nonce_before + 1,
        "exactly one transaction landed"
    );
}

/// A batch that needs more gas than a block holds is refused before sending, and
/// the destination then sizes batches to the block: on a ledger whose blocks hold
/// 3M gas, 90 echo messages (about 4.4M) are refused, and the batches it asks for
/// instead each fit and together deliver all 150 messages of the test.
#[tokio::test]
async fn batches_are_sized_to_the_block_gas_limit() {
    const BLOCK_GAS: u64 = 3_000_000;
    let b = ledger(2, 31340).await;
    let provider = b.anvil.provider().unwrap();
    let _: bool = provider
        .request("evm_setBlockGasLimit", (U256::from(BLOCK_GAS),))
        .await
        .unwrap();
    b.anvil.mine(1).await.unwrap();
    let mut foreign = ForeignOutbox::new(1);
    trust_origin(&b, 1, foreign.outbox).await;
    let all: Vec<_> = (0..150)
        .map(|i| foreign.push(2, b.deployment.echo, 0, format!("m{i}").as_bytes()))
        .collect();
    let cp = foreign.checkpoint();
    let tree = foreign.tree();
    let delivery_of = |messages: &[isthmus_protocol::Message]| Batch {
        checkpoint: cp,
        attestations: attest(&cp, &[0, 1]),
        messages: messages
            .iter()
            .map(|m| (m.clone(), tree.branch(m.nonce).unwrap()))
            .collect(),
    };
    let destination =
        EvmDestination::new(&b.anvil.url(), 31340, b.deployment.inbox, &DEV_KEY_1).unwrap();
    assert_eq!(destination.batch_for(90), 90, "no estimate yet: as asked");

    let nonce_before = destination.next_nonce().await.unwrap();
    let err = destination
        .prepare(&delivery_of(&all[..90]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EvmError::TooLargeForBlock {
                messages: 90,
                block_gas_limit: BLOCK_GAS
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        destination.batch_for(90),
        45,
        "half as many after a refusal"
    );

    let miner = keep_mining(b.anvil.url());
    let mut sent = 0;
    let mut sizes = Vec::new();
    while sent < all.len() {
        let size = destination.batch_for(90) as usize;
        let batch = &all[sent..(sent + size).min(all.len())];
        let outcome = destination
            .deliver(&delivery_of(batch), FINALITY)
            .await
            .unwrap();
        assert!(
            outcome
                .outcomes
                .iter()
                .all(|(_, o)| *o == MessageOutcome::Delivered),
            "{:?}",
            outcome.outcomes
        );
        let tx = provider
            .get_transaction(outcome.tx_hash)
            .await
            .unwrap()
            .unwrap();
        assert!(
            tx.gas <= U256::from(BLOCK_GAS),
            "gas limit {} above the block's",
            tx.gas
        );
        sizes.push(batch.len());
        sent += batch.len();
    }
    miner.abort();
    // The halved batch (45, about 2.2M gas) fits; after its estimate the batches
    // are fitted to one a block with the gas margin spare: more than the halved
    // batch, fewer than the 90 asked for (each one's gas limit was checked above).
    assert_eq!(sizes[0], 45);
    assert!((46..90).contains(&sizes[1]), "{sizes:?}");
    let echo = EchoRecipient::new(b.deployment.echo, b.admin.clone());
    assert_eq!(echo.received().call().await.unwrap(), U256::from(150));
    assert_eq!(
        destination.next_nonce().await.unwrap(),
        nonce_before + sizes.len(),
        "nothing was sent for the refused batch"
    );
}

/// A ledger (id 2, on `chain_id`) whose Inbox trusts a foreign outbox holding one
/// message to the echo recipient; that message's delivery; and a submitter that
/// replaces a stuck transaction after `replace_after`.
async fn one_message_delivery(
    chain_id: u64,
    body: &[u8],
    replace_after: Duration,
) -> (Ledger, isthmus_protocol::Message, Batch, EvmDestination) {
    let b = ledger(2, chain_id).await;
    let mut foreign = ForeignOutbox::new(1);
    trust_origin(&b, 1, foreign.outbox).await;
    let m = foreign.push(2, b.deployment.echo, 0, body);
    let cp = foreign.checkpoint();
    let delivery = Batch {
        checkpoint: cp,
        attestations: attest(&cp, &[0, 1]),
        messages: vec![(m.clone(), foreign.tree().branch(0).unwrap())],
    };
    let destination = EvmDestination::new(&b.anvil.url(), chain_id, b.deployment.inbox, &DEV_KEY_1)
        .unwrap()
        .with_replace_after(replace_after);
    (b, m, delivery, destination)
}

/// Mines a block every 200 ms so the finalized tag keeps moving.
fn keep_mining(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let p = ethers::providers::Provider::<ethers::providers::Http>::try_from(url).unwrap();
        loop {
            let _: Result<serde_json::Value, _> = p.request("evm_mine", ()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}
