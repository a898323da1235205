//! Harness for the end-to-end tests: two anvil ledgers with the endpoints deployed
//! (and, for the Substrate routes, the dev chain on chopsticks running the dev
//! runtime) wired to a three-member consortium (threshold 2), a Postgres database per
//! member, and the members' `isthmus run` processes, all started by the test and
//! stopped (databases dropped) when the handles drop.
//!
//! For the chaos tests, [`Consortium::with_proxies`] puts each member's ledger RPCs
//! and database behind seeded fault proxies ([`faults`]); [`chaos`] is the scenario
//! that injects faults and checks the invariants afterwards.
//!
//! [`Consortium::with_extra`] adds ledgers and routes of a test's own to each
//! member's configuration, such as a recorded consortium chain served by a
//! [`replay::ReplayServer`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ethers::middleware::SignerMiddleware;
use ethers::providers::{Http, Provider};
use ethers::signers::LocalWallet;
use ethers::types::{Address, Bytes, U256};
use isthmus_adapter_evm::contracts::{ClearingApp, Inbox, Outbox};
use isthmus_adapter_evm::devnet::{
    self, Anvil, Deployment, DEV_KEY_0, DEV_KEY_1, DEV_KEY_2, DEV_KEY_3,
};
use isthmus_protocol::attestation::address_of;
use isthmus_protocol::{keccak256, Address32};
use k256::ecdsa::SigningKey;

pub mod chaos;
pub mod faults;
pub mod replay;
pub use faults::{FaultCounts, FaultKind, FaultMix, Proxy};

/// A signing client.
pub type Client = SignerMiddleware<Provider<Http>, LocalWallet>;

/// Delivery keys of the three members.
pub const SUBMITTERS: [[u8; 32]; 3] = [DEV_KEY_1, DEV_KEY_2, DEV_KEY_3];

/// The name of a certificate the consortium CA issued to no member.
pub const STRANGER: &str = "stranger";

/// Member `i`'s attestation secret: keccak256("isthmus test signer i") (the
/// protocol vectors' test keys).
pub fn member_secret(i: usize) -> [u8; 32] {
    keccak256(format!("isthmus test signer {i}").as_bytes())
}

/// Member `i`'s signer address.
pub fn member_address(i: usize) -> Address {
    let key = SigningKey::from_bytes(&member_secret(i).into())
        .unwrap_or_else(|e| panic!("test key {i}: {e}"));
    Address::from(address_of(key.verifying_key()))
}

/// One anvil ledger with the endpoints.
pub struct Ledger {
    /// Configured name.
    pub name: &'static str,
    /// Protocol ledger id.
    pub id: u32,
    /// The node (killed on drop).
    pub anvil: Anvil,
    /// Deployed addresses.
    pub deployment: Deployment,
    /// Admin client (anvil account 0): deploys, configures, dispatches.
    pub admin: Arc<Client>,
}

impl Ledger {
    /// The Outbox, as the admin.
    pub fn outbox(&self) -> Outbox<Client> {
        Outbox::new(self.deployment.outbox, self.admin.clone())
    }

    /// The Inbox, as the admin.
    pub fn inbox(&self) -> Inbox<Client> {
        Inbox::new(self.deployment.inbox, self.admin.clone())
    }

    /// The clearing app, as the admin.
    pub fn clearing(&self) -> ClearingApp<Client> {
        ClearingApp::new(self.deployment.clearing, self.admin.clone())
    }

    /// Dispatches `body` to `recipient` on ledger `destination`; returns the id.
    pub async fn dispatch(
        &self,
        destination: u32,
        recipient: Address,
        deadline: u64,
        body: &[u8],
    ) -> [u8; 32] {
        self.dispatch_raw(
            destination,
            Address32::from_evm(recipient.0).0,
            deadline,
            body,
        )
        .await
    }

    /// Dispatches `n` messages to `recipient` on `destination` as fast as the node
    /// takes them (each transaction enters the pool before the next is signed; the
    /// receipts are awaited at the end); returns their ids in nonce order.
    pub async fn dispatch_burst(
        &self,
        destination: u32,
        recipient: Address,
        n: usize,
    ) -> Vec<[u8; 32]> {
        let bodies = (0..n).map(|i| format!("burst {i}").into_bytes()).collect();
        self.dispatch_burst_raw(destination, Address32::from_evm(recipient.0).0, bodies)
            .await
    }

    /// [`Ledger::dispatch_burst`] of the given bodies to a 32-byte recipient.
    pub async fn dispatch_burst_raw(
        &self,
        destination: u32,
        recipient: [u8; 32],
        bodies: Vec<Vec<u8>>,
    ) -> Vec<[u8; 32]> {
        use ethers::providers::Middleware;
        use ethers::signers::Signer;
        let first = self
            .admin
            .get_transaction_count(
                self.admin.signer().address(),
                Some(ethers::types::BlockNumber::Pending.into()),
            )
            .await
            .unwrap_or_else(|e| panic!("nonce on {}: {e}", self.name));
        let mut pending = Vec::with_capacity(bodies.len());
        for (i, body) in bodies.into_iter().enumerate() {
            let call = self
                .outbox()
                .dispatch(destination, recipient, 0, Bytes::from(body))
                .nonce(first + i);
            let tx = call
                .send()
                .await
                .unwrap_or_else(|e| panic!("dispatch on {}: {e}", self.name))
                .tx_hash();
            pending.push(tx);
        }
        let mut ids = Vec::with_capacity(pending.len());
        for tx in pending {
            let receipt = loop {
                match self.admin.get_transaction_receipt(tx).await {
                    Ok(Some(r)) => break r,
                    Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(e) => panic!("receipt on {}: {e}", self.name),
                }
            };
            let log = receipt
                .logs
                .iter()
                .find(|l| l.address == self.deployment.outbox)
                .unwrap_or_else(|| panic!("no Dispatch event on {}", self.name));
            ids.push(log.topics[1].0);
        }
        ids
    }

