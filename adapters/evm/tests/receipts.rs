//! Receipts between two real anvils: every message ends exactly once on its
//! destination (delivered, refused or expired), and its receipt travels back as a
//! message to the sending app on its origin (docs/protocol.md, "Receipts").
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::*;
use ethers::contract::{ContractCall, ContractError};
use ethers::types::{Address, Bytes, TransactionReceipt, U256};
use isthmus_adapter_evm::contracts::clearing::ClearingAppErrors;
use isthmus_adapter_evm::contracts::inbox::{
    HoldReleasedFilter, MessageDeliveredFilter, MessageExpiredFilter, MessageHandlerFailedFilter,
    MessageHeldFilter, MessageRefusedFilter, MessageSkippedFilter, ReceiptHandlerFailedFilter,
    ReceiptRefusedFilter, ReceiptTakenFilter, ReceiptsSentFilter,
};
use isthmus_adapter_evm::contracts::outbox::{DispatchFilter, Outbox};
use isthmus_adapter_evm::contracts::{ClearingApp, EchoRecipient, Inbox, InboxErrors};
use isthmus_adapter_evm::devnet::DEV_KEY_0;
use isthmus_protocol::{
    keccak256, Address32, Checkpoint, HoldAction, HoldDecision, LimitChange, MerkleTree, Message,
    MessageId, Receipt, ReceiptOutcome,
};

const A: u32 = 1;
const B: u32 = 2;

/// Two ledgers whose Inboxes trust each other's Outbox (members 0-2, threshold 2)
/// and send receipts to each other's Inbox.
async fn pair() -> (Ledger, Ledger) {
    pair_with(&[]).await
}

/// [`pair`] on anvils started with `extra` arguments.
async fn pair_with(extra: &[&str]) -> (Ledger, Ledger) {
    let a = ledger_with(A, 31337, extra).await;
    let b = ledger_with(B, 31338, extra).await;
    for (here, there) in [(&a, &b), (&b, &a)] {
        mined(inbox(here).set_origin(
            there.ledger_id,
            Address32::from_evm(there.deployment.outbox.0).0,
            Address32::from_evm(there.deployment.inbox.0).0,
            vec![member_address(0), member_address(1), member_address(2)],
            2,
            0,
        ))
        .await;
    }
    (a, b)
}

fn outbox_of(l: &Ledger) -> Address32 {
    Address32::from_evm(l.deployment.outbox.0)
}

fn inbox(l: &Ledger) -> Inbox<Client> {
    Inbox::new(l.deployment.inbox, l.admin.clone())
}

fn echo(l: &Ledger) -> EchoRecipient<Client> {
    EchoRecipient::new(l.deployment.echo, l.admin.clone())
}

/// Sends `call` and waits for its receipt; panics if it reverted.
async fn mined<D: ethers::abi::Detokenize>(call: ContractCall<Client, D>) -> TransactionReceipt {
    let r = call.send().await.unwrap().await.unwrap().unwrap();
    assert_eq!(r.status, Some(1u64.into()), "reverted: {r:?}");
    r
}

/// The (id, code) of each `MessageRefused` in `r`.
fn refusals(r: &TransactionReceipt) -> Vec<([u8; 32], [u8; 32])> {
    events::<MessageRefusedFilter>(r)
        .iter()
        .map(|e| (e.id, e.code))
        .collect()
}

fn revert_of<D: std::fmt::Debug>(r: Result<D, ContractError<Client>>) -> InboxErrors {
    match r {
        Ok(v) => panic!("expected a revert, got {v:?}"),
        Err(e) => e
            .as_revert()
            .and_then(|data| <InboxErrors as ethers::abi::AbiDecode>::decode(data).ok())
            .unwrap_or_else(|| panic!("not an Inbox error: {e}")),
    }
}

/// Every message `l`'s Outbox sent, in nonce order.
async fn sent(l: &Ledger) -> Vec<Message> {
    Outbox::new(l.deployment.outbox, l.admin.clone())
        .event::<DispatchFilter>()
        .from_block(0u64)
        .query()
        .await
        .unwrap()
        .into_iter()
        .map(|d| Message::decode(&d.message).unwrap())
        .collect()
}

/// A checkpoint of `messages` as the outbox of `origin` at `outbox`.
fn checkpoint(origin: u32, outbox: Address32, messages: &[Message]) -> (Checkpoint, MerkleTree) {
    let tree = MerkleTree::from_leaves(messages.iter().map(|m| m.id().0).collect()).unwrap();
    let cp = Checkpoint {
        origin,
        outbox,
        root: tree.root(),
        count: messages.len() as u32,
        block_number: 7,
        block_hash: keccak256(b"a final block"),
    };
    (cp, tree)
}

/// `processBatch` on `to` of the messages at `nonces` among `messages` of `origin`'s
/// outbox, attested by `members`.
fn batch_call(
    to: &Ledger,
    origin: u32,
    outbox: Address32,
    messages: &[Message],
    nonces: &[u64],
    members: &[usize],
) -> ContractCall<Client, U256> {
    let (cp, tree) = checkpoint(origin, outbox, messages);
    let sigs = attest(&cp, members)
        .iter()
        .map(|a| Bytes::from(a.0.to_vec()))
        .collect();
    inbox(to).process_batch(
        abi_checkpoint(&cp),
        sigs,
        nonces
            .iter()
            .map(|&n| Bytes::from(messages[n as usize].encode()))
            .collect(),
        nonces
            .iter()
            .map(|&n| tree.branch(n).unwrap().siblings)
            .collect(),
    )
}

