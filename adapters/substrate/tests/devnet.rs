//! Against the real dev chain: chopsticks running the dev runtime's wasm, started by
//! the test and killed on drop. Needs `make substrate-runtime` (the wasm) and the
//! devnet's npm tools.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use isthmus_adapter_substrate::devnet::{
    sudo_schedule_grandpa_change, sudo_set_origin, voters, DevChain,
};
use isthmus_adapter_substrate::{keys, Destination, SubstrateClient, VerifiedOutbox};
use isthmus_light_client_grandpa::{
    AuthoritySetTracker, DigestItem, FinalityProof, GrandpaJustification, Header,
};
use isthmus_protocol::{Address32, Attestation, Checkpoint, MerkleTree, Message};
use isthmus_protocol::{Batch, MessageOutcome};
use k256::ecdsa::SigningKey;
use subxt_signer::sr25519::dev;

/// The dev runtime's ledger id (its `IsthmusLedgerId` default).
const DEV_LEDGER: u32 = 2;
/// The EVM devnet's ledger id in these tests.
const EVM_LEDGER: u32 = 1;

fn test_key(i: u8) -> SigningKey {
    let secret = isthmus_protocol::keccak256(format!("isthmus test signer {i}").as_bytes());
    SigningKey::from_slice(&secret).unwrap()
}

fn test_address(i: u8) -> [u8; 20] {
    isthmus_protocol::attestation::address_of(test_key(i).verifying_key())
}

#[tokio::test]
async fn dispatch_is_indexed_and_its_block_proven_final_by_the_voters_rpc() {
    let chain = DevChain::start().await.unwrap();
    let client = SubstrateClient::connect(&chain.url()).await.unwrap();
    let (start_number, start_hash) = client.finalized_head().await.unwrap();

    // Alice dispatches a message to the EVM ledger.
    let alice = Destination::new(client.clone(), dev::alice());
    let payload = subxt::dynamic::transaction(
        keys::PALLET,
        "dispatch",
        (EVM_LEDGER, [0x42u8; 32], 0u64, b"hello evm".to_vec()),
    );
    let receipt = alice.submit(&payload).await.unwrap();
    // Two more at once: the destination hands out consecutive nonces itself.
    let more = |body: &'static [u8]| {
        subxt::dynamic::transaction(
            keys::PALLET,
            "dispatch",
            (EVM_LEDGER, [0x43u8; 32], 0u64, body.to_vec()),
        )
    };
    let (second, third) = (more(b"second"), more(b"third"));
    let (a, b) = tokio::join!(alice.submit(&second), alice.submit(&third));
    a.unwrap();
    b.unwrap();
    // A deadline that has passed is refused at dispatch: no block could deliver it.
    let late = subxt::dynamic::transaction(
        keys::PALLET,
        "dispatch",
        (EVM_LEDGER, [0x44u8; 32], 1u64, b"too late".to_vec()),
    );
    match alice.submit(&late).await.map(|r| r.block_hash) {
        Err(isthmus_adapter_substrate::Error::Refused { error, .. }) => {
            assert_eq!(error, "DeadlinePassed");
        }
        other => panic!("a passed deadline was not refused: {other:?}"),
    }

    // The source role finds them in the finalized range, in nonce order.
    let (head, head_hash) = client.finalized_head().await.unwrap();
    assert!(head > start_number);
    let found = client.dispatched(start_number + 1, head).await.unwrap();
    assert_eq!(found.len(), 3);
    let dispatched = &found[0];
    assert_eq!(dispatched.block_hash, receipt.block_hash);
    assert_eq!(
        dispatched.message,
        Message {
            nonce: 0,
            origin: DEV_LEDGER,
            sender: Address32::from_account_id(dev::alice().public_key().0),
            destination: EVM_LEDGER,
            recipient: Address32([0x42; 32]),
            deadline: 0,
            body: b"hello evm".to_vec(),
        }
    );
    let mut bodies: Vec<(u64, Vec<u8>)> = found
        .iter()
        .map(|d| (d.message.nonce, d.message.body.clone()))
        .collect();
    bodies.sort();
    assert_eq!(bodies[0], (0, b"hello evm".to_vec()));
    assert_eq!(
        bodies.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );

    // Finality, as a relayer takes it: from the starting block and the genesis set,
    // the node's finality proof of the next block (a justification of the head, with
    // the headers linking back).
    let anchor = AuthoritySetTracker::new(
        voters::genesis_set().unwrap(),
        isthmus_light_client_grandpa::H256(start_hash),
        start_number,
    );
    let mut tracker = anchor.clone();
    let (served, justification) = proven_chain(&client, start_number, head).await;
    let chain = tracker
        .import_chain(served.clone(), &justification)
        .unwrap();
    let finalized = chain
        .iter()
        .find(|f| f.number() == head)
        .expect("the head is in the proven chain")
        .clone();
    assert_eq!(finalized.hash().0, head_hash);
    assert_eq!(
        served[0].hash().0,
        client.block_hash(start_number + 1).await.unwrap().unwrap(),
        "the header bytes hash to the block hash"
    );

    // The outbox's root and count, proven: the finalized header's digest carries the
    // pallet's commitment, and they equal the tree of the indexed messages.
    let mut by_nonce = found.clone();
    by_nonce.sort_by_key(|d| d.message.nonce);
    let tree = MerkleTree::from_leaves(by_nonce.iter().map(|d| d.id.0).collect()).unwrap();
    let proven = VerifiedOutbox::from_digest(&finalized).unwrap();
    assert_eq!(proven.root(), tree.root());
    assert_eq!(proven.count(), 3);
    let checkpoint = proven.checkpoint(DEV_LEDGER);
    assert_eq!(checkpoint.block_hash, head_hash);
    assert_eq!(checkpoint.block_number, u64::from(head));
    // The state agrees (read unproven: chopsticks serves no read proofs and leaves
    // the state root at zero, docs/substrate.md).
    let root = client
        .storage(&keys::outbox_root_key(), Some(head_hash))
        .await
        .unwrap()
        .unwrap();
    let count = client
        .storage(&keys::outbox_count_key(), Some(head_hash))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(root, tree.root().to_vec());
    assert_eq!(count, 3u32.to_le_bytes().to_vec());

    // A node that serves the header with another commitment (a forged count) gives
    // bytes whose hash the justification does not finalize: refused.
    let mut forged = Header::decode_exact(&client.header_bytes(head_hash).await.unwrap()).unwrap();
    let item = forged
        .digest
        .logs
        .iter_mut()
        .find_map(|l| match l {
            DigestItem::Consensus(engine, data) if *engine == keys::COMMITMENT_ENGINE_ID => {
                Some(data)
            }
            _ => None,
        })
        .expect("the head carries the commitment");
    item[32] = 4;
    let mut tampered = served.clone();
    let at = tampered.iter().position(|h| h.number == head).unwrap();
    tampered[at] = forged;
    assert!(anchor
        .clone()
        .import_chain(tampered, &justification)
        .is_err());

    // A justification by too few authorities is refused.
    let mut weak = justification.clone();
    weak.commit.precommits.truncate(2);
    assert!(anchor.clone().import_chain(served, &weak).is_err());
}