    /// [`Ledger::dispatch`] to a 32-byte recipient (an account or a pallet app).
    pub async fn dispatch_raw(
        &self,
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: &[u8],
    ) -> [u8; 32] {
        let receipt = self
            .outbox()
            .dispatch(destination, recipient, deadline, Bytes::from(body.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("dispatch on {}: {e}", self.name))
            .await
            .unwrap_or_else(|e| panic!("dispatch receipt on {}: {e}", self.name))
            .unwrap_or_else(|| panic!("dispatch on {} dropped", self.name));
        let log = receipt
            .logs
            .iter()
            .find(|l| l.address == self.deployment.outbox)
            .unwrap_or_else(|| panic!("no Dispatch event on {}", self.name));
        log.topics[1].0
    }
}

impl Ledger {
    /// Sends `body` from this ledger's echo app (`EchoRecipient.send`, as the admin)
    /// to `recipient` on `destination`: the app is the message's sender and takes its
    /// receipt. Returns the message id.
    pub async fn send_from_echo(
        &self,
        destination: u32,
        recipient: Address,
        deadline: u64,
        body: &[u8],
    ) -> [u8; 32] {
        let app = isthmus_adapter_evm::contracts::EchoRecipient::new(
            self.deployment.echo,
            self.admin.clone(),
        );
        let receipt = app
            .send(
                self.deployment.outbox,
                destination,
                Address32::from_evm(recipient.0).0,
                deadline,
                Bytes::from(body.to_vec()),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("send from the echo app on {}: {e}", self.name))
            .await
            .unwrap_or_else(|e| panic!("send receipt on {}: {e}", self.name))
            .unwrap_or_else(|| panic!("send on {} dropped", self.name));
        dispatched(&receipt)
            .unwrap_or_else(|| panic!("no Dispatch event in the send on {}", self.name))
    }
}

/// The id of the message a transaction dispatched (its first Outbox `Dispatch`
/// event), if any.
pub fn dispatched(receipt: &ethers::types::TransactionReceipt) -> Option<[u8; 32]> {
    receipt.logs.iter().find_map(|log| {
        <isthmus_adapter_evm::contracts::outbox::DispatchFilter as ethers::contract::EthEvent>::decode_log(
            &ethers::abi::RawLog {
                topics: log.topics.clone(),
                data: log.data.to_vec(),
            },
        )
        .ok()
        .map(|d| d.id)
    })
}

/// Two ledgers, `evm-a` (id 1) and `evm-b` (id 2), each trusting the other's
/// Outbox with the three test members at threshold 2; blocks every second. With
/// [`Devnet::start_with_substrate`], also the Substrate ledger `sub` (id 3), trusted
/// by both and trusting both.
pub struct Devnet {
    /// Ledger evm-a.
    pub a: Ledger,
    /// Ledger evm-b.
    pub b: Ledger,
    /// Ledger sub, when started.
    pub sub: Option<SubLedger>,
}

/// The Substrate dev chain (killed on drop) and a client of it.
pub struct SubLedger {
    /// Protocol ledger id (3).
    pub id: u32,
    /// The chain process.
    pub chain: isthmus_adapter_substrate::devnet::DevChain,
    /// A client.
    pub client: isthmus_adapter_substrate::SubstrateClient,
}

/// The Substrate ledger's id in the harness.
pub const SUB_LEDGER: u32 = 3;

/// The dev runtime's clearing app address: `keccak256("isthmus clearing app")`.
pub fn pallet_clearing_address() -> [u8; 32] {
    isthmus_adapter_substrate::keys::CLEARING_APP
}

/// What each ledger holds in the other's clearing app in
/// [`Devnet::start_with_substrate_receipts`].
pub const PAYMENT_LIQUIDITY: u64 = 500;

/// The dev runtime's clearing banks (its genesis opens them with 1,000,000 each).
pub const SUB_BANK_A: [u8; 32] = [0x0a; 32];
/// Second bank of the dev runtime.
pub const SUB_BANK_B: [u8; 32] = [0x0b; 32];
/// The members' sr25519 submitters on the Substrate ledger (funded dev accounts; Alice
/// is left to the tests as the dApp and sudo account).
pub const SUB_SUBMITTERS: [&str; 3] = ["//Bob", "//Charlie", "//Dave"];

/// The clearing banks the devnet opens on both ledgers.
pub const BANK_A: [u8; 32] = [0xa1; 32];
/// Second clearing bank.
pub const BANK_B: [u8; 32] = [0xb2; 32];

async fn ledger(name: &'static str, id: u32, chain_id: u64) -> Ledger {
    let anvil = Anvil::spawn_with(chain_id, &["--block-time", "1"])
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let deployment = devnet::deploy(&anvil.url(), chain_id, id, &DEV_KEY_0, devnet::NETWORK)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let admin = devnet::client(&anvil.url(), chain_id, &DEV_KEY_0)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Ledger {
        name,
        id,
        anvil,
        deployment,
        admin,
    }
}

impl Devnet {
    /// Starts and wires both ledgers (routes without receipts).
    pub async fn start() -> Self {
        Self::start_wired(false).await
    }

    /// [`Devnet::start`], each Inbox set up with the other's as the origin Inbox:
    /// every message's receipt travels back to its sender.
    pub async fn start_with_receipts() -> Self {
        Self::start_wired(true).await
    }

