//! `isthmus devnet`: local development ledgers for the demo and for trying things out.

use std::io::Write;
use std::path::PathBuf;

use isthmus_adapter_evm::devnet::{deploy, Anvil, DEV_KEY_0};

use crate::cli::DevnetEvmArgs;
use crate::commands::{self, Outcome};
use crate::RelayerError;

/// Starts anvil for the configured ledger, deploys the endpoints, writes their
/// addresses, then waits for Ctrl-C or SIGTERM and stops anvil.
pub async fn evm(args: &DevnetEvmArgs, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    let Some(config) = commands::load(&args.config, out)? else {
        return Ok(Outcome::Problems);
    };
    let file = args.config.display();
    let Some(ledger) = config.ledger(&args.ledger) else {
        let names: Vec<&str> = config.ledgers.iter().map(|l| l.name.as_str()).collect();
        return Err(RelayerError::Usage(format!(
            "--ledger {}: no such ledger in {file}; configured: {}",
            args.ledger,
            names.join(", ")
        )));
    };
    let usage =
        |what: &str| RelayerError::Usage(format!("ledgers `{}` in {file}: {what}", ledger.name));
    if ledger.kind != isthmus_config::LedgerKind::Evm {
        return Err(usage("is not an EVM ledger"));
    }
    let chain_id = ledger
        .chain_id
        .ok_or_else(|| usage("has no chain_id; set one"))?;
    let url = ledger
        .rpc
        .first()
        .ok_or_else(|| usage("has no rpc URL; add one"))?;
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| usage("the first rpc URL names no port; use http://127.0.0.1:PORT"))?;

    let anvil = Anvil::spawn_at(chain_id, port)?;
    let deployment = deploy(&anvil.url(), chain_id, ledger.id, &DEV_KEY_0).await?;
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
    wait_for_shutdown().await?;
    drop(anvil);
    Ok(Outcome::Success)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