/// Delivers the messages at `nonces` of `from`'s Outbox to `to`.
async fn deliver(to: &Ledger, from: &Ledger, nonces: &[u64]) -> TransactionReceipt {
    let messages = sent(from).await;
    mined(batch_call(
        to,
        from.ledger_id,
        outbox_of(from),
        &messages,
        nonces,
        &[0, 1],
    ))
    .await
}

async fn now(l: &Ledger) -> u64 {
    use ethers::providers::Middleware;
    l.admin
        .get_block(ethers::types::BlockNumber::Latest)
        .await
        .unwrap()
        .unwrap()
        .timestamp
        .as_u64()
}

async fn advance(l: &Ledger, seconds: u64) {
    use ethers::providers::Middleware;
    let provider = l.admin.inner();
    provider
        .request::<_, serde_json::Value>("evm_increaseTime", [seconds])
        .await
        .unwrap();
    provider
        .request::<_, serde_json::Value>("evm_mine", ())
        .await
        .unwrap();
}

fn code(text: &str) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..text.len()].copy_from_slice(text.as_bytes());
    c
}

/// Sends `body` from the echo app of `from` to `recipient` on `to`; returns its id.
async fn send_from_echo(
    from: &Ledger,
    to: u32,
    recipient: Address,
    deadline: u64,
    body: &[u8],
) -> [u8; 32] {
    let r = mined(echo(from).send(
        from.deployment.outbox,
        to,
        Address32::from_evm(recipient.0).0,
        deadline,
        Bytes::from(body.to_vec()),
    ))
    .await;
    let dispatch = events::<DispatchFilter>(&r);
    assert_eq!(dispatch.len(), 1);
    dispatch[0].id
}

#[tokio::test]
async fn every_outcome_ends_once_and_its_receipt_reaches_the_sending_app() {
    let (a, b) = pair().await;
    let refuser = EchoRecipient::deploy(b.admin.clone(), b.deployment.inbox)
        .unwrap()
        .send()
        .await
        .unwrap();
    mined(refuser.set_refusal_code(code("unknown bank"))).await;
    let flaky = EchoRecipient::deploy(b.admin.clone(), b.deployment.inbox)
        .unwrap()
        .send()
        .await
        .unwrap();
    mined(flaky.set_refusing(true)).await;

    let settled = send_from_echo(&a, B, b.deployment.echo, 0, b"settle me").await;
    let refused = send_from_echo(&a, B, refuser.address(), 0, b"to a refuser").await;
    let deadline = now(&a).await + 60;
    let expired = send_from_echo(&a, B, b.deployment.echo, deadline, b"too late").await;
    let nobody = send_from_echo(&a, B, Address::repeat_byte(0x77), 0, b"to nobody").await;
    let kept = send_from_echo(&a, B, flaky.address(), 0, b"not now").await;
    // An account, not a contract, sends the sixth: its receipt is taken, with no call.
    let from_account = mined(Outbox::new(a.deployment.outbox, a.admin.clone()).dispatch(
        B,
        Address32::from_evm(b.deployment.echo.0).0,
        0,
        Bytes::from(b"from an account".to_vec()),
    ))
    .await;
    let from_account = events::<DispatchFilter>(&from_account)[0].id;
    let outbox_a = Outbox::new(a.deployment.outbox, a.admin.clone());
    assert_eq!(
        outbox_a.sent_by(settled).call().await.unwrap(),
        (a.deployment.echo, B, 0)
    );
    assert_eq!(
        outbox_a.sent_by([9; 32]).call().await.unwrap(),
        (Address::zero(), 0, 0)
    );

    // On B, past the deadline: every message ends, but the flaky one.
    advance(&b, 1_000).await;
    let r = deliver(&b, &a, &[0, 1, 2, 3, 4, 5]).await;
    assert_eq!(
        events::<MessageDeliveredFilter>(&r)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![settled, from_account]
    );
    let refusals = refusals(&r);
    let no_recipient = inbox(&b).no_recipient().call().await.unwrap();
    assert_eq!(
        refusals,
        vec![(refused, code("unknown bank")), (nobody, no_recipient)]
    );
    assert_eq!(
        events::<MessageExpiredFilter>(&r)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![expired]
    );
    assert_eq!(events::<MessageHandlerFailedFilter>(&r)[0].id, kept);
    let receipts_sent = events::<ReceiptsSentFilter>(&r);
    assert_eq!(receipts_sent.len(), 1);
    assert_eq!(
        (receipts_sent[0].origin, receipts_sent[0].count),
        (A, U256::from(5))
    );

    // The receipts left as one message from B's Inbox to A's, in B's Outbox.
    let back = sent(&b).await;
    assert_eq!(back.len(), 1);
    let batch = &back[0];
    assert_eq!(batch.id().0, receipts_sent[0].message);
    assert_eq!(batch.sender, Address32::from_evm(b.deployment.inbox.0));
    assert_eq!(batch.recipient, Address32::from_evm(a.deployment.inbox.0));
    assert_eq!((batch.destination, batch.deadline), (A, 0));
    let receipt = |id: [u8; 32], nonce, outcome, result| Receipt {
        id: MessageId(id),
        nonce,
        outcome,
        result,
    };
    assert_eq!(
        Receipt::decode_batch(&batch.body).unwrap(),
        vec![
            receipt(
                settled,
                0,
                ReceiptOutcome::Delivered,
                keccak256(b"settle me")
            ),
            receipt(refused, 1, ReceiptOutcome::Refused, code("unknown bank")),
            receipt(expired, 2, ReceiptOutcome::Expired, [0; 32]),
            receipt(nobody, 3, ReceiptOutcome::Refused, no_recipient),
            receipt(
                from_account,
                5,
                ReceiptOutcome::Delivered,
                keccak256(b"from an account")
            ),
        ]
    );

    // Back on A: each receipt is taken once and handed to the sending app.
    let r = deliver(&a, &b, &[0]).await;
    assert_eq!(events::<MessageDeliveredFilter>(&r)[0].id, batch.id().0);
    let taken: Vec<_> = events::<ReceiptTakenFilter>(&r)
        .iter()
        .map(|e| (e.id, e.destination, e.outcome))
        .collect();
    assert_eq!(
        taken,
        vec![
            (settled, B, 1),
            (refused, B, 2),
            (expired, B, 3),
            (nobody, B, 2),
            (from_account, B, 1)
        ]
    );
    let app = echo(&a);
    for (id, outcome, result) in [
        (settled, 1u8, keccak256(b"settle me")),
        (refused, 2, code("unknown bank")),
        (expired, 3, [0; 32]),
        (nobody, 2, no_recipient),
    ] {
        assert_eq!(app.receipt_outcome(id).call().await.unwrap(), outcome);
        assert_eq!(app.receipt_result(id).call().await.unwrap(), result);
    }
    assert_eq!(app.receipt_outcome(kept).call().await.unwrap(), 0);
    assert_eq!(app.receipts().call().await.unwrap(), U256::from(4));
    for (nonce, taken) in [(0, true), (3, true), (4, false), (5, true)] {
        assert_eq!(
            inbox(&a).receipt_taken(nonce).call().await.unwrap(),
            taken,
            "nonce {nonce}"
        );
    }

    // An ended message never ends again: the refused, expired and unreceivable ones
    // are skipped even once their recipient would accept.
    mined(refuser.set_refusal_code([0; 32])).await;
    let messages = sent(&a).await;
    let again = batch_call(&b, A, outbox_of(&a), &messages, &[0, 1, 2, 3], &[0, 1]);
    assert_eq!(again.call().await.unwrap(), U256::zero());
    let r = mined(again).await;
    assert_eq!(events::<MessageSkippedFilter>(&r).len(), 4);
    assert!(events::<ReceiptsSentFilter>(&r).is_empty());
    assert_eq!(refuser.received().call().await.unwrap(), U256::zero());

    // The kept message ends once its recipient accepts; its receipt follows alone.
    mined(flaky.set_refusing(false)).await;
    let r = deliver(&b, &a, &[4]).await;
    assert_eq!(events::<ReceiptsSentFilter>(&r)[0].count, U256::one());
    deliver(&a, &b, &[1]).await;
    assert_eq!(app.receipt_outcome(kept).call().await.unwrap(), 1);
    assert_eq!(app.receipts().call().await.unwrap(), U256::from(5));

    // A receipt batch replayed on A is skipped: no receipt is handed over twice.
    let replay = batch_call(&a, B, outbox_of(&b), &sent(&b).await, &[0, 1], &[0, 1]);
    assert_eq!(replay.call().await.unwrap(), U256::zero());
    let r = mined(replay).await;
    assert!(events::<ReceiptTakenFilter>(&r).is_empty());
    assert_eq!(app.receipts().call().await.unwrap(), U256::from(5));
}

