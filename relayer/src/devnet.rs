//! `isthmus devnet`: local development ledgers for the demo and for trying things out.

use std::io::Write;
use std::path::PathBuf;

use isthmus_adapter_evm::devnet::{deploy, Anvil, DEV_KEY_0};

use isthmus_config::LedgerKind;

mod certificates;

pub use certificates::{DevnetCa, Issued};

use crate::cli::{DevnetCertificatesArgs, DevnetEvmArgs, DevnetPayArgs, DevnetSubstrateArgs};
use crate::commands::{self, Outcome};
use crate::RelayerError;

/// Makes the devnet CA and the members' certificates (`isthmus devnet certificates`).
pub fn certificates(
    args: &DevnetCertificatesArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let config = isthmus_config::Config::load(&args.config)?;
    let mut names: Vec<String> = config
        .consortium
        .members
        .iter()
        .map(|m| m.tls_name.clone().unwrap_or_else(|| m.name.clone()))
        .collect();
    names.extend(args.names.iter().cloned());
    if let Some(bad) = names.iter().find(|n| !isthmus_config::is_tls_name(n)) {
        return Err(RelayerError::Usage(format!(
            "`{bad}` is not a DNS name a certificate can carry; use letters, digits, `-` and `.`"
        )));
    }
    let ca = DevnetCa::new("Isthmus devnet consortium CA")?;
    for path in ca.write(&args.out, &names)? {
        writeln!(out, "{}", path.display())?;
    }
    Ok(Outcome::Success)
}

/// The configuration's `consortium.network`, which the devnet's endpoints are set up
/// with.
fn network_of(
    config: &isthmus_config::Config,
    file: &str,
) -> Result<isthmus_protocol::Network, RelayerError> {
    config.consortium.network.parse().map_err(|e| {
        RelayerError::Devnet(format!(
            "consortium.network in {file}: {e}; write 0x and 64 hex digits"
        ))
    })
}

/// Starts anvil for the configured ledger, deploys the endpoints, writes their
/// addresses, then waits for Ctrl-C or SIGTERM and stops anvil.
pub async fn evm(args: &DevnetEvmArgs, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    let Some(config) = commands::load(&args.config, out)? else {
        return Ok(Outcome::Problems);
    };
    let file = args.config.display();
    let ledger = devnet_ledger(&config, &args.config, &args.ledger, LedgerKind::Evm)?;
    let usage =
        |what: &str| RelayerError::Devnet(format!("ledgers `{}` in {file}: {what}", ledger.name));
    let chain_id = ledger
        .chain_id
        .ok_or_else(|| usage("has no chain_id; set one"))?;
    let port = rpc_port(ledger)
        .ok_or_else(|| usage("the first rpc URL names no port; use http://127.0.0.1:PORT"))?;

    let network = network_of(&config, &file.to_string())?;
    let anvil = Anvil::spawn_at(chain_id, port, args.block_time)?;
    let deployment = deploy(&anvil.url(), chain_id, ledger.id, &DEV_KEY_0, network).await?;
    let configured = |addr: &Option<String>| addr.as_deref().map(str::to_ascii_lowercase);
    for (name, deployed, wanted) in [
        ("outbox", deployment.outbox, configured(&ledger.outbox)),
        ("inbox", deployment.inbox, configured(&ledger.inbox)),
    ] {
        let deployed = format!("{deployed:?}");
        if wanted.as_deref() != Some(deployed.as_str()) {
            tracing::warn!(ledger = %ledger.name, contract = name, %deployed, "the configuration names another address; use the deployed one");
        }
    }
    wire(&config, ledger, &anvil.url(), chain_id, &deployment).await?;
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("devnet/state/{}.json", ledger.name)));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({
        "ledger": ledger.name,
        "ledger_id": ledger.id,
        "chain_id": chain_id,
        "rpc": anvil.url(),
        "deployment": deployment,
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n",
    )?;
    writeln!(
        out,
        "{} (ledger id {}, chain id {chain_id}) at {}",
        ledger.name,
        ledger.id,
        anvil.url()
    )?;
    writeln!(
        out,
        "  outbox   {:?}\n  inbox    {:?}\n  echo     {:?}\n  clearing {:?}",
        deployment.outbox, deployment.inbox, deployment.echo, deployment.clearing
    )?;
    writeln!(
        out,
        "addresses written to {}; Ctrl-C stops the ledger",
        path.display()
    )?;
    out.flush()?;
    crate::supervise::wait_for_shutdown().await?;
    drop(anvil);
    Ok(Outcome::Success)
}