    async fn start_wired(receipts: bool) -> Self {
        let a = ledger("evm-a", 1, 31337).await;
        let b = ledger("evm-b", 2, 31338).await;
        let signers = vec![member_address(0), member_address(1), member_address(2)];
        for (here, there) in [(&a, &b), (&b, &a)] {
            here.inbox()
                .set_origin(
                    there.id,
                    Address32::from_evm(there.deployment.outbox.0).0,
                    if receipts {
                        Address32::from_evm(there.deployment.inbox.0).0
                    } else {
                        isthmus_adapter_evm::devnet::NO_RECEIPTS
                    },
                    signers.clone(),
                    2,
                    0,
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("setOrigin on {}: {e}", here.name))
                .await
                .unwrap_or_else(|e| panic!("setOrigin on {}: {e}", here.name));
            let app = here.clearing();
            for (bank, balance) in [(BANK_A, 1_000_000u64), (BANK_B, 0)] {
                app.open_bank(bank, U256::from(balance))
                    .send()
                    .await
                    .expect("openBank")
                    .await
                    .expect("openBank mined");
            }
            // The other ledger's admin instructs payments from BANK_A.
            let sender = Address32::from_evm(there.admin_address().0).0;
            app.set_debitor(there.id, sender, BANK_A, true)
                .send()
                .await
                .expect("trust")
                .await
                .expect("trust mined");
        }
        Self { a, b, sub: None }
    }

    /// [`Devnet::start`] plus the Substrate dev chain, wired both ways: the pallet's
    /// inbox trusts both Outboxes and its clearing app their admins; both Inboxes
    /// trust the pallet's outbox and both clearing apps `//Alice`.
    pub async fn start_with_substrate() -> Self {
        Self::start_substrate_wired(false).await
    }

    /// [`Devnet::start_with_substrate`] with receipts on every route, and the
    /// clearing apps of evm-a and sub set up for payments both ways: peers of each
    /// other, each holding [`PAYMENT_LIQUIDITY`] in the other's app; evm-a's admin
    /// operates BANK_A there and `//Alice` SUB_BANK_A on sub.
    pub async fn start_with_substrate_receipts() -> Self {
        use isthmus_adapter_substrate::devnet;
        let net = Self::start_substrate_wired(true).await;
        let sub = net.sub.as_ref().expect("sub started");
        let a = &net.a;
        let app = a.clearing();
        for call in [
            app.set_bank_owner(BANK_A, a.admin_address()),
            app.set_peer(SUB_LEDGER, pallet_clearing_address()),
            app.open_ledger_account(SUB_LEDGER, U256::from(PAYMENT_LIQUIDITY)),
        ] {
            call.send()
                .await
                .expect("clearing set-up on evm-a")
                .await
                .expect("clearing set-up on evm-a mined");
        }
        devnet::sudo_clearing_peer(
            &sub.client,
            a.id,
            Address32::from_evm(a.deployment.clearing.0).0,
            u128::from(PAYMENT_LIQUIDITY),
        )
        .await
        .expect("clearing peer on sub");
        devnet::sudo_set_bank_owner(&sub.client, SUB_BANK_A, devnet::dapp_accounts()[0])
            .await
            .expect("bank owner on sub");
        net
    }

    async fn start_substrate_wired(receipts: bool) -> Self {
        use isthmus_adapter_substrate::devnet;
        let mut net = Self::start_wired(receipts).await;
        let chain = devnet::DevChain::start().await.expect("dev chain starts");
        let client = isthmus_adapter_substrate::SubstrateClient::connect(&chain.url())
            .await
            .expect("dev chain answers");
        devnet::sudo_set_ledger_id(&client, SUB_LEDGER)
            .await
            .expect("set ledger id");
        let signers = [member_address(0), member_address(1), member_address(2)];
        let raw: Vec<[u8; 20]> = signers.iter().map(|a| a.0).collect();
        for l in [&net.a, &net.b] {
            devnet::sudo_set_origin(
                &client,
                l.id,
                Address32::from_evm(l.deployment.outbox.0).0,
                &raw,
                2,
            )
            .await
            .expect("set_origin on sub");
            if receipts {
                devnet::sudo_set_receipt_endpoint(
                    &client,
                    l.id,
                    Address32::from_evm(l.deployment.inbox.0).0,
                )
                .await
                .expect("set_receipt_endpoint on sub");
            }
            for bank in [SUB_BANK_A, SUB_BANK_B] {
                devnet::sudo_set_debitor(
                    &client,
                    l.id,
                    Address32::from_evm(l.admin_address().0).0,
                    bank,
                )
                .await
                .expect("set_debitor on sub");
            }
            l.inbox()
                .set_origin(
                    SUB_LEDGER,
                    isthmus_adapter_substrate::keys::OUTBOX_ID,
                    if receipts {
                        isthmus_adapter_substrate::keys::INBOX_ID
                    } else {
                        isthmus_adapter_evm::devnet::NO_RECEIPTS
                    },
                    signers.to_vec(),
                    2,
                    0,
                )
                .send()
                .await
                .expect("setOrigin")
                .await
                .expect("setOrigin mined");
            let alice = devnet::dapp_accounts()[0];
            l.clearing()
                .set_debitor(SUB_LEDGER, alice, BANK_A, true)
                .send()
                .await
                .expect("trust")
                .await
                .expect("trust mined");
        }
        net.sub = Some(SubLedger {
            id: SUB_LEDGER,
            chain,
            client,
        });
        net
    }
}

impl SubLedger {
    /// Dispatches `body` from `//Alice` to `recipient` on ledger `destination`;
    /// returns the id.
    pub async fn dispatch(
        &self,
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: &[u8],
    ) -> [u8; 32] {
        let alice = isthmus_adapter_substrate::Destination::new(
            self.client.clone(),
            subxt_signer::sr25519::dev::alice(),
        );
        let (_, id) = alice
            .dispatch(destination, recipient, deadline, body.to_vec())
            .await
            .unwrap_or_else(|e| panic!("dispatch on sub: {e}"));
        id.0
    }