#[tokio::test]
async fn forged_misdirected_and_replayed_receipts_are_refused() {
    let (a, b) = pair().await;
    let real = send_from_echo(&a, B, b.deployment.echo, 0, b"real").await;
    let elsewhere = send_from_echo(&a, 3, b.deployment.echo, 0, b"to a third ledger").await;
    let receipt = |id: [u8; 32], nonce, outcome| Receipt {
        id: MessageId(id),
        nonce,
        outcome,
        result: [0; 32],
    };
    // Messages claiming to come from B's Outbox, under a root the members signed: what
    // a quorum that lies could do. The Inbox still takes only real, first receipts.
    let b_inbox = Address32::from_evm(b.deployment.inbox.0);
    let forged = |nonce: u64, sender: Address32, body: Vec<u8>| Message {
        nonce,
        origin: B,
        sender,
        destination: A,
        recipient: Address32::from_evm(a.deployment.inbox.0),
        deadline: 0,
        body,
    };
    let messages = vec![
        forged(
            0,
            b_inbox,
            Receipt::encode_batch(&[
                receipt(real, 0, ReceiptOutcome::Delivered),
                receipt([0xee; 32], 7, ReceiptOutcome::Delivered),
                receipt(real, 0, ReceiptOutcome::Refused),
                receipt(elsewhere, 1, ReceiptOutcome::Delivered),
            ]),
        ),
        // A real id under another nonce.
        forged(
            1,
            b_inbox,
            Receipt::encode_batch(&[receipt(real, 5, ReceiptOutcome::Expired)]),
        ),
        // From an app on B rather than B's Inbox: an ordinary message to A's Inbox,
        // which refuses it.
        forged(
            2,
            Address32::from_evm([0x5e; 20]),
            Receipt::encode_batch(&[receipt(real, 0, ReceiptOutcome::Refused)]),
        ),
        // Not a whole number of receipts.
        forged(3, b_inbox, vec![1; 72]),
    ];

    // A quorum short of the threshold, or a branch that does not lead to the root,
    // moves nothing.
    let e = revert_of(
        batch_call(&a, B, outbox_of(&b), &messages, &[0], &[1])
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::QuorumNotReached(_)), "{e:?}");
    let (cp, tree) = checkpoint(B, outbox_of(&b), &messages);
    let mut bad = tree.branch(0).unwrap().siblings;
    bad[3][0] ^= 1;
    let e = revert_of(
        inbox(&a)
            .process_batch(
                abi_checkpoint(&cp),
                attest(&cp, &[0, 1])
                    .iter()
                    .map(|s| Bytes::from(s.0.to_vec()))
                    .collect(),
                vec![Bytes::from(messages[0].encode())],
                vec![bad],
            )
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::InvalidBranch(_)), "{e:?}");

    let all = batch_call(&a, B, outbox_of(&b), &messages, &[0, 1, 2, 3], &[0, 1]);
    // The two receipt batches are delivered; the app's message and the malformed
    // batch are refused.
    assert_eq!(all.call().await.unwrap(), U256::from(2));
    let r = mined(all).await;
    let a_inbox = inbox(&a);
    let unknown = a_inbox.unknown_message().call().await.unwrap();
    let duplicate = a_inbox.duplicate_receipt().call().await.unwrap();
    assert_eq!(
        events::<ReceiptTakenFilter>(&r)
            .iter()
            .map(|e| (e.id, e.outcome))
            .collect::<Vec<_>>(),
        vec![(real, 1)]
    );
    assert_eq!(
        events::<ReceiptRefusedFilter>(&r)
            .iter()
            .map(|e| (e.id, e.code))
            .collect::<Vec<_>>(),
        vec![
            ([0xee; 32], unknown),
            (real, duplicate),
            (elsewhere, unknown),
            (real, unknown),
        ]
    );
    let refusals = refusals(&r);
    assert_eq!(
        refusals,
        vec![
            (
                messages[2].id().0,
                a_inbox.not_receipts().call().await.unwrap()
            ),
            (
                messages[3].id().0,
                a_inbox.malformed_receipts().call().await.unwrap()
            ),
        ]
    );
    // The app's message to A's Inbox was refused, so a receipt goes back to it; the
    // receipt batches get none.
    let back = events::<ReceiptsSentFilter>(&r);
    assert_eq!((back[0].origin, back[0].count), (B, U256::one()));
    let app = echo(&a);
    assert_eq!(app.receipts().call().await.unwrap(), U256::one());
    assert_eq!(app.receipt_outcome(real).call().await.unwrap(), 1);
    assert_eq!(app.receipt_outcome(elsewhere).call().await.unwrap(), 0);
}