/// The headers from `after + 1` to the block a node's finality proof justifies (at
/// least `until`), and its justification, through `grandpa_proveFinality`.
async fn proven_chain(
    client: &SubstrateClient,
    after: u32,
    until: u32,
) -> (Vec<Header>, GrandpaJustification) {
    for _ in 0..100 {
        if let Ok(Some(bytes)) = client.prove_finality(after + 1).await {
            let proof = FinalityProof::decode_exact(&bytes).unwrap();
            let justification = GrandpaJustification::decode_exact(&proof.justification).unwrap();
            if justification.commit.target_number >= until {
                let hash = client.block_hash(after + 1).await.unwrap().unwrap();
                let mut chain =
                    vec![Header::decode_exact(&client.header_bytes(hash).await.unwrap()).unwrap()];
                chain.extend(proof.unknown_headers);
                return (chain, justification);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no finality proof of block {until} within 10 s");
}

/// The dev runtime schedules an authority-set change (sudo); the voters sign the
/// enacting block with the outgoing set and later blocks with the new one; a tracker
/// anchored at the devnet's anchor (block 0, the genesis set) follows through `grandpa_proveFinality` alone, and the
/// justifications the subscription delivers after the change verify only against
/// the new set.
#[tokio::test]
async fn an_authority_set_change_is_followed_through_the_voters_rpc() {
    use futures::StreamExt;
    let chain = DevChain::start().await.unwrap();
    let client = SubstrateClient::connect(&chain.url()).await.unwrap();
    let (hash, number) = chain.anchor();
    let mut tracker = AuthoritySetTracker::new(voters::genesis_set().unwrap(), hash, number);
    sudo_schedule_grandpa_change(&client, &[3, 4, 5, 6], 2)
        .await
        .unwrap();
    let chopsticks = SubstrateClient::connect(&chain.chopsticks_url())
        .await
        .unwrap();
    let (announced, _) = chopsticks.finalized_head().await.unwrap();
    chain.new_blocks(4).await.unwrap();
    let mut justifications = client.subscribe_justifications().await.unwrap();
    chain.new_blocks(1).await.unwrap();
    let head = announced + 5;
    while tracker.finalized().1 < head {
        let after = tracker.finalized().1;
        let (served, justification) = proven_chain(&client, after, after + 1).await;
        let (before, justified) = (
            tracker.authority_set().set_id(),
            justification.commit.target_number,
        );
        tracker.import_chain(served, &justification).unwrap();
        if tracker.authority_set().set_id() != before {
            assert_eq!(
                justified,
                announced + 2,
                "the enacting block is justified itself"
            );
        }
    }
    assert_eq!(tracker.authority_set().set_id(), 1);
    assert_eq!(tracker.authority_set().authorities().len(), 4);

    // The subscription's justification of the newest block: by set 1 only.
    let latest = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let bytes = justifications.next().await.unwrap().unwrap();
            let j = GrandpaJustification::decode_exact(&bytes).unwrap();
            if j.commit.target_number == head {
                return j;
            }
        }
    })
    .await
    .expect("the subscription delivers the head's justification");
    latest.verify(tracker.authority_set()).unwrap();
    let old = voters::genesis_set().unwrap();
    assert!(
        latest.verify(&old).is_err(),
        "the old set no longer finalizes"
    );
}

