//! The operating commands: `run`, `send`, `status`, `messages`, `retry` and
//! `audit verify`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ethers::types::Bytes;
use isthmus_adapter_evm::contracts::outbox::{DispatchFilter, Outbox};
use isthmus_config::{Config, LedgerKindSettings, Settings};
use isthmus_protocol::{Address32, ReceiptOutcome};
use isthmus_schema::{
    MessageFilter, MessageId, MessageStatus, OperatorAction, OperatorActionKind, Route, Store,
};
use tokio_util::sync::CancellationToken;

use crate::cli::{
    ExportArgs, ExportFormat, MessagesArgs, ResetArgs, RetryArgs, SendArgs, StatusArgs,
};
use crate::commands::{self, Outcome};
use crate::RelayerError;

/// Loads and validates a configuration, printing every problem. `None`: problems
/// were printed and the command must not run.
pub fn load_valid(path: &Path, out: &mut dyn Write) -> Result<Option<Settings>, RelayerError> {
    let Some(config) = commands::load(path, out)? else {
        return Ok(None);
    };
    match config.validate() {
        Ok(settings) => Ok(Some(settings)),
        Err(problems) => {
            writeln!(
                out,
                "{}: {} problem(s); run `isthmus config validate` for details",
                path.display(),
                problems.len()
            )?;
            for p in problems {
                writeln!(out, "error: {p}")?;
            }
            Ok(None)
        }
    }
}

/// First wait after a start that failed on a dependency; doubled per failure.
const START_RETRY_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest wait between two starts.
const START_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// `isthmus run`.
pub async fn run(settings: Settings) -> Result<Outcome, RelayerError> {
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        if crate::supervise::wait_for_shutdown().await.is_ok() {
            tracing::info!("shutdown requested; finishing in-flight steps");
        }
        signal.cancel();
    });
    // A node or the database that does not answer yet (a restart, an overloaded
    // endpoint) delays the start; what no retry can fix (configuration, keys, a
    // consortium that does not name this member) ends it with the reason.
    // This member's certificate, key and CA: read once, for the endpoint and the
    // client that asks the peers.
    let material = settings
        .attestation
        .tls
        .load()
        .map_err(crate::mtls::MtlsError::from)?;
    let mut wait = START_RETRY_FIRST;
    let ctx = loop {
        match crate::supervise::start(&settings, &material).await {
            Ok(ctx) => break Arc::new(ctx),
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "could not start: a dependency does not answer; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(Outcome::Success),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(START_RETRY_MAX);
            }
            Err(e) => return Err(e),
        }
    };
    let handles = Arc::new(crate::supervise::handles(&ctx, &settings));
    let http = tokio::spawn(crate::http::serve(handles, shutdown.clone()));
    let attestation = &settings.attestation;
    if let Some((not_after, date)) = material.not_after() {
        ctx.metrics.tls_certificate_expiry.set(not_after);
        tracing::info!(expires = %date, "this member's TLS certificate");
    }
    let tls = crate::mtls::server_config(&material)?;
    let listener = crate::peer_endpoint::bind(attestation.listen).await?;
    tracing::info!(listen = %attestation.listen, "attestation endpoint listening (mutual TLS, /v1/attest)");
    let peers = tokio::spawn(crate::peer_endpoint::serve(
        listener,
        tls,
        crate::mtls::Directory::new(&settings.consortium),
        Arc::new(crate::supervise::peer_endpoint(&ctx, attestation)),
        shutdown.clone(),
    ));
    crate::supervise::run(ctx, shutdown.clone()).await;
    shutdown.cancel();
    if let Err(e) = peers.await {
        tracing::error!(error = %e, "attestation endpoint task failed");
    }
    match http.await {
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => tracing::error!(error = %e, "HTTP task failed"),
        Ok(Ok(())) => {}
    }
    Ok(Outcome::Success)
}