#[tokio::test]
async fn a_receipt_its_sender_refuses_waits_for_a_retry() {
    let (a, b) = pair().await;
    let app = echo(&a);
    mined(app.set_refusing_receipts(true)).await;
    let id = send_from_echo(&a, B, b.deployment.echo, 0, b"pay").await;
    deliver(&b, &a, &[0]).await;
    let r = deliver(&a, &b, &[0]).await;
    assert_eq!(events::<ReceiptTakenFilter>(&r)[0].id, id);
    assert_eq!(events::<ReceiptHandlerFailedFilter>(&r)[0].id, id);
    let a_inbox = inbox(&a);
    assert_ne!(a_inbox.pending_receipts(id).call().await.unwrap(), [0; 32]);
    assert!(a_inbox.receipt_taken(0).call().await.unwrap());
    assert_eq!(app.receipts().call().await.unwrap(), U256::zero());

    let result = keccak256(b"pay");
    // Only the receipt as it was taken can be retried.
    let e = revert_of(a_inbox.retry_receipt(id, B, 2, result).call().await);
    assert!(matches!(e, InboxErrors::NoPendingReceipt(_)), "{e:?}");
    let e = revert_of(a_inbox.retry_receipt(id, B, 1, result).call().await);
    assert!(
        matches!(e, InboxErrors::ReceiptHandlerStillFailing(_)),
        "{e:?}"
    );
    mined(app.set_refusing_receipts(false)).await;
    mined(a_inbox.retry_receipt(id, B, 1, result)).await;
    assert_eq!(app.receipt_outcome(id).call().await.unwrap(), 1);
    assert_eq!(a_inbox.pending_receipts(id).call().await.unwrap(), [0; 32]);
    let e = revert_of(a_inbox.retry_receipt(id, B, 1, result).call().await);
    assert!(matches!(e, InboxErrors::NoPendingReceipt(_)), "{e:?}");
}

#[tokio::test]
async fn an_origin_set_up_without_an_inbox_gets_no_receipts() {
    let l = ledger(B, 31338).await;
    let mut foreign = ForeignOutbox::new(A);
    trust_origin(&l, A, foreign.outbox).await;
    foreign.push(B, l.deployment.echo, 0, b"one way");
    foreign.push(B, l.deployment.echo, 1, b"expired");
    let messages = foreign.messages.clone();
    let r = mined(batch_call(
        &l,
        A,
        foreign.outbox,
        &messages,
        &[0, 1],
        &[0, 1],
    ))
    .await;
    // Both end (one delivered, one expired), and nothing leaves the Outbox.
    assert_eq!(events::<MessageDeliveredFilter>(&r).len(), 1);
    assert_eq!(events::<MessageExpiredFilter>(&r).len(), 1);
    assert!(events::<ReceiptsSentFilter>(&r).is_empty());
    assert!(sent(&l).await.is_empty());

    // An Inbox is bound to an Outbox of its own ledger.
    let e = revert_of(
        Inbox::deploy(
            l.admin.clone(),
            (
                A,
                l.admin.address(),
                U256::from(100_000),
                l.deployment.outbox,
                isthmus_adapter_evm::devnet::NETWORK.0,
            ),
        )
        .unwrap()
        .send()
        .await,
    );
    assert!(matches!(e, InboxErrors::OutboxNotLocal(_)), "{e:?}");
}