#[tokio::test]
async fn attested_delivery_is_accepted_once() {
    let chain = DevChain::start().await.unwrap();
    let client = SubstrateClient::connect(&chain.url()).await.unwrap();
    let evm_outbox = Address32::from_evm([0x5f; 20]);
    sudo_set_origin(
        &client,
        EVM_LEDGER,
        evm_outbox.0,
        &[test_address(0), test_address(1), test_address(2)],
        2,
    )
    .await
    .unwrap();

    // An instruction for the clearing app from a sender the app does not trust yet:
    // a final business refusal, so the message is consumed.
    let mut body = vec![0u8; 128];
    body[..32].copy_from_slice(&[0x01; 32]);
    body[32..64].copy_from_slice(&[0x0a; 32]);
    body[64..96].copy_from_slice(&[0x0b; 32]);
    body[127] = 10;
    let messages: Vec<Message> = (0..2u64)
        .map(|nonce| Message {
            nonce,
            origin: EVM_LEDGER,
            sender: Address32::from_evm([0x11; 20]),
            destination: DEV_LEDGER,
            recipient: Address32(if nonce == 0 {
                // The clearing app's address (`keccak256("isthmus clearing app")`).
                isthmus_protocol::keccak256(b"isthmus clearing app")
            } else {
                [0x99; 32]
            }),
            deadline: 0,
            body: body.clone(),
        })
        .collect();
    let tree = MerkleTree::from_leaves(messages.iter().map(|m| m.id().0).collect()).unwrap();
    let checkpoint = Checkpoint {
        origin: EVM_LEDGER,
        outbox: evm_outbox,
        root: tree.root(),
        count: 2,
        block_number: 40,
        block_hash: [0x40; 32],
    };
    // The dev runtime's default network.
    let digest = checkpoint.digest(&isthmus_protocol::Network::named("isthmus devnet"));
    let attestations: Vec<Attestation> = [0u8, 2]
        .iter()
        .map(|i| Attestation::sign(&test_key(*i), &digest).unwrap())
        .collect();

    let relayer = Destination::new(client.clone(), dev::bob());
    // The pallet names the network it takes checkpoints of: the one signed for.
    assert_eq!(
        relayer.network().await.unwrap(),
        isthmus_protocol::Network::named("isthmus devnet")
    );
    let id = messages[0].id();
    assert!(!relayer.is_delivered(&id).await.unwrap());
    let receipt = relayer
        .process(
            &checkpoint,
            &attestations,
            &messages[0].encode(),
            &tree.branch(0).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.outcomes, vec![(id, MessageOutcome::Delivered)]);
    assert!(relayer.is_delivered(&id).await.unwrap());

    // The replay is refused by the inbox, and the error says so.
    let replay = relayer
        .process(
            &checkpoint,
            &attestations,
            &messages[0].encode(),
            &tree.branch(0).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(replay.is_already_processed(), "{replay}");
    assert!(!replay.is_retryable());

    // One attestation is below the threshold of 2.
    let weak = relayer
        .process(
            &checkpoint,
            &attestations[..1],
            &messages[1].encode(),
            &tree.branch(1).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&weak, isthmus_adapter_substrate::Error::Refused { error, .. } if error == "QuorumNotReached"),
        "{weak}"
    );

    // A message to an address with no handler ends refused (`NO_RECIPIENT`), as on
    // EVM for an address with no contract: consumed, never retried.
    let receipt = relayer
        .deliver(&Batch {
            checkpoint,
            attestations: attestations.clone(),
            messages: vec![
                (messages[0].clone(), tree.branch(0).unwrap()),
                (messages[1].clone(), tree.branch(1).unwrap()),
            ],
        })
        .await
        .unwrap();
    assert_eq!(receipt.outcomes.len(), 2);
    assert_eq!(receipt.outcomes[0], (id, MessageOutcome::AlreadyDelivered));
    assert_eq!(
        receipt.outcomes[1],
        (
            messages[1].id(),
            MessageOutcome::Refused("no recipient contract".into())
        )
    );
    assert!(relayer.is_delivered(&messages[1].id()).await.unwrap());
    let (_, _, _, outcome) = relayer
        .find_ending(&messages[1].id())
        .await
        .unwrap()
        .expect("the refusal is found");
    assert_eq!(
        outcome,
        MessageOutcome::Refused("no recipient contract".into())
    );

    // Pruned: below the origin's low-water mark a message is a replay although its
    // `Processed` entry is gone, and the relayer's reading says ended. (A real
    // `prune` waits `KeepEnded` blocks; the state is written directly here.)
    assert_eq!(relayer.low_water(EVM_LEDGER).await.unwrap(), 0);
    isthmus_adapter_substrate::devnet::sudo_kill_storage(
        &client,
        keys::processed_key(&messages[1].id().0),
    )
    .await
    .unwrap();
    assert!(!relayer.is_delivered(&messages[1].id()).await.unwrap());
    isthmus_adapter_substrate::devnet::sudo_set_storage(
        &client,
        keys::low_water_key(EVM_LEDGER),
        2u64.to_le_bytes().to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(relayer.low_water(EVM_LEDGER).await.unwrap(), 2);
    let below = relayer
        .process(
            &checkpoint,
            &attestations,
            &messages[1].encode(),
            &tree.branch(1).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(below.is_already_processed(), "{below}");
}

/// Every attempt at an endpoint, as the relayer's metrics would count them.
#[derive(Default)]
struct Attempts(std::sync::Mutex<Vec<(String, isthmus_endpoints::Attempt)>>);

impl isthmus_endpoints::RpcObserver for Attempts {
    fn attempt(
        &self,
        endpoint: &str,
        _method: &str,
        _elapsed: std::time::Duration,
        attempt: isthmus_endpoints::Attempt,
    ) {
        self.0.lock().unwrap().push((endpoint.to_owned(), attempt));
    }
}

#[tokio::test]
async fn calls_fail_over_past_a_dead_endpoint_and_a_dropped_connection_comes_back() {
    use isthmus_endpoints::Attempt;
    let chain = DevChain::start().await.unwrap();
    let port = chain.port();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("ws://{}", l.local_addr().unwrap())
    };
    let attempts = std::sync::Arc::new(Attempts::default());
    let client = SubstrateClient::connect_any(&[dead.clone(), chain.url()], Some(attempts.clone()))
        .await
        .unwrap();
    client.finalized_head().await.unwrap();
    {
        let seen = attempts.0.lock().unwrap();
        assert_eq!(seen[0], (dead.clone(), Attempt::Failed), "{seen:?}");
        assert!(seen.contains(&(chain.url(), Attempt::Answered)), "{seen:?}");
        assert!(
            !seen[1..].contains(&(dead.clone(), Attempt::Failed)),
            "the dead endpoint rests after its failure: {seen:?}"
        );
    }

    // The node goes away (a restart), then listens again on the same port.
    drop(chain);
    let during =
        tokio::time::timeout(std::time::Duration::from_secs(3), client.finalized_head()).await;
    assert!(
        !matches!(during, Ok(Ok(_))),
        "no node: the call fails or waits"
    );
    let _again = DevChain::start_at(port).await.unwrap();
    let mut answered = false;
    for _ in 0..60 {
        if client.finalized_head().await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(answered, "the same client answers again after the restart");
}