async fn store(config: &Config) -> Result<Store, RelayerError> {
    Ok(Store::new(
        isthmus_schema::connect(config.database.url.expose()).await?,
    ))
}

pub(crate) fn parse_id(text: &str) -> Result<MessageId, RelayerError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    bytes.map(MessageId).ok_or_else(|| {
        RelayerError::Usage(format!(
            "`{text}` is not a message id (0x followed by 64 hex digits)"
        ))
    })
}

fn ledger_name(config: &Config, id: u32) -> String {
    config
        .ledgers
        .iter()
        .find(|l| l.id == id)
        .map_or_else(|| format!("#{id}"), |l| l.name.clone())
}

/// `isthmus send`.
pub async fn send(
    settings: Settings,
    args: &SendArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let file = args.config.config.display().to_string();
    let ledger = |name: &str| {
        settings.ledger(name).ok_or_else(|| {
            let known: Vec<&str> = settings.ledgers.iter().map(|l| l.name.as_str()).collect();
            RelayerError::Usage(format!(
                "ledger `{name}` is not in {file}; configured: {}",
                known.join(", ")
            ))
        })
    };
    let from = ledger(&args.from)?;
    let to = ledger(&args.to)?;
    let recipient: Address32 = args
        .recipient
        .parse()
        .map_err(|e| RelayerError::Usage(format!("--recipient {}: {e}", args.recipient)))?;
    let body = match (&args.body, &args.body_hex, &args.body_file) {
        (Some(text), _, _) => text.as_bytes().to_vec(),
        (None, Some(h), _) => hex::decode(h.trim_start_matches("0x"))
            .map_err(|e| RelayerError::Usage(format!("--body-hex: {e}")))?,
        (None, None, Some(path)) => std::fs::read(path).map_err(|e| {
            RelayerError::Usage(format!(
                "--body-file {}: cannot read it ({e})",
                path.display()
            ))
        })?,
        (None, None, None) => Vec::new(),
    };
    if body.len() > isthmus_protocol::MAX_BODY_LEN {
        return Err(RelayerError::Usage(format!(
            "the body is {} bytes; the protocol allows {}",
            body.len(),
            isthmus_protocol::MAX_BODY_LEN
        )));
    }
    if let LedgerKindSettings::Evm(_) = to.kind {
        if let Some(reason) = evm_recipient_problem(&recipient) {
            return Err(RelayerError::Usage(format!(
                "--recipient {}: {reason}, so no contract on EVM ledger `{}` can receive it \
                 (every member would reject the message); give a 20-byte address",
                args.recipient, to.name
            )));
        }
    }
    let url = from.rpc.first().ok_or_else(|| {
        RelayerError::Dispatch(format!("ledger `{}` in {file} has no rpc URL", from.name))
    })?;
    let source = match &args.key_env {
        Some(var) => isthmus_config::KeySource::Env(var.clone()),
        None => from.submitter.clone(),
    };
    let evm = match &from.kind {
        LedgerKindSettings::Evm(evm) => evm,
        LedgerKindSettings::Substrate(_) => {
            let secret = source.load_substrate_secret()?;
            let client = isthmus_adapter_substrate::SubstrateClient::connect(url)
                .await
                .map_err(|e| RelayerError::Dispatch(format!("connecting to {}: {e}", from.name)))?;
            let sender =
                isthmus_adapter_substrate::Destination::from_secret(client, secret.expose())
                    .map_err(|_| {
                        RelayerError::Dispatch(format!(
                "the sending key ({}) holds no usable sr25519 secret: use a secret URI such \
                     as `//Ferdie`, a mnemonic with an optional `//derivation`, or `0x` and 64 \
                     hex digits",
                source.describe()
            ))
                    })?;
            let (receipt, id) = sender
                .dispatch(to.id, recipient.0, args.deadline, body)
                .await
                .map_err(|e| RelayerError::Dispatch(format!("dispatch on {}: {e}", from.name)))?;
            writeln!(out, "0x{}", hex::encode(id.0))?;
            tracing::info!(msg_id = %format!("0x{}", hex::encode(id.0)), block = receipt.block_number, tx = %format!("0x{}", hex::encode(receipt.tx_hash)), src = %from.name, dst = %to.name, "dispatched");
            return Ok(Outcome::Success);
        }
    };
    let chain_id = evm.chain_id;
    let outbox = ethers::types::Address::from(*evm.outbox.as_bytes());
    let key: [u8; 32] = source.load_secp256k1()?.expose().to_bytes().into();
    let client = isthmus_adapter_evm::signing_client(url, chain_id, &key)?;
    let contract = Outbox::new(outbox, client);
    let call = contract.dispatch(to.id, recipient.0, args.deadline, Bytes::from(body));
    let refused = |e: ethers::contract::ContractError<_>| {
        let reason = e
            .as_revert()
            .and_then(outbox_refusal)
            .unwrap_or_else(|| e.to_string());
        RelayerError::Dispatch(format!("dispatch on {}: {reason}", from.name))
    };
    // The Outbox's cost depends on how many messages it holds (the tree's frontier),
    // which other senders and the Inbox's receipt batches change between the
    // estimate and the inclusion: a new level of the frontier is a new storage slot
    // (about 20k more), and each level in use one more cold read (2.1k). The margin
    // covers both at any count.
    let estimate = call.estimate_gas().await.map_err(refused)?;
    let limit = estimate + estimate / 4 + DISPATCH_GAS_MARGIN;
    let call = call.gas(limit);
    let pending = call.send().await.map_err(refused)?;
    let receipt = pending
        .await
        .map_err(|e| {
            RelayerError::Dispatch(format!("waiting for the dispatch on {}: {e}", from.name))
        })?
        .ok_or_else(|| {
            RelayerError::Dispatch(format!("the dispatch on {} was dropped", from.name))
        })?;
    if receipt.status != Some(1u64.into()) {
        return Err(RelayerError::Dispatch(format!(
            "the dispatch on {} reverted in {:?} (gas used {:?} of {})",
            from.name, receipt.transaction_hash, receipt.gas_used, limit
        )));
    }
    let event = receipt
        .logs
        .iter()
        .filter(|l| l.address == outbox)
        .find_map(|l| ethers::contract::parse_log::<DispatchFilter>(l.clone()).ok())
        .ok_or_else(|| {
            RelayerError::Dispatch("the dispatch transaction emitted no Dispatch event".into())
        })?;
    writeln!(out, "0x{}", hex::encode(event.id))?;
    tracing::info!(msg_id = %format!("0x{}", hex::encode(event.id)), nonce = event.nonce, tx = ?receipt.transaction_hash, src = %from.name, dst = %to.name, "dispatched");
    Ok(Outcome::Success)
}