/// Gas per message of batches of 16 (sink recipient, echo sender), on `hardfork`
/// rules: (one way on a route without receipts, the delivery with its receipt, the
/// receipt taken on the origin), each measured on the same anvils.
async fn round_trip_gas(hardfork: &str) -> (u64, u64, u64) {
    let (a, b) = pair_with(&["--hardfork", hardfork]).await;
    // 17 messages: the first warms the storage both legs touch, as in the one-way
    // budget test; then a batch of 16 each way.
    for i in 0..17u32 {
        send_from_echo(&a, B, b.deployment.sink, 0, &i.to_be_bytes().repeat(8)).await;
    }
    deliver(&b, &a, &[0]).await;
    deliver(&a, &b, &[0]).await;
    let nonces: Vec<u64> = (1..17).collect();
    let there = deliver(&b, &a, &nonces).await;
    assert_eq!(
        events::<ReceiptsSentFilter>(&there)[0].count,
        U256::from(16)
    );
    let there = there.gas_used.unwrap().as_u64();
    let back = deliver(&a, &b, &[1]).await.gas_used.unwrap().as_u64();
    assert_eq!(echo(&a).receipts().call().await.unwrap(), U256::from(17));

    // The baseline, on the same Inbox: the same messages from an origin set up
    // without receipts (one way only).
    let mut foreign = ForeignOutbox::new(9);
    trust_origin(&b, 9, foreign.outbox).await;
    for i in 0..17u32 {
        foreign.push(B, b.deployment.sink, 0, &i.to_be_bytes().repeat(8));
    }
    let messages = foreign.messages.clone();
    mined(batch_call(&b, 9, foreign.outbox, &messages, &[0], &[0, 1])).await;
    let one_way = mined(batch_call(
        &b,
        9,
        foreign.outbox,
        &messages,
        &nonces,
        &[0, 1],
    ))
    .await
    .gas_used
    .unwrap()
    .as_u64();
    let (one_way, there, back) = (one_way / 16, there / 16, back / 16);
    println!(
        "gas per message, batches of 16, {hardfork} rules: one way (no receipts) {one_way}; \
         delivery with its receipt {there} (+{}), receipt taken on the origin {back}, \
         round trip {} ({:.2}x one way)",
        there as i64 - one_way as i64,
        there + back,
        (there + back) as f64 / one_way as f64
    );
    (one_way, there, back)
}

#[tokio::test]
async fn the_round_trip_costs_at_most_twice_the_one_way_gas() {
    // Cancun rules charge what the endpoints execute. Prague's calldata floor
    // (EIP-7623) charges a batch at least 10 gas per calldata token, which the
    // branches (1 KiB a message) reach before the execution does: there the floor,
    // not the receipts, sets the price.
    let (one_way, there, back) = round_trip_gas("cancun").await;
    // The target: at most twice the one-way 58k of the last release.
    assert!(there + back <= 2 * 58_000, "{there} + {back}");
    // A batch's receipts ride in one message: a fraction of a delivery each.
    assert!(there > one_way, "{there} against {one_way}");
    assert!(there < one_way + one_way / 4, "{there} against {one_way}");
    let (one_way, there, back) = round_trip_gas("prague").await;
    assert!(there + back <= 2 * 58_000, "{there} + {back}");
    assert!(there < one_way + one_way / 4, "{there} against {one_way}");
}

/// The clearing app of `l`, as its admin.
fn clearing(l: &Ledger) -> ClearingApp<Client> {
    ClearingApp::new(l.deployment.clearing, l.admin.clone())
}

const DEBTOR: [u8; 32] = [0xd1; 32];
const CREDITOR: [u8; 32] = [0xc1; 32];

/// Balances plus ledger accounts plus escrow of the clearing app on `l`, over the
/// banks and ledgers the payments test uses.
async fn holdings(l: &Ledger) -> U256 {
    let app = clearing(l);
    let mut total = app.escrowed().call().await.unwrap();
    for bank in [DEBTOR, CREDITOR] {
        total += app.balance_of(bank).call().await.unwrap();
    }
    for ledger in [A, B] {
        total += app.ledger_balance(ledger).call().await.unwrap();
    }
    total
}

