//! A local anvil ledger with the Isthmus endpoints deployed, for the demo and tests.
//!
//! The anvil binary is the ELF shipped by the npm package pinned in
//! `devnet/package.json` (`make devnet-tools` installs it); `DEVNET_ANVIL` names
//! another one. The process is started on a free port chosen by anvil itself and
//! killed when the handle is dropped, so a failed test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ethers::providers::{Http, Middleware, Provider};
use ethers::types::Address;
use isthmus_protocol::hex32;

use crate::contracts::{ClearingApp, EchoRecipient, Inbox, Outbox, SinkRecipient};
use crate::EvmError;

/// The first of anvil's well-known development accounts (public test key; never
/// holds value anywhere). Deploys the endpoints and administers the Inbox.
pub const DEV_KEY_0: [u8; 32] =
    hex32("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
/// The second anvil development account, used as a delivery submitter.
pub const DEV_KEY_1: [u8; 32] =
    hex32("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
/// The third anvil development account, used as a second submitter.
pub const DEV_KEY_2: [u8; 32] =
    hex32("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");

/// The fourth anvil development account, used as a third submitter.
pub const DEV_KEY_3: [u8; 32] =
    hex32("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");

/// The seventh anvil development account: the devnet's example dApp, which sends
/// messages and clearing instructions (never a relayer's key).
pub const DEV_DAPP_KEY: [u8; 32] =
    hex32("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e");

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    chain_id: u64,
}

impl Anvil {
    /// The pinned anvil binary: `DEVNET_ANVIL`, else the one `devnet/` installed.
    pub fn binary() -> Result<PathBuf, EvmError> {
        if let Some(path) = std::env::var_os("DEVNET_ANVIL") {
            return Ok(PathBuf::from(path));
        }
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../devnet/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if path.exists() {
            Ok(path)
        } else {
            Err(EvmError::Devnet(format!(
                "anvil not found at {}; run `make devnet-tools` (or set DEVNET_ANVIL)",
                path.display()
            )))
        }
    }

    /// Starts anvil for `chain_id` on a free loopback port. Finality: the finalized
    /// tag trails the head by 2 blocks (`--slots-in-an-epoch 1`).
    pub fn spawn(chain_id: u64) -> Result<Self, EvmError> {
        Self::spawn_with(chain_id, &[])
    }

    /// As [`Anvil::spawn`], with extra command-line arguments.
    pub fn spawn_with(chain_id: u64, extra: &[&str]) -> Result<Self, EvmError> {
        Self::start(chain_id, 0, extra)
    }

    /// As [`Anvil::spawn`], on a given port (the one a configuration names), mining
    /// a block every `block_time_s` seconds like a live chain (0: only on demand).
    pub fn spawn_at(chain_id: u64, port: u16, block_time_s: u64) -> Result<Self, EvmError> {
        let block_time = block_time_s.to_string();
        if block_time_s == 0 {
            Self::start(chain_id, port, &[])
        } else {
            Self::start(chain_id, port, &["--block-time", &block_time])
        }
    }

    fn start(chain_id: u64, port: u16, extra: &[&str]) -> Result<Self, EvmError> {
        let binary = Self::binary()?;
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--slots-in-an-epoch", "1"])
            .args(["--port", &port.to_string()])
            .args(["--chain-id", &chain_id.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| EvmError::Devnet(format!("cannot start {}: {e}", binary.display())))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(EvmError::Devnet("anvil stdout not captured".into()));
        };
        let (tx, rx) = mpsc::channel();
        // Reads the chosen port, then keeps draining stdout so anvil never blocks on
        // a full pipe.
        std::thread::Builder::new()
            .name(format!("anvil-{chain_id}-stdout"))
            .spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if !sent {
                        if let Some(port) = line
                            .strip_prefix("Listening on ")
                            .and_then(|addr| addr.rsplit(':').next())
                            .and_then(|p| p.trim().parse::<u16>().ok())
                        {
                            let _ = tx.send(port);
                            sent = true;
                        }
                    }
                }
            })
            .map_err(|e| EvmError::Devnet(format!("cannot start the anvil reader thread: {e}")))?;
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => Ok(Self {
                child,
                port,
                chain_id,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(EvmError::Devnet(format!(
                    "anvil did not report a listening port within 20 s (is port {port} taken?)"
                )))
            }
        }
    }

    /// The HTTP JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// A provider for this node.
    pub fn provider(&self) -> Result<Provider<Http>, EvmError> {
        Provider::<Http>::try_from(self.url())
            .map(|p| p.interval(Duration::from_millis(50)))
            .map_err(|e| EvmError::Devnet(e.to_string()))
    }

    /// Mines `blocks` empty blocks (e.g. to move the finalized tag).
    pub async fn mine(&self, blocks: u64) -> Result<(), EvmError> {
        let provider = self.provider()?;
        let _: serde_json::Value = provider
            .request("anvil_mine", (ethers::types::U256::from(blocks),))
            .await
            .map_err(|e| EvmError::Devnet(format!("anvil_mine: {e}")))?;
        Ok(())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Addresses of the endpoints deployed on one ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deployment {
    /// The Outbox.
    pub outbox: Address,
    /// The Inbox (administered by the deployer).
    pub inbox: Address,
    /// The echo example recipient.
    pub echo: Address,
    /// The clearing example recipient (administered by the deployer).
    pub clearing: Address,
    /// The do-nothing recipient used for gas measurements.
    pub sink: Address,
}

pub use crate::signing_client as client;

/// The devnet Inbox's `handlerGasLimit`: enough for the echo recipient to store an
/// 8 KiB body (about 6M gas), which the end-to-end tests send.
pub const HANDLER_GAS_LIMIT: u64 = 8_000_000;

/// The devnet's network id, `keccak256("isthmus devnet")`: every devnet Inbox and
/// the devnet pallet are set up with it, and the devnet members' configurations name
/// it (`consortium.network`).
pub const NETWORK: isthmus_protocol::Network = isthmus_protocol::Network(hex32(
    "e9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664",
));

/// The currency of the devnet's clearing apps (ISO 4217).
pub const CURRENCY: [u8; 3] = *b"EUR";

/// The `originInbox` of `Inbox.setOrigin` for an origin that takes no receipts: the
/// integration tests' routes unless they ask for receipts.
pub const NO_RECEIPTS: [u8; 32] = [0u8; 32];

/// The deployer's nonce at which [`deploy`] creates the clearing app (after Outbox,
/// Inbox and EchoRecipient) on a fresh chain.
const CLEARING_NONCE: u64 = 3;

/// The clearing app's address that [`deploy`] gives on a fresh chain when `deployer`
/// deploys: another ledger (the Substrate devnet) can name it as its peer before
/// reading any deployment. [`deploy`] checks it.
pub fn clearing_address(deployer: Address) -> Address {
    ethers::utils::get_contract_address(deployer, CLEARING_NONCE)
}

/// Deploys Outbox, Inbox (on `network`) and the example recipients for ledger
/// `ledger_id`, in a fixed order (so a fresh anvil gives the same addresses every
/// time).
pub async fn deploy(
    url: &str,
    chain_id: u64,
    ledger_id: u32,
    secret: &[u8; 32],
    network: isthmus_protocol::Network,
) -> Result<Deployment, EvmError> {
    let client = client(url, chain_id, secret)?;
    let admin = client.address();
    let fail =
        |what: &str, e: &dyn std::fmt::Display| EvmError::Devnet(format!("deploying {what}: {e}"));
    // A new ledger's Outbox: its nonces start at 0.
    let outbox = Outbox::deploy(client.clone(), (ledger_id, 0u64))
        .map_err(|e| fail("Outbox", &e))?
        .send()
        .await
        .map_err(|e| fail("Outbox", &e))?
        .address();
    let inbox = Inbox::deploy(
        client.clone(),
        (
            ledger_id,
            admin,
            ethers::types::U256::from(HANDLER_GAS_LIMIT),
            outbox,
            network.0,
        ),
    )
    .map_err(|e| fail("Inbox", &e))?
    .send()
    .await
    .map_err(|e| fail("Inbox", &e))?
    .address();
    let echo = EchoRecipient::deploy(client.clone(), inbox)
        .map_err(|e| fail("EchoRecipient", &e))?
        .send()
        .await
        .map_err(|e| fail("EchoRecipient", &e))?
        .address();
    let clearing = ClearingApp::deploy(client.clone(), (inbox, outbox, admin, CURRENCY))
        .map_err(|e| fail("ClearingApp", &e))?
        .send()
        .await
        .map_err(|e| fail("ClearingApp", &e))?
        .address();
    let sink = SinkRecipient::deploy(client.clone(), inbox)
        .map_err(|e| fail("SinkRecipient", &e))?
        .send()
        .await
        .map_err(|e| fail("SinkRecipient", &e))?
        .address();
    if clearing != clearing_address(admin) {
        return Err(EvmError::Devnet(format!(
            "the clearing app landed at {clearing:?}, not at {:?}: deploy to a fresh chain",
            clearing_address(admin)
        )));
    }
    // Keep the client's nonce view honest for the caller's next transaction.
    let _ = client.get_block_number().await;
    Ok(Deployment {
        outbox,
        inbox,
        echo,
        clearing,
        sink,
    })
}
