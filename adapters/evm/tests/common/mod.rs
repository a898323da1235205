//! Shared set-up for the anvil tests: a fresh anvil per test, the endpoints deployed,
//! the consortium's test keys (protocol/vectors/v2.json `test_keys`).
#![allow(
    dead_code,
    unreachable_pub,
    reason = "support code shared by several test binaries, each using a part of it"
)]

use std::sync::Arc;

use ethers::contract::ContractCall;
use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Provider};
use ethers::signers::LocalWallet;
use ethers::types::{Address, Bytes, U256};
use isthmus_adapter_evm::contracts::inbox::Checkpoint as AbiCheckpoint;
use isthmus_adapter_evm::contracts::Inbox;
use isthmus_adapter_evm::devnet::{self, Anvil, Deployment, DEV_KEY_0};
use isthmus_protocol::attestation::address_of;
use isthmus_protocol::{keccak256, Address32, Attestation, Checkpoint, MerkleTree, Message};
use k256::ecdsa::SigningKey;

pub type Client = SignerMiddleware<Provider<Http>, LocalWallet>;

/// A fresh anvil with the endpoints of ledger `ledger_id`.
pub struct Ledger {
    pub anvil: Anvil,
    pub deployment: Deployment,
    pub admin: Arc<Client>,
    pub ledger_id: u32,
}

pub async fn ledger(ledger_id: u32, chain_id: u64) -> Ledger {
    ledger_with(ledger_id, chain_id, &[]).await
}

/// [`ledger`] on an anvil started with `extra` arguments (say, a hardfork).
pub async fn ledger_with(ledger_id: u32, chain_id: u64, extra: &[&str]) -> Ledger {
    let anvil =
        Anvil::spawn_with(chain_id, extra).expect("anvil starts (run `make devnet-tools` first)");
    let deployment = devnet::deploy(
        &anvil.url(),
        chain_id,
        ledger_id,
        &DEV_KEY_0,
        devnet::NETWORK,
    )
    .await
    .expect("deploy");
    let admin = devnet::client(&anvil.url(), chain_id, &DEV_KEY_0).expect("client");
    Ledger {
        anvil,
        deployment,
        admin,
        ledger_id,
    }
}

/// A client of `l`'s anvil with its second development key: not the admin, not a
/// member.
pub fn stranger(l: &Ledger) -> Arc<Client> {
    devnet::client(&l.anvil.url(), l.anvil.chain_id(), &devnet::DEV_KEY_1).expect("client")
}

/// Test member key `i`: secret keccak256("isthmus test signer i").
pub fn member_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&keccak256(format!("isthmus test signer {i}").as_bytes()).into())
        .expect("key")
}

pub fn member_address(i: usize) -> Address {
    Address::from(address_of(member_key(i).verifying_key()))
}

pub fn attest(cp: &Checkpoint, members: &[usize]) -> Vec<Attestation> {
    members
        .iter()
        .map(|i| Attestation::sign(&member_key(*i), &cp.digest(&devnet::NETWORK)).expect("sign"))
        .collect()
}

pub fn abi_checkpoint(cp: &Checkpoint) -> AbiCheckpoint {
    AbiCheckpoint {
        origin: cp.origin,
        outbox: cp.outbox.0,
        root: cp.root,
        count: cp.count,
        block_number: cp.block_number,
        block_hash: cp.block_hash,
    }
}

/// A foreign outbox simulated off-chain: messages from `origin`, committed in a tree
/// the test builds, under checkpoints the test members sign.
pub struct ForeignOutbox {
    pub origin: u32,
    pub outbox: Address32,
    pub messages: Vec<Message>,
}

impl ForeignOutbox {
    pub fn new(origin: u32) -> Self {
        Self {
            origin,
            outbox: Address32(keccak256(format!("outbox of {origin}").as_bytes())),
            messages: Vec::new(),
        }
    }

    pub fn push(
        &mut self,
        destination: u32,
        recipient: Address,
        deadline: u64,
        body: &[u8],
    ) -> Message {
        let m = Message {
            nonce: self.messages.len() as u64,
            origin: self.origin,
            sender: Address32::from_evm([0x5e; 20]),
            destination,
            recipient: Address32::from_evm(recipient.0),
            deadline,
            body: body.to_vec(),
        };
        self.messages.push(m.clone());
        m
    }

    /// [`ForeignOutbox::push`] with another sender.
    pub fn push_as(
        &mut self,
        sender: Address32,
        destination: u32,
        recipient: Address,
        deadline: u64,
        body: &[u8],
    ) -> Message {
        let mut m = self.push(destination, recipient, deadline, body);
        m.sender = sender;
        *self.messages.last_mut().expect("just pushed") = m.clone();
        m
    }

    /// `processBatch` on `inbox` of the messages at `nonces`, under this outbox's
    /// checkpoint, with `signatures`.
    pub fn batch(
        &self,
        inbox: &Inbox<Client>,
        signatures: Vec<Bytes>,
        nonces: &[u64],
    ) -> ContractCall<Client, U256> {
        let tree = self.tree();
        inbox.process_batch(
            abi_checkpoint(&self.checkpoint()),
            signatures,
            nonces
                .iter()
                .map(|&n| Bytes::from(self.messages[n as usize].encode()))
                .collect(),
            nonces
                .iter()
                .map(|&n| tree.branch(n).expect("branch").siblings)
                .collect(),
        )
    }

    /// `process` on `inbox` of the message at `nonce`, under this outbox's
    /// checkpoint, with `signatures`.
    pub fn process(
        &self,
        inbox: &Inbox<Client>,
        signatures: Vec<Bytes>,
        nonce: u64,
    ) -> ContractCall<Client, bool> {
        inbox.process(
            abi_checkpoint(&self.checkpoint()),
            signatures,
            Bytes::from(self.messages[nonce as usize].encode()),
            self.tree().branch(nonce).expect("branch").siblings,
        )
    }

    pub fn tree(&self) -> MerkleTree {
        MerkleTree::from_leaves(self.messages.iter().map(|m| m.id().0).collect()).expect("tree")
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: self.origin,
            outbox: self.outbox,
            root: self.tree().root(),
            count: self.messages.len() as u32,
            block_number: 100,
            block_hash: keccak256(b"foreign block 100"),
        }
    }
}

/// Trusts `outbox` of `origin` with the three test members, threshold 2.
pub async fn trust_origin(ledger: &Ledger, origin: u32, outbox: Address32) {
    let inbox =
        isthmus_adapter_evm::contracts::Inbox::new(ledger.deployment.inbox, ledger.admin.clone());
    inbox
        .set_origin(
            origin,
            outbox.0,
            [0u8; 32],
            vec![member_address(0), member_address(1), member_address(2)],
            2,
            0,
        )
        .send()
        .await
        .expect("send setOrigin")
        .await
        .expect("setOrigin mined");
}

/// The events of type `T` in the receipt `r`.
pub fn events<T: ethers::contract::EthEvent>(r: &ethers::types::TransactionReceipt) -> Vec<T> {
    r.logs
        .iter()
        .filter_map(|log| {
            T::decode_log(&ethers::abi::RawLog {
                topics: log.topics.clone(),
                data: log.data.to_vec(),
            })
            .ok()
        })
        .collect()
}