#[tokio::test]
async fn payments_settle_or_come_back_and_no_value_is_made_or_lost() {
    let (a, b) = pair().await;
    let (pay_a, app_b) = (clearing(&a), clearing(&b));
    // A's debtor bank holds 1,000; A's ledger holds 500 of liquidity on B.
    mined(pay_a.open_bank(DEBTOR, U256::from(1_000))).await;
    mined(pay_a.set_bank_owner(DEBTOR, a.admin.address())).await;
    mined(pay_a.set_peer(B, clearing_of(&b))).await;
    mined(pay_a.open_ledger_account(B, U256::zero())).await;
    mined(app_b.open_bank(CREDITOR, U256::zero())).await;
    mined(app_b.set_peer(A, clearing_of(&a))).await;
    mined(app_b.open_ledger_account(A, U256::from(500))).await;
    let opening = (holdings(&a).await, holdings(&b).await);
    assert_eq!(opening, (U256::from(1_000), U256::from(500)));

    let pay = |uetr: u8, creditor: [u8; 32], amount: u64, deadline: u64| {
        pay_a.pay(
            B,
            [uetr; 32],
            DEBTOR,
            creditor,
            U256::from(amount),
            deadline,
        )
    };
    let id_of = |r: &TransactionReceipt| events::<DispatchFilter>(r)[0].id;
    let settles = id_of(&mined(pay(1, CREDITOR, 100, 0)).await);
    let unknown_bank = id_of(&mined(pay(2, [0xee; 32], 50, 0)).await);
    let too_much = id_of(&mined(pay(3, CREDITOR, 600, 0)).await);
    let deadline = now(&a).await + 60;
    let too_late = id_of(&mined(pay(4, CREDITOR, 70, deadline)).await);

    // Only the debtor's operator pays, each end-to-end id once, within its balance.
    let stranger = stranger(&a);
    let as_stranger = ClearingApp::new(a.deployment.clearing, stranger);
    let e = as_stranger
        .pay(B, [5; 32], DEBTOR, CREDITOR, U256::from(1), 0)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::NotBankOwner(_)),
        "{e}"
    );
    let e = pay(1, CREDITOR, 1, 0).call().await.unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::DuplicatePayment(_)),
        "{e}"
    );
    let e = pay(6, CREDITOR, 10_000, 0).call().await.unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::InsufficientFunds(_)),
        "{e}"
    );

    // In flight: 820 in escrow on A, nothing credited on B yet.
    assert_eq!(pay_a.escrowed().call().await.unwrap(), U256::from(820));
    assert_eq!(holdings(&a).await, opening.0);

    advance(&b, 1_000).await;
    let r = deliver(&b, &a, &[0, 1, 2, 3]).await;
    let refusals = refusals(&r);
    assert_eq!(
        refusals,
        vec![
            (unknown_bank, code("unknown bank")),
            (too_much, code("insufficient funds"))
        ]
    );
    assert_eq!(events::<MessageExpiredFilter>(&r)[0].id, too_late);
    assert_eq!(
        app_b.balance_of(CREDITOR).call().await.unwrap(),
        U256::from(100)
    );
    assert_eq!(
        app_b.ledger_balance(A).call().await.unwrap(),
        U256::from(400)
    );

    // The receipts come back: one payment settles, three return to the debtor.
    deliver(&a, &b, &[0]).await;
    assert_eq!(pay_a.escrows(settles).call().await.unwrap().4, 2, "settled");
    for id in [unknown_bank, too_much, too_late] {
        assert_eq!(pay_a.escrows(id).call().await.unwrap().4, 3, "returned");
    }
    assert_eq!(pay_a.escrowed().call().await.unwrap(), U256::zero());
    assert_eq!(
        pay_a.balance_of(DEBTOR).call().await.unwrap(),
        U256::from(900)
    );
    assert_eq!(
        pay_a.ledger_balance(B).call().await.unwrap(),
        U256::from(100)
    );
    // Per ledger and in total, balances plus accounts plus escrow are the opening.
    assert_eq!((holdings(&a).await, holdings(&b).await), opening);

    // A receipt replayed settles nothing twice (the Inbox skips the batch), and a
    // receipt handed over by anyone but the Inbox is refused.
    let replay = batch_call(&a, B, outbox_of(&b), &sent(&b).await, &[0], &[0, 1]);
    assert_eq!(replay.call().await.unwrap(), U256::zero());
    let e = pay_a
        .on_receipt(settles, B, 1, [0; 32])
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::NotInbox(_)),
        "{e}"
    );
    assert_eq!((holdings(&a).await, holdings(&b).await), opening);
}

/// The clearing app of `l` as an Address32 (a payment's recipient and sender).
fn clearing_of(l: &Ledger) -> [u8; 32] {
    Address32::from_evm(l.deployment.clearing.0).0
}

fn decode_clearing(e: &ContractError<Client>) -> ClearingAppErrors {
    let data = e.as_revert().unwrap_or_else(|| panic!("not a revert: {e}"));
    <ClearingAppErrors as ethers::abi::AbiDecode>::decode(data)
        .unwrap_or_else(|_| panic!("not a ClearingApp error: {e}"))
}

/// `digest` signed by test member `i` (or by any key), as the Inbox takes it.
fn signed_by(key: &k256::ecdsa::SigningKey, digest: &[u8; 32]) -> Bytes {
    Bytes::from(
        isthmus_protocol::Attestation::sign(key, digest)
            .unwrap()
            .0
            .to_vec(),
    )
}

fn by_members(members: &[usize], digest: &[u8; 32]) -> Vec<Bytes> {
    members
        .iter()
        .map(|&i| signed_by(&member_key(i), digest))
        .collect()
}

fn decision(l: &Ledger, origin: u32, id: [u8; 32], action: HoldAction) -> [u8; 32] {
    HoldDecision { origin, id, action }.evm_digest(l.anvil.chain_id(), l.deployment.inbox.0)
}

/// The (id, reason) of each `MessageHeld` in `r`.
fn holds_in(r: &TransactionReceipt) -> Vec<([u8; 32], [u8; 32])> {
    events::<MessageHeldFilter>(r)
        .iter()
        .map(|e| (e.id, e.reason))
        .collect()
}

const DAY: u32 = 86_400;