/// Gas `isthmus send` adds to a dispatch's estimate (and a quarter of it): the most
/// an Outbox dispatch can cost more at a later count than at the estimate's.
const DISPATCH_GAS_MARGIN: u64 = 90_000;

/// Why an EVM Inbox could never call `recipient`: it is not a left-padded 20-byte
/// address.
fn evm_recipient_problem(recipient: &Address32) -> Option<&'static str> {
    recipient.0[..12]
        .iter()
        .any(|b| *b != 0)
        .then_some("is a 32-byte account, not a 20-byte address")
}

/// The Outbox's refusal of a dispatch, decoded from the revert data of its custom
/// errors (None: not one of the Outbox's errors).
fn outbox_refusal(revert: &Bytes) -> Option<String> {
    use ethers::abi::AbiDecode;
    use isthmus_adapter_evm::contracts::outbox::OutboxErrors;
    let error = OutboxErrors::decode(revert.as_ref()).ok()?;
    Some(match error {
        OutboxErrors::RevertString(reason) => format!("the Outbox refused: {reason}"),
        other => format!("the Outbox refused: {other:?}"),
    })
}

/// `isthmus status <id>`.
pub async fn status(
    config: Config,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let id = parse_id(&args.id)?;
    let store = store(&config).await?;
    let Some(history) = store.message(id).await? else {
        let detail = "unknown to this relayer (not observed yet, or another consortium's)";
        if args.json {
            let json = serde_json::json!({
                "id": hex::encode(id.0),
                "status": "unknown",
                "detail": detail,
            });
            writeln!(out, "{json}")?;
        } else {
            writeln!(out, "{}: {detail}", args.id)?;
        }
        return Ok(Outcome::Problems);
    };
    let m = &history.message;
    let receipt = store.receipt(id).await?;
    if args.json {
        let log: Vec<_> = history
            .log
            .iter()
            .map(|e| serde_json::json!({"seq": e.seq, "event": e.event.as_str(), "at": e.created_at, "actor": e.actor, "evidence": e.evidence}))
            .collect();
        let json = serde_json::json!({
            "id": hex::encode(m.id.0),
            "status": m.status.as_str(),
            "origin": ledger_name(&config, m.origin),
            "destination": ledger_name(&config, m.destination),
            "nonce": m.nonce,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "receipt": receipt.as_ref().map(|r| serde_json::json!({
                "outcome": r.outcome.as_str(),
                "result": hex::encode(r.result),
                "carried_by": hex::encode(r.carried_by.0),
                "carrier_status": r.batch_status.as_str(),
                "taken_tx": r.taken_tx.map(hex::encode),
            })),
            "log": log,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        )?;
        return Ok(Outcome::Success);
    }
    writeln!(out, "message {}", hex::encode(m.id.0))?;
    writeln!(
        out,
        "  route    {} -> {}   nonce {}   status {}",
        ledger_name(&config, m.origin),
        ledger_name(&config, m.destination),
        m.nonce,
        m.status
    )?;
    writeln!(
        out,
        "  source   block {} tx {}",
        m.source_block,
        m.source_tx_hash
            .map_or("-".into(), |t| format!("0x{}", hex::encode(t)))
    )?;
    if let Some(e) = &m.last_error {
        writeln!(out, "  last error ({} attempts): {e}", m.attempts)?;
    }
    if let Some(r) = &receipt {
        // The return leg: the receipt's outcome, and its batch's way to the origin.
        let taken = match r.taken_tx {
            Some(tx) => format!(
                "taken on {} in tx 0x{}",
                ledger_name(&config, m.origin),
                hex::encode(tx)
            ),
            None => format!("its batch is {}", r.batch_status),
        };
        writeln!(
            out,
            "  receipt  {} (result {})   carried by {}: {taken}",
            r.outcome.as_str(),
            isthmus_protocol::result_text(&r.result),
            hex::encode(r.carried_by.0)
        )?;
    }
    writeln!(out, "  lifecycle:")?;
    for e in &history.log {
        writeln!(
            out,
            "    #{:<6} {}  {:<10} by {:<14} {}",
            e.seq,
            e.created_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.event.as_str(),
            e.actor,
            e.evidence
        )?;
    }
    Ok(Outcome::Success)
}

/// `isthmus messages`.
pub async fn messages(
    config: Config,
    args: &MessagesArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let id_of = |name: &str| {
        config
            .ledger(name)
            .map(|l| l.id)
            .ok_or_else(|| RelayerError::Usage(format!("--route: no ledger named `{name}`")))
    };
    let route = match &args.route {
        Some(r) => {
            let (s, d) = r.split_once("->").ok_or_else(|| {
                RelayerError::Usage(format!("--route {r}: write SOURCE->DESTINATION"))
            })?;
            Some(Route {
                source: id_of(s.trim())?,
                destination: id_of(d.trim())?,
            })
        }
        None => None,
    };
    let statuses = args
        .status
        .iter()
        .map(|s| {
            s.parse::<MessageStatus>()
                .map_err(|e| RelayerError::Usage(format!("--status {s}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = args
        .outcome
        .iter()
        .map(|o| {
            [
                ReceiptOutcome::Delivered,
                ReceiptOutcome::Refused,
                ReceiptOutcome::Expired,
            ]
            .into_iter()
            .find(|known| known.as_str() == o)
            .ok_or_else(|| {
                RelayerError::Usage(format!(
                    "--outcome {o}: not an outcome (delivered, refused or expired)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let filter = MessageFilter {
        route,
        statuses,
        outcomes,
        observed_from: parse_time(&args.since, "--since")?,
        observed_to: parse_time(&args.until, "--until")?,
        limit: Some(args.limit),
    };
    let rows = store(&config).await?.list_messages(&filter).await?;
    writeln!(
        out,
        "{:<68} {:<16} {:>8} {:<12} observed",
        "id", "route", "nonce", "status"
    )?;
    for m in &rows {
        writeln!(
            out,
            "{:<68} {:<16} {:>8} {:<12} {}",
            hex::encode(m.id.0),
            format!(
                "{}->{}",
                ledger_name(&config, m.origin),
                ledger_name(&config, m.destination)
            ),
            m.nonce,
            m.status.as_str(),
            m.observed_at.format("%Y-%m-%d %H:%M:%S")
        )?;
    }
    writeln!(out, "{} message(s)", rows.len())?;
    Ok(Outcome::Success)
}

/// `isthmus retry <id>`.
pub async fn retry(
    config: Config,
    args: &RetryArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let id = parse_id(&args.id)?;
    let store = store(&config).await?;
    let Some(history) = store.message(id).await? else {
        return Err(RelayerError::Usage(format!("{}: no such message", args.id)));
    };
    let from = history.message.status;
    if !matches!(from, MessageStatus::DeadLetter | MessageStatus::Failed) {
        writeln!(
            out,
            "{}: status is {from}; only failed or dead_letter messages can be retried",
            args.id
        )?;
        return Ok(Outcome::Problems);
    }
    let action = OperatorAction {
        operator: args.operator.clone(),
        action: OperatorActionKind::Retry,
        reason: args.reason.clone(),
        message_id: Some(id),
        route: Some(history.message.route()),
        ledger: None,
        details: serde_json::json!({"from_status": from.as_str()}),
    };
    let action_id = store
        .operator_transition(&action, from, MessageStatus::Attested)
        .await?;
    writeln!(
        out,
        "{}: {from} -> attested (operator action #{action_id}); the relayer delivers it next round",
        args.id
    )?;
    Ok(Outcome::Success)
}

/// `isthmus audit verify`.
pub async fn audit_verify(config: Config, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    let store = store(&config).await?;
    match store.verify_log_chain().await {
        Ok(rows) => {
            writeln!(
                out,
                "lifecycle log intact: {rows} rows, hash chain verified"
            )?;
            Ok(Outcome::Success)
        }
        Err(e @ isthmus_schema::StoreError::LogChainBroken { .. }) => {
            writeln!(out, "lifecycle log ALTERED: {e}")?;
            Ok(Outcome::Problems)
        }
        Err(e) => Err(e.into()),
    }
}

/// Parses an optional RFC 3339 time given to `flag`.
fn parse_time(
    text: &Option<String>,
    flag: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, RelayerError> {
    text.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    RelayerError::Usage(format!(
                        "{flag} {t}: {e} (use RFC 3339, e.g. 2026-11-27T10:00:00Z)"
                    ))
                })
        })
        .transpose()
}

/// One line of `audit export --format json` (field names are the log's columns).
#[derive(serde::Serialize)]
struct ExportRow<'a> {
    seq: i64,
    created_at: &'a str,
    message_id: Option<&'a str>,
    event: &'a str,
    actor: &'a str,
    evidence: &'a serde_json::value::RawValue,
    prev_hash: &'a str,
    row_hash: &'a str,
}

/// Rows per page of `audit export`: memory stays bounded whatever the range.
const EXPORT_PAGE: u32 = 2_000;

/// `isthmus audit export`.
pub async fn audit_export(
    config: Config,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let from = parse_time(&args.since, "--since")?;
    let to = parse_time(&args.until, "--until")?;
    let store = store(&config).await?;
    if args.format == ExportFormat::Csv {
        writeln!(
            out,
            "seq,created_at,message_id,event,actor,evidence,prev_hash,row_hash"
        )?;
    }
    let mut after = 0;
    let mut rows = 0u64;
    loop {
        let page = store.log_page(after, from, to, EXPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            // Rows that name no message (checkpoints, attestations, rejected outbox
            // entries) export a null id in JSON and an empty field in CSV.
            let message = e.message_id.map(|id| hex::encode(id.0));
            let created = e
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let (prev, hash) = (
                format!("0x{}", hex::encode(e.prev_hash)),
                format!("0x{}", hex::encode(e.row_hash)),
            );
            match args.format {
                ExportFormat::Json => {
                    // The evidence goes out as the very text `row_hash` covers, so a
                    // program outside Postgres can recompute every row
                    // (`schema/audit/recompute_row_hashes.py`).
                    let evidence = serde_json::value::RawValue::from_string(
                        e.evidence_text.clone(),
                    )
                    .map_err(|err| {
                        RelayerError::Store(isthmus_schema::StoreError::Decode {
                            what: "evidence",
                            reason: err.to_string(),
                        })
                    })?;
                    let row = ExportRow {
                        seq: e.seq,
                        created_at: &created,
                        message_id: message.as_deref(),
                        event: e.event.as_str(),
                        actor: &e.actor,
                        evidence: &evidence,
                        prev_hash: &prev,
                        row_hash: &hash,
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&row)
                            .unwrap_or_else(|e| panic!("export row serializes: {e}"))
                    )?
                }
                ExportFormat::Csv => writeln!(
                    out,
                    "{},{},{},{},{},{},{},{}",
                    e.seq,
                    created,
                    message.unwrap_or_default(),
                    e.event.as_str(),
                    csv_field(&e.actor),
                    csv_field(&e.evidence_text),
                    prev,
                    hash
                )?,
            }
            rows += 1;
        }
        if rows % 20_000 < u64::from(EXPORT_PAGE) {
            tracing::info!(rows, "exporting");
        }
    }
    tracing::info!(rows, "export complete");
    Ok(Outcome::Success)
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `isthmus light-client status`.
pub async fn light_client_status(
    config: Config,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let store = store(&config).await?;
    let mut shown = 0;
    for l in &config.ledgers {
        let Some(state) = store.light_client_state(l.id).await? else {
            continue;
        };
        shown += 1;
        if state.finality == isthmus_schema::FinalityMode::Grandpa {
            // The authority set lives in the state (ed25519 keys, not addresses).
            let keys: Vec<&str> = state.state["authorities"]
                .as_array()
                .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            writeln!(
                out,
                "{} (#{}): grandpa from anchor {} (0x{}), finalized head {} (0x{}), authority \
                 set {} of {} authorities{}:",
                l.name,
                l.id,
                state.checkpoint.number,
                hex::encode(state.checkpoint.hash),
                state.head.number,
                hex::encode(state.head.hash),
                state.state["set_id"],
                keys.len(),
                match state.state["pending"].as_object() {
                    Some(p) => format!(
                        ", set {} pending (effective at block {})",
                        p["set_id"], p["effective_block"]
                    ),
                    None => String::new(),
                }
            )?;
            for key in keys {
                writeln!(out, "  {key}")?;
            }
        } else {
            writeln!(
                out,
                "{} (#{}): {} from checkpoint {} (0x{}), verified head {} (0x{}), {} validators:",
                l.name,
                l.id,
                state.finality,
                state.checkpoint.number,
                hex::encode(state.checkpoint.hash),
                state.head.number,
                hex::encode(state.head.hash),
                state.validators.len()
            )?;
            for v in &state.validators {
                writeln!(out, "  0x{}", hex::encode(v))?;
            }
        }
        for fault in store.consensus_faults(l.id).await? {
            writeln!(
                out,
                "  HALTED at block {} (history row #{}): {}",
                fault.block_number, fault.seq, fault.rule
            )?;
        }
    }
    if shown == 0 {
        writeln!(
            out,
            "no stored light-client state (no sealed EVM or Substrate ledger has been followed yet)"
        )?;
    }
    Ok(Outcome::Success)
}

/// `isthmus light-client reset --ledger NAME`.
pub async fn light_client_reset(
    config: Config,
    args: &ResetArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let Some(ledger) = config.ledgers.iter().find(|l| l.name == args.ledger) else {
        return Err(RelayerError::Usage(format!(
            "--ledger: no ledger named `{}` in the configuration",
            args.ledger
        )));
    };
    if args.reason.trim().is_empty() {
        return Err(RelayerError::Usage(
            "--reason: say why the light client's trust anchor moves (it is recorded)".into(),
        ));
    }
    let store = store(&config).await?;
    let running = store
        .live_workers(&crate::supervise::worker_prefix(&config.member.name))
        .await?;
    if !running.is_empty() {
        writeln!(
            out,
            "refused: processes of member `{}` are running ({}); stop them first, or they \
             write their light-client state back",
            config.member.name,
            running.join(", ")
        )?;
        return Ok(Outcome::Problems);
    }
    let action = OperatorAction {
        operator: args.operator.clone(),
        action: OperatorActionKind::ResetLightClient,
        reason: args.reason.clone(),
        message_id: None,
        route: None,
        ledger: Some(ledger.id),
        details: serde_json::json!({"ledger": ledger.id, "ledger_name": ledger.name}),
    };
    let (action_id, discarded) = store.reset_light_client(ledger.id, &action).await?;
    match discarded {
        Some(state) => writeln!(
            out,
            "{}: discarded the light-client state started from checkpoint {} (head {}) \
             (operator action #{action_id}); the next start begins at the configured checkpoint",
            ledger.name, state.checkpoint.number, state.head.number
        )?,
        None => writeln!(
            out,
            "{}: no light-client state was stored (operator action #{action_id} recorded)",
            ledger.name
        )?,
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::{csv_field, evm_recipient_problem, outbox_refusal};
    use ethers::abi::AbiEncode;
    use isthmus_adapter_evm::contracts::outbox::{
        DeadlinePassed, DestinationIsLocal, OutboxErrors,
    };
    use isthmus_protocol::Address32;

    #[test]
    fn an_evm_recipient_must_be_a_left_padded_address() {
        assert_eq!(
            evm_recipient_problem(&Address32::from_evm([0x77; 20])),
            None
        );
        assert!(evm_recipient_problem(&Address32([0x77; 32])).is_some());
        let mut high = [0u8; 32];
        high[0] = 1;
        assert!(evm_recipient_problem(&Address32(high)).is_some());
    }

    #[test]
    fn the_outboxs_custom_errors_are_named() {
        let revert = OutboxErrors::DestinationIsLocal(DestinationIsLocal).encode();
        let text = outbox_refusal(&revert.into()).expect("decodes");
        assert!(text.contains("DestinationIsLocal"), "{text}");
        let revert = OutboxErrors::DeadlinePassed(DeadlinePassed {
            deadline: 5,
            block_time: 1_700_000_000.into(),
        })
        .encode();
        let text = outbox_refusal(&revert.into()).expect("decodes");
        assert!(
            text.contains("DeadlinePassed") && text.contains("1700000000"),
            "{text}"
        );
        assert_eq!(outbox_refusal(&vec![0xde, 0xad, 0xbe, 0xef].into()), None);
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("bank-0/42"), "bank-0/42");
        assert_eq!(
            csv_field(r#"{"a":1,"b":"x"}"#),
            r#""{""a"":1,""b"":""x""}""#
        );
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
