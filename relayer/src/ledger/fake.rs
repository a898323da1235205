//! A ledger in memory, for the pipeline's unit tests: an outbox the test fills, an
//! inbox that records what it is given, and switches for the cases a real ledger
//! shows (refused recipients, delivery errors, per-message outcomes).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use isthmus_protocol::{
    ActiveSigners, Address32, Attestation, Batch, Checkpoint, Hold, HoldDecision, MerkleTree,
    Message, MessageId, MessageOutcome, Network, RouteControl, RouteState, SignerSetUpdate,
};
use isthmus_schema::{BlockRef, NewMessage};

use super::{
    Balance, Delivered, DeliveryFeed, DeliveryRef, Destination, LedgerError, Observed,
    SeenDelivery, Source,
};
use crate::verified::VerifiedCheckpoint;

/// The hash of fake block `n`.
pub(crate) fn block_hash(n: u64) -> [u8; 32] {
    let mut h = [0xbb; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

fn block(n: u64) -> BlockRef {
    BlockRef {
        number: n,
        hash: block_hash(n),
    }
}

/// How the fake inbox answers the next deliveries.
#[derive(Default)]
pub(crate) struct Inbox {
    /// Deliveries made (by any member), by message.
    pub delivered: HashMap<MessageId, (u64, DeliveryRef)>,
    /// Messages another submission ended without delivering them (refused or
    /// expired), by message.
    pub ended: HashMap<MessageId, (DeliveryRef, MessageOutcome)>,
    /// Outcomes to report instead of delivering, by message (kept until removed;
    /// they win over a delivery made elsewhere, as a handler failing in the same
    /// block as another member's delivery would).
    pub outcomes: HashMap<MessageId, MessageOutcome>,
    /// An error for the next delivery (then cleared).
    pub fail_next: Option<fn() -> LedgerError>,
    /// Gas each message's delivery needs alone (absent: little), for `unfit`.
    pub gas: HashMap<MessageId, u64>,
    /// The caps `unfit` was asked with.
    pub caps: Vec<Option<u64>>,
    /// Every batch submitted.
    pub batches: Vec<Batch>,
    /// The routes' state (every origin's): a paused inbox refuses every batch.
    pub route: RouteState,
    /// Holds the inbox reports, by message (the test sets them).
    pub holds: HashMap<MessageId, Hold>,
}

/// A ledger in memory.
pub(crate) struct FakeLedger {
    pub id: u32,
    /// Whether the inbox only takes 20-byte recipients (as an EVM Inbox).
    pub evm_recipients: bool,
    /// Whether deliveries are listed as a feed.
    pub with_feed: bool,
    /// Whether the inbox ends a message submitted after its deadline (as an EVM
    /// Inbox) instead of refusing it.
    pub ends_expired: bool,
    /// Final head.
    pub head: Mutex<u64>,
    /// The outbox: (block, message).
    pub outbox: Mutex<Vec<(u64, Message)>>,
    pub inbox: Mutex<Inbox>,
    /// The signer sets the inbox accepts (for every origin).
    pub signers: Mutex<Option<ActiveSigners>>,
}

impl FakeLedger {
    pub(crate) fn new(id: u32) -> Self {
        Self {
            id,
            evm_recipients: false,
            with_feed: false,
            ends_expired: false,
            head: Mutex::new(1),
            outbox: Mutex::new(Vec::new()),
            inbox: Mutex::new(Inbox::default()),
            signers: Mutex::new(None),
        }
    }

    /// Dispatches `message` in a new final block; returns its id.
    pub(crate) fn dispatch(&self, mut message: Message) -> MessageId {
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        message.nonce = outbox.len() as u64;
        message.origin = self.id;
        *head += 1;
        outbox.push((*head, message.clone()));
        message.id()
    }

    /// Marks `id` delivered by another member's transaction.
    pub(crate) fn delivered_elsewhere(&self, id: MessageId, nonce: u64) {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        inbox.delivered.insert(
            id,
            (
                nonce,
                DeliveryRef {
                    tx_hash: [0xee; 32],
                    block: block(7),
                },
            ),
        );
    }

    pub(crate) fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Source for FakeLedger {
    fn first_block(&self) -> u64 {
        0
    }

    fn scan_range(&self) -> u64 {
        100
    }

    async fn finalized(&self) -> Result<BlockRef, LedgerError> {
        Ok(block(*self.head.lock().unwrap_or_else(|e| e.into_inner())))
    }

    async fn block_ref(&self, number: u64) -> Result<Option<BlockRef>, LedgerError> {
        let head = *self.head.lock().unwrap_or_else(|e| e.into_inner());
        Ok((number <= head).then(|| block(number)))
    }

    async fn check_linkage(&self, _cursor: BlockRef) -> Result<(), LedgerError> {
        Ok(())
    }

    async fn scan(&self, from: u64, to: u64) -> Result<Vec<Observed>, LedgerError> {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        Ok(outbox
            .iter()
            .filter(|(b, _)| (from..=to).contains(b))
            .map(|(b, m)| {
                Observed::Message(NewMessage::from_protocol(
                    m,
                    m.id(),
                    block(*b),
                    Some([0x11; 32]),
                ))
            })
            .collect())
    }

    async fn verify_checkpoint(&self, at: BlockRef) -> Result<VerifiedCheckpoint, LedgerError> {
        let outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let leaves: Vec<[u8; 32]> = outbox
            .iter()
            .filter(|(b, _)| *b <= at.number)
            .map(|(_, m)| m.id().0)
            .collect();
        let count = leaves.len() as u32;
        let tree = MerkleTree::from_leaves(leaves).map_err(|e| LedgerError::Refused {
            ledger: "fake".into(),
            reason: e.to_string(),
        })?;
        Ok(VerifiedCheckpoint::assumed_for_tests(Checkpoint {
            origin: self.id,
            outbox: Address32([0x0b; 32]),
            root: tree.root(),
            count,
            block_number: at.number,
            block_hash: at.hash,
        }))
    }
}

#[async_trait]
impl Destination for FakeLedger {
    fn refuses_recipient(&self, recipient: &[u8; 32]) -> Option<String> {
        (self.evm_recipients && recipient[..12].iter().any(|b| *b != 0))
            .then(|| "not a 20-byte address".to_owned())
    }

    fn batch_for(&self, requested: u32) -> u32 {
        requested
    }

    fn ends_expired(&self) -> bool {
        self.ends_expired
    }

    async fn delivered_among(
        &self,
        messages: &[super::Sent],
    ) -> Result<HashSet<MessageId>, LedgerError> {
        let inbox = self.inbox();
        Ok(messages
            .iter()
            .filter(|m| inbox.delivered.contains_key(&m.id) || inbox.ended.contains_key(&m.id))
            .map(|m| m.id)
            .collect())
    }

    async fn find_endings(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, (DeliveryRef, MessageOutcome)>, LedgerError> {
        let inbox = self.inbox();
        Ok(ids
            .iter()
            .filter_map(|id| inbox.ended.get(id).map(|e| (*id, e.clone())))
            .collect())
    }

    async fn find_deliveries(
        &self,
        ids: &[MessageId],
    ) -> Result<HashMap<MessageId, DeliveryRef>, LedgerError> {
        let inbox = self.inbox();
        Ok(ids
            .iter()
            .filter_map(|id| inbox.delivered.get(id).map(|(_, at)| (*id, *at)))
            .collect())
    }

    async fn unfit(
        &self,
        batch: &Batch,
        cap: Option<u64>,
    ) -> Result<Vec<(MessageId, String)>, LedgerError> {
        let mut inbox = self.inbox();
        inbox.caps.push(cap);
        Ok(batch
            .messages
            .iter()
            .filter_map(|(m, _)| {
                let needs = *inbox.gas.get(&m.id())?;
                (needs > cap.unwrap_or(u64::MAX))
                    .then(|| (m.id(), format!("needs {needs} gas, over the cap")))
            })
            .collect())
    }

    async fn deliver(&self, batch: &Batch, _timeout: Duration) -> Result<Delivered, LedgerError> {
        let mut inbox = self.inbox();
        inbox.batches.push(batch.clone());
        if inbox.route.paused {
            return Err(LedgerError::Config {
                ledger: format!("fake {}", self.id),
                reason: "the route is paused".into(),
            });
        }
        if let Some(fail) = inbox.fail_next.take() {
            return Err(fail());
        }
        let at = DeliveryRef {
            tx_hash: [inbox.batches.len() as u8; 32],
            block: block(100 + inbox.batches.len() as u64),
        };
        let mut outcomes = Vec::new();
        for (m, _) in &batch.messages {
            let id = m.id();
            let late = m.deadline != 0 && chrono::Utc::now().timestamp() as u64 > m.deadline;
            let outcome = if let Some(o) = inbox.outcomes.get(&id) {
                o.clone()
            } else if inbox.delivered.contains_key(&id) || inbox.ended.contains_key(&id) {
                MessageOutcome::AlreadyDelivered
            } else if late && self.ends_expired {
                inbox.ended.insert(id, (at, MessageOutcome::Expired));
                MessageOutcome::Expired
            } else {
                MessageOutcome::Delivered
            };
            if outcome == MessageOutcome::Delivered {
                inbox.delivered.insert(id, (m.nonce, at));
            }
            outcomes.push((id, outcome));
        }
        Ok(Delivered {
            at,
            gas_used: Some(1),
            outcomes,
        })
    }

    async fn signer_sets(&self, _origin: u32) -> Result<ActiveSigners, LedgerError> {
        let sets = self.signers.lock().unwrap_or_else(|e| e.into_inner());
        sets.clone().ok_or_else(|| LedgerError::Config {
            ledger: format!("fake {}", self.id),
            reason: "no signer set".into(),
        })
    }

    async fn update_digest(&self, update: &SignerSetUpdate) -> Result<[u8; 32], LedgerError> {
        Ok(update.pallet_digest([0xfa; 32], self.id))
    }

    async fn update_signers(
        &self,
        _update: &SignerSetUpdate,
        _signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Err(LedgerError::Config {
            ledger: format!("fake {}", self.id),
            reason: "the fake inbox takes no signer-set updates".into(),
        })
    }

    async fn network(&self) -> Result<Network, LedgerError> {
        Ok(isthmus_adapter_evm::devnet::NETWORK)
    }

    async fn route_state(&self, _origin: u32) -> Result<RouteState, LedgerError> {
        Ok(self.inbox().route)
    }

    async fn route_control_digest(&self, control: &RouteControl) -> Result<[u8; 32], LedgerError> {
        Ok(control.evm_digest(u64::from(self.id), [0xfa; 20]))
    }

    async fn control_route(
        &self,
        _control: &RouteControl,
        _signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Err(LedgerError::Config {
            ledger: format!("fake {}", self.id),
            reason: "the fake inbox takes no route controls; set `route` instead".into(),
        })
    }

    async fn hold(&self, id: MessageId) -> Result<Option<Hold>, LedgerError> {
        Ok(self.inbox().holds.get(&id).copied())
    }

    async fn hold_decision_digest(&self, decision: &HoldDecision) -> Result<[u8; 32], LedgerError> {
        Ok(decision.evm_digest(u64::from(self.id), [0xfa; 20]))
    }

    async fn decide_hold(
        &self,
        _decision: &HoldDecision,
        _signatures: &[Attestation],
    ) -> Result<DeliveryRef, LedgerError> {
        Err(LedgerError::Config {
            ledger: format!("fake {}", self.id),
            reason: "the fake inbox takes no hold decisions; set `holds` instead".into(),
        })
    }

    async fn balance(&self) -> Option<Balance> {
        None
    }

    fn feed(&self) -> Option<&dyn DeliveryFeed> {
        self.with_feed.then_some(self as &dyn DeliveryFeed)
    }
}

#[async_trait]
impl DeliveryFeed for FakeLedger {
    async fn head(&self) -> Result<u64, LedgerError> {
        Ok(200)
    }

    fn range(&self) -> u64 {
        1000
    }

    async fn deliveries_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<SeenDelivery>, LedgerError> {
        let inbox = self.inbox();
        Ok(inbox
            .delivered
            .iter()
            .filter(|(_, (_, at))| (from..=to).contains(&at.block.number))
            .map(|(id, (nonce, at))| SeenDelivery {
                id: *id,
                origin: 1,
                nonce: *nonce,
                at: *at,
                by_this_submitter: at.tx_hash != [0xee; 32],
            })
            .collect())
    }
}