#[tokio::test]
async fn payments_over_a_limit_are_held_and_only_a_quorum_releases_or_rejects_them() {
    let (a, b) = pair().await;
    let (pay_a, app_b, inbox_b) = (clearing(&a), clearing(&b), inbox(&b));
    mined(pay_a.open_bank(DEBTOR, U256::from(10_000))).await;
    mined(pay_a.set_bank_owner(DEBTOR, a.admin.address())).await;
    mined(pay_a.set_peer(B, clearing_of(&b))).await;
    mined(pay_a.open_ledger_account(B, U256::zero())).await;
    mined(app_b.open_bank(CREDITOR, U256::zero())).await;
    mined(app_b.set_peer(A, clearing_of(&a))).await;
    mined(app_b.open_ledger_account(A, U256::from(10_000))).await;
    // Payments from A: 300 a day over the route, none above 250.
    mined(app_b.set_limit(A, [0; 32], 300, DAY, 250)).await;
    let opening = (holdings(&a).await, holdings(&b).await);

    let id_of = |r: &TransactionReceipt| events::<DispatchFilter>(r)[0].id;
    let mut ids = Vec::new();
    for (uetr, amount) in [
        (1u8, 100u64),
        (2, 260),
        (3, 150),
        (4, 100),
        (5, 80),
        (6, 60),
    ] {
        let r = mined(pay_a.pay(B, [uetr; 32], DEBTOR, CREDITOR, U256::from(amount), 0)).await;
        ids.push(id_of(&r));
    }
    let [small, large, fits, over, rejected, expires] = ids[..] else {
        unreachable!()
    };
    let r = deliver(&b, &a, &[0, 1, 2, 3, 4, 5]).await;
    assert_eq!(
        events::<MessageDeliveredFilter>(&r)
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![small, fits],
        "within the limits: delivered at today's cost"
    );
    assert_eq!(
        holds_in(&r),
        vec![
            (large, code("large value")),
            (over, code("over route limit")),
            (rejected, code("over route limit")),
            (expires, code("over route limit")),
        ]
    );
    assert_eq!(events::<ReceiptsSentFilter>(&r)[0].count, U256::from(2));
    assert_eq!(inbox_b.held_count(A).call().await.unwrap(), 4);
    assert_eq!(
        app_b.balance_of(CREDITOR).call().await.unwrap(),
        U256::from(250)
    );
    let (state, origin, since, reason) = inbox_b.holds(large).call().await.unwrap();
    assert_eq!((state, origin, reason), (1, A, code("large value")));
    assert!(since > 0);

    // Submitted again, a held payment is not executed: it is still held.
    let r = deliver(&b, &a, &[1]).await;
    assert_eq!(holds_in(&r), vec![(large, code("large value"))]);
    assert!(events::<MessageDeliveredFilter>(&r).is_empty());
    assert_eq!(
        app_b.balance_of(CREDITOR).call().await.unwrap(),
        U256::from(250)
    );

    // Only a quorum of A's current signers releases: one member, the admin, a
    // stranger to the set, a reject digest, another message's digest and the same
    // member twice are each short of it.
    let release = decision(&b, A, large, HoldAction::Release);
    let admin_key = k256::ecdsa::SigningKey::from_bytes(&DEV_KEY_0.into()).unwrap();
    for (what, signatures) in [
        ("one member", by_members(&[0], &release)),
        (
            "the admin",
            vec![
                signed_by(&admin_key, &release),
                signed_by(&member_key(0), &release),
            ],
        ),
        ("a stranger", by_members(&[3, 1], &release)),
        (
            "a reject digest",
            vec![
                signed_by(&member_key(0), &release),
                signed_by(&member_key(1), &decision(&b, A, large, HoldAction::Reject)),
            ],
        ),
        (
            "another message",
            vec![
                signed_by(&member_key(0), &release),
                signed_by(&member_key(1), &decision(&b, A, over, HoldAction::Release)),
            ],
        ),
        ("one member twice", by_members(&[1, 1], &release)),
    ] {
        let e = revert_of(inbox_b.release_hold(A, large, signatures).call().await);
        assert!(
            matches!(e, InboxErrors::QuorumNotReached(_)),
            "{what}: {e:?}"
        );
    }
    // The Inbox's digest is the members' (protocol crate).
    assert_eq!(
        inbox_b
            .hold_decision_digest(A, large, true)
            .call()
            .await
            .unwrap(),
        release
    );
    // Decisions name the right origin, and only held messages take one.
    let e = revert_of(
        inbox_b
            .release_hold(B, large, by_members(&[0, 1], &release))
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::NotHeld(_)), "{e:?}");
    let e = revert_of(
        inbox_b
            .release_hold(
                A,
                small,
                by_members(&[0, 1], &decision(&b, A, small, HoldAction::Release)),
            )
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::NotHeld(_)), "{e:?}");

    let r = mined(inbox_b.release_hold(A, large, by_members(&[0, 2], &release))).await;
    assert_eq!(events::<HoldReleasedFilter>(&r)[0].approvals, U256::from(2));
    // A replayed approval decides nothing twice.
    let e = revert_of(
        inbox_b
            .release_hold(A, large, by_members(&[0, 2], &release))
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::NotHeld(_)), "{e:?}");
    let reject = decision(&b, A, rejected, HoldAction::Reject);
    mined(inbox_b.reject_hold(A, rejected, by_members(&[1, 2], &reject))).await;

    // Released: executed past the limits; rejected: refused; undecided: still held.
    let r = deliver(&b, &a, &[1, 3, 4]).await;
    assert_eq!(events::<MessageDeliveredFilter>(&r)[0].id, large);
    assert_eq!(refusals(&r), vec![(rejected, code("hold rejected"))]);
    assert_eq!(holds_in(&r), vec![(over, code("over route limit"))]);
    assert_eq!(
        app_b.balance_of(CREDITOR).call().await.unwrap(),
        U256::from(510)
    );
    assert_eq!(inbox_b.held_count(A).call().await.unwrap(), 2);

    // A hold that waits past the hold period ends refused, and takes no decision.
    let period = inbox_b.hold_period().call().await.unwrap();
    advance(&b, period + 1).await;
    let e = revert_of(
        inbox_b
            .release_hold(
                A,
                over,
                by_members(&[0, 1], &decision(&b, A, over, HoldAction::Release)),
            )
            .call()
            .await,
    );
    assert!(matches!(e, InboxErrors::HoldExpired(_)), "{e:?}");
    let r = deliver(&b, &a, &[3, 5]).await;
    assert_eq!(
        refusals(&r),
        vec![
            (over, code("hold expired")),
            (expires, code("hold expired"))
        ]
    );
    assert_eq!(inbox_b.held_count(A).call().await.unwrap(), 0);
    let (state, ..) = inbox_b.holds(over).call().await.unwrap();
    assert_eq!(state, 0, "an ended hold is deleted");

    // The receipts come back: released and delivered payments settle, the rejected
    // and the expired return to the debtor; no value is made or lost anywhere.
    let receipts = sent(&b).await.len() as u64;
    deliver(&a, &b, &(0..receipts).collect::<Vec<_>>()).await;
    for id in [small, large, fits] {
        assert_eq!(pay_a.escrows(id).call().await.unwrap().4, 2, "settled");
    }
    for id in [over, rejected, expires] {
        assert_eq!(pay_a.escrows(id).call().await.unwrap().4, 3, "returned");
    }
    assert_eq!(pay_a.escrowed().call().await.unwrap(), U256::zero());
    assert_eq!((holdings(&a).await, holdings(&b).await), opening);
}