    /// How many of `ids` the pallet's inbox has processed (at its finalized head).
    pub async fn delivered_count(&self, ids: &[[u8; 32]]) -> usize {
        let probe = isthmus_adapter_substrate::Destination::new(
            self.client.clone(),
            subxt_signer::sr25519::dev::alice(),
        );
        let mut n = 0;
        for id in ids {
            if probe
                .is_delivered(&isthmus_protocol::MessageId(*id))
                .await
                .unwrap_or(false)
            {
                n += 1;
            }
        }
        n
    }

    /// The clearing app's balance of `bank`.
    pub async fn clearing_balance(&self, bank: [u8; 32]) -> u128 {
        isthmus_adapter_substrate::devnet::clearing_balance(&self.client, bank)
            .await
            .expect("clearing balance")
    }

    /// The clearing app's banks plus ledger accounts plus escrow: what no payment may
    /// change.
    pub async fn clearing_holdings(&self, ledgers: &[u32]) -> u128 {
        use isthmus_adapter_substrate::devnet;
        let mut total = devnet::clearing_escrowed(&self.client)
            .await
            .expect("escrowed");
        for bank in [SUB_BANK_A, SUB_BANK_B] {
            total += self.clearing_balance(bank).await;
        }
        for ledger in ledgers {
            total += devnet::clearing_ledger_balance(&self.client, *ledger)
                .await
                .expect("ledger balance");
        }
        total
    }

    /// A payment from SUB_BANK_A, signed by `//Alice` (its operator); the message id.
    pub async fn pay(
        &self,
        destination: u32,
        uetr: [u8; 32],
        creditor: [u8; 32],
        amount: u128,
        deadline: u64,
    ) -> [u8; 32] {
        let alice = isthmus_adapter_substrate::Destination::new(
            self.client.clone(),
            subxt_signer::sr25519::dev::alice(),
        );
        isthmus_adapter_substrate::devnet::pay(
            &alice,
            destination,
            uetr,
            SUB_BANK_A,
            creditor,
            amount,
            deadline,
        )
        .await
        .unwrap_or_else(|e| panic!("pay on sub: {e}"))
        .0
    }

    /// How many messages the pallet's outbox holds (at the best block).
    pub async fn outbox_count(&self) -> u32 {
        let raw = self
            .client
            .storage(&isthmus_adapter_substrate::keys::outbox_count_key(), None)
            .await
            .expect("outbox count")
            .unwrap_or_default();
        <[u8; 4]>::try_from(raw.as_slice()).map_or(0, u32::from_le_bytes)
    }

    /// The chain's time (`Timestamp::Now`) at its best block, in unix seconds.
    pub async fn chain_time(&self) -> u64 {
        isthmus_adapter_substrate::devnet::chain_time(&self.client)
            .await
            .expect("chain time")
    }

    /// Builds empty blocks until the chain's time is past `deadline`.
    pub async fn pass(&self, deadline: u64) {
        while self.chain_time().await <= deadline {
            self.chain.new_blocks(1).await.expect("new block");
        }
    }
}

impl Ledger {
    /// The admin's address.
    pub fn admin_address(&self) -> Address {
        use ethers::signers::Signer;
        self.admin.signer().address()
    }
}

/// A payment instruction for the clearing app.
pub fn payment(instruction: u8, from: [u8; 32], to: [u8; 32], amount: u64) -> Vec<u8> {
    use ethers::abi::Token;
    ethers::abi::encode(&[
        Token::FixedBytes(vec![instruction; 32]),
        Token::FixedBytes(from.to_vec()),
        Token::FixedBytes(to.to_vec()),
        Token::Uint(U256::from(amount)),
    ])
}

/// The `isthmus` binary: `DEVNET_ISTHMUS_BIN`, else the workspace's target directory.
pub fn isthmus_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DEVNET_ISTHMUS_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/isthmus");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p isthmus-relayer` (make test does)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The server URL every member's database lives on.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// One consortium member: its files, database and (when started) its process.
pub struct Member {
    /// Member name (`bank-0`...).
    pub name: String,
    /// Index in the consortium.
    pub index: usize,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its database URL.
    pub database_url: String,
    db_name: String,
    /// Its plain HTTP port (health, metrics).
    pub port: u16,
    /// Its attestation endpoint's port (mutual TLS).
    pub attest_port: u16,
    /// Its log file.
    pub log: PathBuf,
    /// Extra environment of its process (configuration overrides).
    pub env: Vec<(String, String)>,
    /// The fault proxies its configuration reaches the ledgers and its database
    /// through ([`Consortium::with_proxies`]); `None`: it reaches them directly.
    pub proxies: Option<Arc<MemberProxies>>,
    child: Option<Child>,
}

/// What [`Consortium::with_extra`] tells its closure about the member whose
/// configuration it is writing.
#[derive(Debug, Clone)]
pub struct MemberFiles {
    /// Index in the consortium.
    pub index: usize,
    /// Member name (`bank-0`...).
    pub name: String,
    /// The file of its EVM submitter key (the one its devnet ledgers use).
    pub submitter: PathBuf,
}

/// A consortium of three members for a devnet, in a temporary directory.
pub struct Consortium {
    /// The members.
    pub members: Vec<Member>,
    /// Holds the configs, keys and logs.
    pub dir: tempfile::TempDir,
}

impl Consortium {
    /// Writes three members' configurations (batches of up to 16 messages) and
    /// creates their databases.
    pub async fn new(devnet: &Devnet, tag: &str) -> Self {
        Self::with_batch_size(devnet, tag, 16).await
    }

    /// [`Consortium::new`] with routes batching up to `batch_size` messages.
    pub async fn with_batch_size(devnet: &Devnet, tag: &str, batch_size: u32) -> Self {
        Self::build(devnet, tag, batch_size, None, None).await
    }