/// Starts the Substrate dev chain for the configured ledger and wires it (ledger id;
/// each EVM ledger as an origin whose Inbox takes and sends receipts; the clearing
/// app's debitors, peers, ledger accounts and bank operator), then waits for Ctrl-C or
/// SIGTERM and stops it.
pub async fn substrate(
    args: &DevnetSubstrateArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    use isthmus_adapter_substrate::devnet::{
        dapp_accounts, sudo_clearing_peer, sudo_set_bank_owner, sudo_set_debitor,
        sudo_set_ledger_id, sudo_set_network, sudo_set_origin, sudo_set_receipt_endpoint, DevChain,
    };
    let Some(config) = commands::load(&args.config, out)? else {
        return Ok(Outcome::Problems);
    };
    let file = args.config.display();
    let ledger = devnet_ledger(&config, &args.config, &args.ledger, LedgerKind::Substrate)?;
    let usage =
        |what: &str| RelayerError::Devnet(format!("ledgers `{}` in {file}: {what}", ledger.name));
    let port = rpc_port(ledger)
        .ok_or_else(|| usage("the first rpc URL names no port; use ws://127.0.0.1:PORT"))?;
    let fail = |what: String| RelayerError::Devnet(format!("configuring {}: {what}", ledger.name));
    let chain = DevChain::start_at(port)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let client = isthmus_adapter_substrate::SubstrateClient::connect(&chain.url())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let anchor = devnet_anchor(ledger, &chain).map_err(fail)?;
    sudo_set_ledger_id(&client, ledger.id)
        .await
        .map_err(|e| fail(e.to_string()))?;
    sudo_set_network(&client, network_of(&config, &file.to_string())?)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let (signers, threshold) = consortium_signers(&config).map_err(fail)?;
    let senders = devnet_evm_senders();
    let deployer = {
        use ethers::signers::Signer;
        ethers::signers::LocalWallet::from_bytes(&DEV_KEY_0)
            .map_err(|e| fail(e.to_string()))?
            .address()
    };
    for other in config.ledgers.iter().filter(|l| l.kind == LedgerKind::Evm) {
        let address = |a: &Option<String>| {
            a.as_deref()
                .and_then(|a| a.parse::<ethers::types::Address>().ok())
        };
        let (Some(outbox), Some(other_inbox)) = (address(&other.outbox), address(&other.inbox))
        else {
            continue;
        };
        let raw: Vec<[u8; 20]> = signers.iter().map(|a| a.0).collect();
        sudo_set_origin(
            &client,
            other.id,
            isthmus_protocol::Address32::from_evm(outbox.0).0,
            &raw,
            u32::from(threshold),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        sudo_set_receipt_endpoint(
            &client,
            other.id,
            isthmus_protocol::Address32::from_evm(other_inbox.0).0,
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        for sender in &senders {
            sudo_set_debitor(
                &client,
                other.id,
                isthmus_protocol::Address32::from_evm(sender.0).0,
                SUBSTRATE_DEVNET_BANK_A,
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        }
        // Every devnet EVM ledger is deployed in the same order by the same key.
        let peer = isthmus_adapter_evm::devnet::clearing_address(deployer);
        sudo_clearing_peer(
            &client,
            other.id,
            isthmus_protocol::Address32::from_evm(peer.0).0,
            u128::from(DEVNET_LEDGER_LIQUIDITY),
        )
        .await
        .map_err(|e| fail(e.to_string()))?;
        tracing::info!(ledger = %ledger.name, origin = %other.name, threshold, "pallet inbox trusts the origin's outbox and sends it receipts; the clearing apps are peers");
    }
    // The demo's dApp account on this ledger (`//Ferdie`) operates the first bank.
    sudo_set_bank_owner(&client, SUBSTRATE_DEVNET_BANK_A, dapp_accounts()[1])
        .await
        .map_err(|e| fail(e.to_string()))?;
    writeln!(
        out,
        "{} (ledger id {}) at {}, its GRANDPA authorities serving finality proofs; {anchor}; \
         Ctrl-C stops the ledger",
        ledger.name,
        ledger.id,
        chain.url()
    )?;
    out.flush()?;
    crate::supervise::wait_for_shutdown().await?;
    drop(chain);
    Ok(Outcome::Success)
}

/// `devnet pay`: a payment through the clearing pallet of a Substrate devnet ledger.
pub async fn pay(args: &DevnetPayArgs, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    let Some(config) = commands::load(&args.config, out)? else {
        return Ok(Outcome::Problems);
    };
    let file = args.config.display();
    let ledger = devnet_ledger(&config, &args.config, &args.ledger, LedgerKind::Substrate)?;
    let to = config.ledger(&args.to).ok_or_else(|| {
        let names: Vec<&str> = config.ledgers.iter().map(|l| l.name.as_str()).collect();
        RelayerError::Usage(format!(
            "--to {}: no such ledger in {file}; configured: {}",
            args.to,
            names.join(", ")
        ))
    })?;
    let hex32 = |flag: &str, raw: &str| {
        crate::attest::parse_hex32(raw).ok_or_else(|| {
            RelayerError::Usage(format!(
                "--{flag} {raw}: write 0x followed by 64 hex digits"
            ))
        })
    };
    let (uetr, debtor, creditor) = (
        hex32("uetr", &args.uetr)?,
        hex32("debtor", &args.debtor)?,
        hex32("creditor", &args.creditor)?,
    );
    let url = ledger.rpc.first().ok_or_else(|| {
        RelayerError::Usage(format!(
            "ledgers `{}` in {file} has no rpc URL",
            ledger.name
        ))
    })?;
    let secret = isthmus_config::KeySource::Env(args.key_env.clone()).load_substrate_secret()?;
    let fail = |what: String| RelayerError::Dispatch(format!("paying on {}: {what}", ledger.name));
    let client = isthmus_adapter_substrate::SubstrateClient::connect(url)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let payer = isthmus_adapter_substrate::Destination::from_secret(client, secret.expose())
        .map_err(|_| {
            RelayerError::Usage(format!(
                "--key-env {}: no usable sr25519 secret; use a secret URI such as `//Ferdie` \
                 or 0x and 64 hex digits",
                args.key_env
            ))
        })?;
    let id = isthmus_adapter_substrate::devnet::pay(
        &payer,
        to.id,
        uetr,
        debtor,
        creditor,
        args.amount,
        args.deadline,
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    writeln!(out, "0x{}", hex::encode(id.0))?;
    Ok(Outcome::Success)
}

/// The devnet's trust anchor (block 0 and the genesis GRANDPA set: the same on
/// every start), checked against the ledger's configured `anchor`: what to write
/// there when it differs.
fn devnet_anchor(
    ledger: &isthmus_config::LedgerConfig,
    chain: &isthmus_adapter_substrate::devnet::DevChain,
) -> Result<String, String> {
    let line = chain.anchor_toml().map_err(|e| e.to_string())?;
    let (hash, number) = chain.anchor();
    let configured = ledger.anchor.as_ref().and_then(|a| {
        Some((
            a.block.as_deref()?.to_ascii_lowercase(),
            a.number?,
            a.set_id?,
        ))
    });
    if configured == Some((format!("{hash}"), number, 0)) {
        Ok(format!(
            "anchor block {number} {hash}, authority set 0 (as configured)"
        ))
    } else {
        tracing::warn!(
            ledger = %ledger.name,
            "the ledger's configured anchor is not the devnet's: relayers will refuse to start; configure {line}"
        );
        Ok(format!(
            "the devnet's anchor is not the configured one; configure {line}"
        ))
    }
}

/// `--ledger NAME` of the configuration read from `file`, which must be of `kind`.
fn devnet_ledger<'c>(
    config: &'c isthmus_config::Config,
    file: &std::path::Path,
    name: &str,
    kind: LedgerKind,
) -> Result<&'c isthmus_config::LedgerConfig, RelayerError> {
    let file = file.display();
    let Some(ledger) = config.ledger(name) else {
        let names: Vec<&str> = config.ledgers.iter().map(|l| l.name.as_str()).collect();
        return Err(RelayerError::Usage(format!(
            "--ledger {name}: no such ledger in {file}; configured: {}",
            names.join(", ")
        )));
    };
    if ledger.kind != kind {
        return Err(RelayerError::Usage(format!(
            "ledgers `{name}` in {file}: its kind is `{}`; `isthmus devnet {kind}` runs {kind} ledgers",
            ledger.kind
        )));
    }
    Ok(ledger)
}

/// The port of the ledger's first RPC URL.
fn rpc_port(ledger: &isthmus_config::LedgerConfig) -> Option<u16> {
    ledger
        .rpc
        .first()?
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
}

/// The consortium's signer addresses and threshold.
fn consortium_signers(
    config: &isthmus_config::Config,
) -> Result<(Vec<ethers::types::Address>, u8), String> {
    let signers = config
        .consortium
        .members
        .iter()
        .map(|m| {
            m.signer
                .parse::<ethers::types::Address>()
                .map_err(|_| format!("signer of `{}` is not an address", m.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let threshold =
        u8::try_from(config.consortium.threshold).map_err(|_| "threshold above 255".to_owned())?;
    Ok((signers, threshold))
}

/// The devnet's dApp accounts on EVM ledgers: the deployer and the dApp key.
fn devnet_evm_senders() -> Vec<ethers::types::Address> {
    use ethers::signers::Signer;
    use isthmus_adapter_evm::devnet::DEV_DAPP_KEY;
    [DEV_KEY_0, DEV_DAPP_KEY]
        .iter()
        .filter_map(|k| {
            ethers::signers::LocalWallet::from_bytes(k)
                .ok()
                .map(|w| w.address())
        })
        .collect()
}

/// The dev runtime's first clearing bank (its genesis opens `[0x0a; 32]` and
/// `[0x0b; 32]`): the other ledgers' devnet senders may debit it, and the demo's dApp
/// account (`//Ferdie`) operates it.
pub const SUBSTRATE_DEVNET_BANK_A: [u8; 32] = [0x0a; 32];

/// The clearing banks the devnet opens on every EVM ledger: their ids are the
/// names, left-aligned in 32 bytes.
pub const DEVNET_BANKS: [(&str, u64); 2] = [("bank-a", 1_000_000), ("bank-b", 0)];

/// The liquidity each devnet EVM ledger holds in the other's clearing app: payments
/// from it are credited out of it.
pub const DEVNET_LEDGER_LIQUIDITY: u64 = 1_000;

/// A bank id: the name's bytes, left-aligned and zero-padded to 32 bytes.
pub fn bank_id(name: &str) -> [u8; 32] {
    let mut id = [0u8; 32];
    let n = name.len().min(32);
    id[..n].copy_from_slice(&name.as_bytes()[..n]);
    id
}

/// Makes a fresh devnet ledger usable: its Inbox trusts every other configured
/// ledger's outbox (EVM Outbox or pallet) with the consortium's signers and threshold
/// and sends their messages' receipts back to their inbox; its clearing app opens the
/// devnet banks, accepts instructions debiting `bank-a` from the devnet dApp accounts
/// and the deployer on the other ledgers, and takes part in payments: the dApp account
/// operates `bank-a`, and each other ledger's clearing app is a peer whose account
/// here holds [`DEVNET_LEDGER_LIQUIDITY`].
async fn wire(
    config: &isthmus_config::Config,
    ledger: &isthmus_config::LedgerConfig,
    url: &str,
    chain_id: u64,
    deployment: &isthmus_adapter_evm::devnet::Deployment,
) -> Result<(), RelayerError> {
    use isthmus_adapter_evm::contracts::{ClearingApp, Inbox};
    use isthmus_adapter_evm::devnet::client;
    let admin = client(url, chain_id, &DEV_KEY_0)?;
    let fail = |what: String| RelayerError::Devnet(format!("configuring {}: {what}", ledger.name));
    let (signers, threshold) = consortium_signers(config).map_err(fail)?;
    let inbox = Inbox::new(deployment.inbox, admin.clone());
    let app = ClearingApp::new(deployment.clearing, admin.clone());
    for (bank, balance) in DEVNET_BANKS {
        mined(app.open_bank(bank_id(bank), balance.into()))
            .await
            .map_err(fail)?;
    }
    let senders = devnet_evm_senders();
    if let Some(dapp) = senders.get(1) {
        mined(app.set_bank_owner(bank_id("bank-a"), *dapp))
            .await
            .map_err(fail)?;
    }
    for other in config
        .ledgers
        .iter()
        .filter(|l| l.kind == LedgerKind::Evm && l.name != ledger.name)
    {
        let address = |a: &Option<String>| {
            a.as_deref()
                .and_then(|a| a.parse::<ethers::types::Address>().ok())
        };
        let (Some(outbox), Some(other_inbox)) = (address(&other.outbox), address(&other.inbox))
        else {
            continue;
        };
        mined(inbox.set_origin(
            other.id,
            isthmus_protocol::Address32::from_evm(outbox.0).0,
            isthmus_protocol::Address32::from_evm(other_inbox.0).0,
            signers.clone(),
            threshold,
            0,
        ))
        .await
        .map_err(fail)?;
        for sender in &senders {
            mined(app.set_debitor(
                other.id,
                isthmus_protocol::Address32::from_evm(sender.0).0,
                bank_id("bank-a"),
                true,
            ))
            .await
            .map_err(fail)?;
        }
        // Every devnet EVM ledger is deployed in the same order by the same key, so
        // the other ledger's clearing app has this one's address.
        let peer = isthmus_protocol::Address32::from_evm(deployment.clearing.0).0;
        mined(app.set_peer(other.id, peer)).await.map_err(fail)?;
        mined(app.open_ledger_account(other.id, DEVNET_LEDGER_LIQUIDITY.into()))
            .await
            .map_err(fail)?;
        tracing::info!(ledger = %ledger.name, origin = %other.name, threshold, "inbox trusts the origin's outbox and sends it receipts; the clearing apps are peers");
    }
    for other in config
        .ledgers
        .iter()
        .filter(|l| l.kind == LedgerKind::Substrate)
    {
        use isthmus_adapter_substrate::keys::{CLEARING_APP, INBOX_ID, OUTBOX_ID};
        mined(inbox.set_origin(other.id, OUTBOX_ID, INBOX_ID, signers.clone(), threshold, 0))
            .await
            .map_err(fail)?;
        for sender in isthmus_adapter_substrate::devnet::dapp_accounts() {
            mined(app.set_debitor(other.id, sender, bank_id("bank-a"), true))
                .await
                .map_err(fail)?;
        }
        mined(app.set_peer(other.id, CLEARING_APP))
            .await
            .map_err(fail)?;
        mined(app.open_ledger_account(other.id, DEVNET_LEDGER_LIQUIDITY.into()))
            .await
            .map_err(fail)?;
        tracing::info!(ledger = %ledger.name, origin = %other.name, threshold, "inbox trusts the pallet's outbox and sends it receipts; the clearing apps are peers");
    }
    Ok(())
}

/// Sends a wiring transaction and waits until it is mined.
async fn mined<M, D>(call: ethers::contract::ContractCall<M, D>) -> Result<(), String>
where
    M: ethers::providers::Middleware + 'static,
    D: ethers::abi::Detokenize,
{
    let pending = call.send().await.map_err(|e| e.to_string())?;
    pending.await.map_err(|e| e.to_string())?;
    Ok(())
}