#[tokio::test]
async fn a_limit_refills_over_its_window_and_changes_only_with_a_quorum() {
    let (_a, b) = pair().await;
    let app = clearing(&b);
    let chain = b.anvil.chain_id();
    // Set up once, by the admin only; a rolling limit needs a window.
    let e = ClearingApp::new(b.deployment.clearing, stranger(&b))
        .set_limit(A, DEBTOR, 100, DAY, 0)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::NotAdmin(_)),
        "{e}"
    );
    let e = app
        .set_limit(A, DEBTOR, 100, 0, 0)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::BadLimit(_)),
        "{e}"
    );
    mined(app.set_limit(A, DEBTOR, 1_000, DAY, 0)).await;
    let e = app
        .set_limit(A, DEBTOR, 5_000, DAY, 0)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::LimitExists(_)),
        "{e}"
    );
    let (capacity, window, large, version, available) =
        app.limit_of(A, DEBTOR).call().await.unwrap();
    assert_eq!(
        (capacity, window, large, version, available),
        (1_000, DAY, 0, 1, 1_000)
    );

    // A change needs A's quorum over its digest, at the next version; the admin
    // alone, one member, or a stale version are refused.
    let change = LimitChange {
        origin: A,
        debtor: DEBTOR,
        capacity: 5_000,
        window: DAY,
        large_value: 2_000,
        version: 2,
    };
    let digest = change.evm_digest(chain, b.deployment.clearing.0);
    assert_eq!(
        app.limit_change_digest(A, DEBTOR, 5_000, DAY, 2_000, 2)
            .call()
            .await
            .unwrap(),
        digest
    );
    let change_call = |signatures: Vec<Bytes>, version: u32| {
        app.change_limit(A, DEBTOR, 5_000, DAY, 2_000, version, signatures)
    };
    let admin_key = k256::ecdsa::SigningKey::from_bytes(&DEV_KEY_0.into()).unwrap();
    for (what, signatures) in [
        ("none", vec![]),
        ("the admin", vec![signed_by(&admin_key, &digest)]),
        ("one member", by_members(&[2], &digest)),
        ("one member twice", by_members(&[2, 2], &digest)),
    ] {
        let e = change_call(signatures, 2).call().await.unwrap_err();
        assert!(
            matches!(
                decode_clearing(&e),
                ClearingAppErrors::LimitQuorumNotReached(_)
            ),
            "{what}: {e}"
        );
    }
    mined(change_call(by_members(&[0, 2], &digest), 2)).await;
    let e = change_call(by_members(&[0, 2], &digest), 2)
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(decode_clearing(&e), ClearingAppErrors::WrongLimitVersion(_)),
        "replayed: {e}"
    );
    let (capacity, _, large, version, available) = app.limit_of(A, DEBTOR).call().await.unwrap();
    // A raised limit keeps what was left, not a fresh allowance.
    assert_eq!(
        (capacity, large, version, available),
        (5_000, 2_000, 2, 1_000)
    );
    // And refills over its window: a quarter of a day is a quarter of the capacity.
    advance(&b, u64::from(DAY / 4)).await;
    let (.., available) = app.limit_of(A, DEBTOR).call().await.unwrap();
    assert!(
        (2_250..=2_270).contains(&available),
        "1,000 left plus 5,000 / 4, within the seconds of mining: {available}"
    );
    advance(&b, u64::from(DAY)).await;
    let (.., available) = app.limit_of(A, DEBTOR).call().await.unwrap();
    assert_eq!(available, 5_000, "never above the capacity");
}