    /// [`Consortium::new`], each member's configuration carrying `extra(member)` (TOML:
    /// more `[[ledgers]]` and `[[routes]]` entries) after the devnet's ledgers and
    /// routes, before `[consortium]`.
    pub async fn with_extra(
        devnet: &Devnet,
        tag: &str,
        extra: impl Fn(&MemberFiles) -> String,
    ) -> Self {
        Self::build(devnet, tag, 16, None, Some(&extra)).await
    }

    /// [`Consortium::new`], each member reaching every ledger's RPC and its database
    /// through its own fault proxies ([`MemberProxies`], transparent until a test sets
    /// a [`FaultMix`]), their faults drawn from `seed`. The test's own queries
    /// ([`Member::db`], [`Member::count`]) go to the database directly.
    pub async fn with_proxies(devnet: &Devnet, tag: &str, seed: u64) -> Self {
        Self::build(devnet, tag, 16, Some(seed), None).await
    }

    async fn build(
        devnet: &Devnet,
        tag: &str,
        batch_size: u32,
        proxy_seed: Option<u64>,
        extra: Option<&dyn Fn(&MemberFiles) -> String>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = [free_port(), free_port(), free_port()];
        let attest_ports = [free_port(), free_port(), free_port()];
        // The consortium's CA and the members' certificates (mutual TLS between the
        // attestation endpoints), plus a certificate of the CA that names no member.
        let tls = dir.path().join("tls");
        let names: Vec<String> = (0..3)
            .map(|i| format!("bank-{i}"))
            .chain(std::iter::once(STRANGER.to_owned()))
            .collect();
        isthmus_relayer::devnet::DevnetCa::new("integration-test consortium CA")
            .and_then(|ca| ca.write(&tls, &names))
            .expect("consortium certificates");
        let mut members = Vec::new();
        for i in 0..3 {
            let name = format!("bank-{i}");
            let db_name = format!("isthmus_it_{tag}_{}_{i}", std::process::id());
            let admin = sqlx::PgPool::connect(&server_url())
                .await
                .expect("postgres answers (make postgres)");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
                .execute(&admin)
                .await
                .expect("drop");
            sqlx::query(&format!("CREATE DATABASE {db_name}"))
                .execute(&admin)
                .await
                .expect("create database");
            admin.close().await;
            let base = server_url();
            let database_url = format!(
                "{}/{db_name}",
                base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
            );
            let key = dir.path().join(format!("{name}.key"));
            std::fs::write(&key, hex::encode(member_secret(i))).expect("key file");
            let submitter = dir.path().join(format!("{name}-submitter.key"));
            std::fs::write(&submitter, hex::encode(SUBMITTERS[i])).expect("key file");
            let proxies = match proxy_seed {
                Some(seed) => Some(Arc::new(
                    MemberProxies::start(
                        devnet,
                        &name,
                        &database_url,
                        seed ^ ((i as u64 + 1) << 32),
                    )
                    .await,
                )),
                None => None,
            };
            let rpc_of = |l: &Ledger| match &proxies {
                Some(p) => p
                    .proxy_of(l.name)
                    .map_or_else(|| l.anvil.url(), |p| p.rewrite(&l.anvil.url())),
                None => l.anvil.url(),
            };
            let ledger = |l: &Ledger, chain_id: u64| {
                format!(
                    "[[ledgers]]\nname = \"{}\"\nid = {}\nkind = \"evm\"\nrpc = [\"{}\"]\nchain_id = {chain_id}\n\
                     outbox = \"{:?}\"\ninbox = \"{:?}\"\nfinality = \"finalized-tag\"\npoll_interval_ms = 200\n\
                     payment_apps = [\"{:?}\"]\nsubmitter = {{ file = \"{}\" }}\n\n",
                    l.name, l.id, rpc_of(l), l.deployment.outbox, l.deployment.inbox, l.deployment.clearing,
                    submitter.display()
                )
            };
            let config_db_url = proxies.as_ref().map_or_else(
                || database_url.clone(),
                |p| p.postgres.rewrite(&database_url),
            );
            let mut toml = format!(
                "[database]\nurl = \"{config_db_url}\"\npool_size = 4\n\n[member]\nname = \"{name}\"\nkey = {{ file = \"{}\" }}\n\n",
                key.display()
            );
            toml += &ledger(&devnet.a, 31337);
            toml += &ledger(&devnet.b, 31338);
            toml += &format!("[[routes]]\nsource = \"evm-a\"\ndestination = \"evm-b\"\nbatch_size = {batch_size}\n\n");
            toml += &format!("[[routes]]\nsource = \"evm-b\"\ndestination = \"evm-a\"\nbatch_size = {batch_size}\n\n");
            if let Some(sub) = &devnet.sub {
                let seed = dir.path().join(format!("{name}-sub-submitter.key"));
                std::fs::write(&seed, SUB_SUBMITTERS[i]).expect("key file");
                let anchor = sub.chain.anchor_toml().expect("the devnet's anchor");
                toml += &format!(
                    "[[ledgers]]\nname = \"sub\"\nid = {}\nkind = \"substrate\"\nrpc = [\"{}\"]\n\
                     finality = \"grandpa\"\njustifications = \"rpc\"\n\
                     {}\npoll_interval_ms = 200\npayment_apps = [\"0x{}\"]\n\
                     submitter = {{ file = \"{}\" }}\n\n",
                    sub.id,
                    proxies
                        .as_ref()
                        .and_then(|p| p.sub.as_ref())
                        .map_or_else(|| sub.chain.url(), |p| p.rewrite(&sub.chain.url())),
                    anchor,
                    hex::encode(pallet_clearing_address()),
                    seed.display()
                );
                toml +=
                    "[[routes]]\nsource = \"evm-a\"\ndestination = \"sub\"\nbatch_size = 16\n\n";
                toml +=
                    "[[routes]]\nsource = \"sub\"\ndestination = \"evm-a\"\nbatch_size = 16\n\n";
            }
            if let Some(extra) = extra {
                toml += &extra(&MemberFiles {
                    index: i,
                    name: name.clone(),
                    submitter: submitter.clone(),
                });
                toml += "\n";
            }
            toml += &format!(
                "[consortium]\nnetwork = \"{}\"\nthreshold = 2\n\n",
                devnet::NETWORK
            );
            for (j, port) in attest_ports.iter().enumerate() {
                toml += &format!(
                    "[[consortium.members]]\nname = \"bank-{j}\"\nsigner = \"{:?}\"\nattestation_url = \"https://127.0.0.1:{port}\"\n\n",
                    member_address(j)
                );
            }
            toml += &format!(
                "[http]\nlisten = \"127.0.0.1:{}\"\n\n[attestation]\nlisten = \"127.0.0.1:{}\"\n\
                 certificate = \"{}\"\nkey = {{ file = \"{}\" }}\nca = \"{}\"\n\n\
                 [log]\nlevel = \"info\"\nformat = \"json\"\n",
                ports[i],
                attest_ports[i],
                tls.join(format!("{name}.pem")).display(),
                tls.join(format!("{name}.key")).display(),
                tls.join("ca.pem").display(),
            );
            let config = dir.path().join(format!("{name}.toml"));
            std::fs::write(&config, toml).expect("config file");
            let log = dir.path().join(format!("{name}.log"));
            members.push(Member {
                name,
                index: i,
                config,
                database_url,
                db_name,
                port: ports[i],
                attest_port: attest_ports[i],
                log,
                env: Vec::new(),
                proxies,
                child: None,
            });
        }
        Self { members, dir }
    }
}

impl Member {
    /// Starts (or restarts) `isthmus run`, appending to its log file.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(isthmus_bin())
            .args(["run", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// If the process ended by itself, its exit status (and the member counts as not
    /// started, so [`Member::start`] may start it again).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs an `isthmus` command against this member's configuration.
    pub fn isthmus(&self, args: &[&str]) -> std::process::Output {
        Command::new(isthmus_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("RUST_LOG")
            .output()
            .unwrap_or_else(|e| panic!("running isthmus {args:?}: {e}"))
    }

    /// A pool on this member's database.
    pub async fn db(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database_url)
            .await
            .expect("member database")
    }

    /// The member's log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
        let url = server_url();
        let name = self.db_name.clone();
        // Dropping needs a runtime; the tests' runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

impl Consortium {
    /// The TLS files (`<name>.pem`, `<name>.key`, `ca.pem`) the consortium's CA made.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// A client presenting the certificate issued to `name` (a member, or
    /// [`STRANGER`]), trusting the consortium CA; `None`: no client certificate.
    pub fn tls_client(&self, name: Option<&str>) -> reqwest::Client {
        let tls = self.tls_dir();
        let ca = std::fs::read(tls.join("ca.pem")).expect("ca.pem");
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA certificate"))
            .timeout(Duration::from_secs(10));
        if let Some(name) = name {
            let mut pem = std::fs::read(tls.join(format!("{name}.pem"))).expect("certificate");
            pem.extend(std::fs::read(tls.join(format!("{name}.key"))).expect("key"));
            builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
        }
        builder.build().expect("TLS client")
    }

    /// Serves a dishonest member `index` on its attestation port, with its own
    /// certificate: it answers every attestation request with a valid signature by
    /// the member's key over a checkpoint with a made-up root. Returns the server
    /// task (abort it to stop).
    pub async fn spawn_liar(&self, index: usize) -> tokio::task::JoinHandle<()> {
        use axum::routing::post;
        use axum::Json;
        use isthmus_protocol::{Attestation, Checkpoint};
        let member = &self.members[index];
        let tls = self.tls_dir();
        let files = isthmus_config::TlsFiles {
            certificate: tls.join(format!("{}.pem", member.name)),
            key: isthmus_config::KeySource::File(figment::value::magic::RelativePathBuf::from(
                tls.join(format!("{}.key", member.name)),
            )),
            ca: tls.join("ca.pem"),
        };
        let server = isthmus_relayer::mtls::server_config(&files.load().expect("liar's TLS files"))
            .expect("liar's TLS configuration");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", member.attest_port))
            .await
            .expect("liar's port is free");
        let app = axum::Router::new().route(
            "/v1/attest",
            post(move |Json(req): Json<serde_json::Value>| async move {
                let hash: [u8; 32] = hex::decode(
                    req["block_hash"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("0x"),
                )
                .ok()
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 32]);
                let lie = Checkpoint {
                    origin: req["origin"].as_u64().unwrap_or(0) as u32,
                    outbox: Address32([0; 32]),
                    root: keccak256(b"a root that was never committed"),
                    count: 1_000,
                    block_number: req["block_number"].as_u64().unwrap_or(0),
                    block_hash: hash,
                };
                let key = SigningKey::from_bytes(&member_secret(index).into()).expect("test key");
                let sig = Attestation::sign(&key, &lie.digest(&devnet::NETWORK)).expect("sign");
                Json(serde_json::json!({
                    "member": format!("bank-{index}"),
                    "signer": format!("{:?}", member_address(index)),
                    "checkpoint": {
                        "origin": lie.origin,
                        "outbox": format!("0x{}", hex::encode(lie.outbox.0)),
                        "root": format!("0x{}", hex::encode(lie.root)),
                        "count": lie.count,
                        "block_number": lie.block_number,
                        "block_hash": format!("0x{}", hex::encode(lie.block_hash)),
                    },
                    "signature": format!("0x{}", hex::encode(sig.0)),
                }))
            }),
        );
        // The liar answers whoever calls: its directory names nobody.
        let directory =
            isthmus_relayer::mtls::Directory::new(&isthmus_config::ConsortiumSettings {
                network: devnet::NETWORK.0,
                members: Vec::new(),
                threshold: 1,
                takeover: Duration::from_secs(1),
            });
        tokio::spawn(isthmus_relayer::peer_endpoint::serve_router(
            listener,
            server,
            directory,
            app,
            Arc::new(|_| {}),
            tokio_util::sync::CancellationToken::new(),
        ))
    }
}

impl Ledger {
    /// How many of `ids` the Inbox has delivered: its `MessageDelivered` events
    /// (one per delivered message, indexed by id; the Inbox's own delivered bits
    /// are kept by origin and nonce).
    pub async fn delivered_count(&self, ids: &[[u8; 32]]) -> usize {
        use isthmus_adapter_evm::contracts::inbox::MessageDeliveredFilter;
        let wanted: Vec<ethers::types::H256> =
            ids.iter().map(|id| ethers::types::H256(*id)).collect();
        let events = self
            .inbox()
            .event::<MessageDeliveredFilter>()
            .topic1(wanted)
            .from_block(0u64)
            .query()
            .await
            .unwrap_or_default();
        events
            .iter()
            .map(|e| e.id)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// The time of the node's latest block (unix seconds).
    pub async fn chain_time(&self) -> u64 {
        use ethers::providers::Middleware;
        self.admin
            .get_block(ethers::types::BlockNumber::Latest)
            .await
            .unwrap_or_else(|e| panic!("latest block of {}: {e}", self.name))
            .unwrap_or_else(|| panic!("{} has no latest block", self.name))
            .timestamp
            .as_u64()
    }

    /// Moves the chain's clock past `deadline` (`evm_increaseTime`, then a block).
    pub async fn pass(&self, deadline: u64) {
        use ethers::providers::Middleware;
        let now = self.chain_time().await;
        if now <= deadline {
            let provider = self.admin.provider();
            let _: serde_json::Value = provider
                .request("evm_increaseTime", [deadline - now + 1])
                .await
                .unwrap_or_else(|e| panic!("evm_increaseTime on {}: {e}", self.name));
            let _: serde_json::Value = provider
                .request("evm_mine", ())
                .await
                .unwrap_or_else(|e| panic!("evm_mine on {}: {e}", self.name));
        }
    }

    /// Whether the Inbox has delivered every one of `ids`.
    pub async fn all_delivered(&self, ids: &[[u8; 32]]) -> bool {
        self.delivered_count(ids).await == ids.len()
    }

    /// Waits up to `within` for the Inbox to deliver every one of `ids` (else fails,
    /// printing `logs`), then checks each was delivered exactly once: one
    /// `MessageDelivered` per message.
    pub async fn expect_delivered_once(
        &self,
        ids: &[[u8; 32]],
        within: Duration,
        logs: impl Fn() -> String,
    ) {
        let all = wait_until(within, || self.all_delivered(ids)).await;
        assert!(
            all,
            "{} of {} delivered on {}\n{}",
            self.delivered_count(ids).await,
            ids.len(),
            self.name,
            logs()
        );
        let mut deliveries: std::collections::HashMap<[u8; 32], usize> =
            std::collections::HashMap::new();
        for (id, _) in self.delivered_events().await {
            *deliveries.entry(id).or_default() += 1;
        }
        for id in ids {
            assert_eq!(deliveries.get(id), Some(&1), "0x{}", hex::encode(id));
        }
    }
}

/// Balances of the devnet's two banks, plus both EVM ledgers' accounts, plus escrow,
/// in `app`.
pub async fn holdings(app: &ClearingApp<Client>) -> U256 {
    holdings_with(app, &[1, 2]).await
}

/// Balances of the devnet's two banks, plus the accounts of `ledgers`, plus escrow,
/// in `app`.
pub async fn holdings_with(app: &ClearingApp<Client>, ledgers: &[u32]) -> U256 {
    let mut total = app.escrowed().call().await.expect("escrowed");
    for bank in [BANK_A, BANK_B] {
        total += app.balance_of(bank).call().await.expect("balance");
    }
    for ledger in ledgers {
        total += app
            .ledger_balance(*ledger)
            .call()
            .await
            .expect("ledger balance");
    }
    total
}

/// The value of the series `series` (name and labels exactly as exported) in a
/// Prometheus text exposition.
pub fn metric(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

impl Member {
    /// This member's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// The status this member's history gives message `id`, if it knows the message.
    pub async fn status(&self, id: [u8; 32]) -> Option<String> {
        let pool = self.db().await;
        let row: Option<(String,)> = sqlx::query_as("SELECT status FROM messages WHERE id = $1")
            .bind(id.to_vec())
            .fetch_optional(&pool)
            .await
            .unwrap_or_else(|e| panic!("status of 0x{}: {e}", hex::encode(id)));
        pool.close().await;
        row.map(|(s,)| s)
    }

    /// The single number `sql` returns on this member's database.
    pub async fn count(&self, sql: &str) -> i64 {
        let pool = self.db().await;
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        n
    }
}

impl Consortium {
    /// Adds a second process of member `of` (not started): the same configuration and
    /// database, its own HTTP and attestation ports (`ISTHMUS_HTTP__LISTEN`,
    /// `ISTHMUS_ATTESTATION__LISTEN`) and log. Returns its index
    /// in `members`.
    pub fn add_replica(&mut self, of: usize) -> usize {
        let original = &self.members[of];
        let port = free_port();
        let attest_port = free_port();
        let replica = Member {
            name: format!("{}-replica", original.name),
            index: original.index,
            config: original.config.clone(),
            database_url: original.database_url.clone(),
            db_name: original.db_name.clone(),
            port,
            attest_port,
            log: self
                .dir
                .path()
                .join(format!("{}-replica.log", original.name)),
            env: vec![
                (
                    "ISTHMUS_HTTP__LISTEN".to_owned(),
                    format!("127.0.0.1:{port}"),
                ),
                (
                    "ISTHMUS_ATTESTATION__LISTEN".to_owned(),
                    format!("127.0.0.1:{attest_port}"),
                ),
            ],
            proxies: original.proxies.clone(),
            child: None,
        };
        self.members.push(replica);
        self.members.len() - 1
    }

    /// The end of every member's log, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("--- {} ---\n{}", m.name, m.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One member's fault proxies: one per ledger RPC and one for its database.
#[derive(Debug)]
pub struct MemberProxies {
    /// evm-a's JSON-RPC (HTTP proxy).
    pub evm_a: Proxy,
    /// evm-b's JSON-RPC (HTTP proxy).
    pub evm_b: Proxy,
    /// The Substrate ledger's WebSocket (TCP proxy), when the devnet has one.
    pub sub: Option<Proxy>,
    /// The member's Postgres (TCP proxy).
    pub postgres: Proxy,
}

impl MemberProxies {
    /// Starts transparent proxies for `member` to `devnet`'s nodes and `database_url`;
    /// each draws its faults from its own seed derived from `seed`.
    pub async fn start(devnet: &Devnet, member: &str, database_url: &str, seed: u64) -> Self {
        let proxy = |kind: &'static str, label: String, url: String, salt: u64| async move {
            let seed = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let started = if kind == "http" {
                Proxy::http(&label, &url, seed).await
            } else {
                Proxy::tcp(&label, &url, seed).await
            };
            started.unwrap_or_else(|e| panic!("proxy {label} to {url}: {e}"))
        };
        let sub = match &devnet.sub {
            Some(sub) => Some(proxy("tcp", format!("{member}/sub"), sub.chain.url(), 3).await),
            None => None,
        };
        Self {
            evm_a: proxy("http", format!("{member}/evm-a"), devnet.a.anvil.url(), 1).await,
            evm_b: proxy("http", format!("{member}/evm-b"), devnet.b.anvil.url(), 2).await,
            sub,
            postgres: proxy(
                "tcp",
                format!("{member}/postgres"),
                database_url.to_owned(),
                4,
            )
            .await,
        }
    }

    /// The proxy of the ledger named `ledger`.
    pub fn proxy_of(&self, ledger: &str) -> Option<&Proxy> {
        match ledger {
            "evm-a" => Some(&self.evm_a),
            "evm-b" => Some(&self.evm_b),
            "sub" => self.sub.as_ref(),
            _ => None,
        }
    }

    /// Every proxy of this member.
    pub fn all(&self) -> Vec<&Proxy> {
        let mut all = vec![&self.evm_a, &self.evm_b];
        all.extend(self.sub.as_ref());
        all.push(&self.postgres);
        all
    }

    /// Sets `mix` on both EVM proxies.
    pub fn set_evm_mix(&self, mix: &FaultMix) {
        self.evm_a.set_mix(mix.clone());
        self.evm_b.set_mix(mix.clone());
    }

    /// Turns every proxy's faults off.
    pub fn off(&self) {
        for p in self.all() {
            p.off();
        }
    }

    /// Faults injected by all of this member's proxies.
    pub fn counts(&self) -> FaultCounts {
        let mut total = FaultCounts::default();
        for p in self.all() {
            total.add(&p.counts());
        }
        total
    }
}

impl Consortium {
    /// The proxies of the members (the originals, not replicas) that have them.
    pub fn proxies(&self) -> Vec<Arc<MemberProxies>> {
        let mut seen: Vec<Arc<MemberProxies>> = Vec::new();
        for p in self.members.iter().filter_map(|m| m.proxies.clone()) {
            if !seen.iter().any(|s| Arc::ptr_eq(s, &p)) {
                seen.push(p);
            }
        }
        seen
    }

    /// Turns every member's proxy faults off.
    pub fn faults_off(&self) {
        for p in self.proxies() {
            p.off();
        }
    }

    /// Faults injected by every member's proxies.
    pub fn fault_counts(&self) -> FaultCounts {
        let mut total = FaultCounts::default();
        for p in self.proxies() {
            total.add(&p.counts());
        }
        total
    }
}

/// The resident memory of process `pid`, in KiB (`VmRSS` from `/proc`), if it runs.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The pid of the process listening on loopback TCP `port` (from `/proc`), if any.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let listening = *state == "0A";
            let on_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port);
            if listening && on_port {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`…) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// The port of a `scheme://host:port…` URL.
fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

impl Ledger {
    /// The anvil process's pid.
    pub fn pid(&self) -> u32 {
        port_of(&self.anvil.url())
            .and_then(pid_listening_on)
            .unwrap_or_else(|| panic!("no process listens for {}", self.name))
    }

    /// Freezes the node (SIGSTOP): it neither answers nor mines until
    /// [`Ledger::resume`].
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Every `MessageDelivered` event of the Inbox: (message id, transaction).
    pub async fn delivered_events(&self) -> Vec<([u8; 32], ethers::types::H256)> {
        use ethers::contract::EthEvent;
        use ethers::providers::Middleware;
        use isthmus_adapter_evm::contracts::inbox::MessageDeliveredFilter;
        let filter = ethers::types::Filter::new()
            .address(self.deployment.inbox)
            .topic0(MessageDeliveredFilter::signature())
            .from_block(0u64);
        let logs = self
            .admin
            .get_logs(&filter)
            .await
            .unwrap_or_else(|e| panic!("Inbox events on {}: {e}", self.name));
        logs.into_iter()
            .filter_map(|l| Some((l.topics.get(1)?.0, l.transaction_hash?)))
            .collect()
    }
}

impl SubLedger {
    /// The chain process's pid: chopsticks (the devnet's GRANDPA voters in front of
    /// it run inside this test process).
    pub fn pid(&self) -> u32 {
        port_of(&self.chain.chopsticks_url())
            .and_then(pid_listening_on)
            .unwrap_or_else(|| panic!("no process listens for the Substrate ledger"))
    }
}
