//! `isthmus run`: bootstrap, the named tasks of the pipeline, and shutdown.
//!
//! [`start`] connects to Postgres (migrating it) and to every ledger and builds the
//! pipeline's [`Context`]. [`run`] then supervises one task per role until shutdown:
//! an observer per source, `in_flight` delivery lanes, a delivery watcher and a
//! dead-letter check per destination, and a check for leases of stopped replicas. The HTTP layer gets
//! narrow handles ([`crate::http::Handles`]), not the context.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isthmus_config::{
    AttestationSettings, EvmFinality, LedgerKindSettings, LedgerSettings, SealProtocol, Settings,
    TlsMaterial,
};
use isthmus_schema::{CursorKey, RetryPolicy, Stage, Store};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, error, info, info_span, warn, Instrument};

use crate::attest::{Attester, Consortium, Endpoint, HttpPeers};
use crate::http::Handles;
use crate::ledger::evm::{EvmEndpoints, EvmLedger, LightClientStart};
use crate::ledger::substrate::{GrandpaStart, Submitter, SubstrateLedger};
use crate::ledger::{LedgerError, LedgerHandle, Source};
use crate::metrics::{Metrics, RpcMetrics};
use crate::peer_endpoint::{PeerEndpoint, RateLimiter};
use crate::pipeline::{self, observe, quiet, turns, Context, PipelineError, Route};
use crate::RelayerError;

/// Blocks below the observer's cursor at which an EVM light client starts after a
/// restart.
const LIGHT_CLIENT_MARGIN: u64 = 256;
/// How often leases held by stopped replicas of this member are looked for.
const ORPHAN_CHECK: Duration = Duration::from_secs(30);
/// At most one line per kind of repeated warning in this period.
const QUIET_PERIOD: Duration = Duration::from_secs(60);
/// How often this member's dead letters are checked against the destination.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);
/// How long a peer has to answer an attestation request.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to Postgres (migrating it) and to every ledger of the validated
/// settings.
pub async fn start(settings: &Settings, tls: &TlsMaterial) -> Result<Context, RelayerError> {
    // Sessions carry the worker id, so replicas can tell this process's leases from
    // those of a process that died (`release_orphaned_leases`).
    let worker = worker_id(&settings.member.name);
    let metrics = Metrics::new();
    let pool = isthmus_schema::connect_as(
        settings.database.url.expose(),
        &worker,
        settings.database.pool_size,
    )
    .await?;
    let store = Store::new(pool);
    store.migrate().await?;
    let freed = store
        .release_orphaned_leases(&worker_prefix(&settings.member.name))
        .await?;
    if freed > 0 {
        info!(
            freed,
            "took back the leases of a stopped process of this member"
        );
    }
    let key = settings.member.key.open_secp256k1()?;
    info!(key = %key.describe(), "attestation key opened");
    let attester = Arc::new(Attester::new(
        settings.member.name.clone(),
        key,
        isthmus_protocol::Network(settings.consortium.network),
    ));
    let consortium =
        Consortium::from_settings(&settings.consortium).map_err(RelayerError::Consortium)?;
    if consortium
        .member_of(&attester.address())
        .map(|m| m.name.as_str())
        != Some(attester.member())
    {
        return Err(RelayerError::Consortium(format!(
            "member.key signs as 0x{} which is not the signer of member `{}` in [consortium]",
            hex::encode(attester.address()),
            attester.member()
        )));
    }
    let mut ledgers = BTreeMap::new();
    for l in &settings.ledgers {
        ledgers.insert(l.id, connect_ledger(l, &store, &metrics).await?);
    }
    let routes = settings
        .enabled_routes()
        .map(|r| Route {
            source: r.source,
            destination: r.destination,
            batch_size: r.batch_size,
            in_flight: r.in_flight.max(1),
            max_message_gas: r.max_message_gas,
        })
        .collect::<Vec<Route>>();
    check_networks(&ledgers, &routes, consortium.network).await?;
    check_outboxes(&ledgers, &routes, &store).await?;
    let peers = HttpPeers::new(
        &consortium,
        attester.address(),
        crate::mtls::peer_client(tls, PEER_TIMEOUT)?,
        PEER_TIMEOUT,
    );
    Ok(Context {
        store,
        ledgers,
        routes,
        attester,
        consortium,
        peers: Arc::new(peers),
        metrics,
        worker,
        retry: RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        },
        takeover: settings.consortium.takeover,
        progress: turns::Progress::new(Instant::now()),
        quiet: quiet::Quiet::new(QUIET_PERIOD),
        refusals: std::sync::Mutex::new(std::collections::HashSet::new()),
        leases: pipeline::leases::InUse::default(),
        signer_sets: pipeline::signer_sets::Following::default(),
        paused: Default::default(),
    })
}

/// Records `l` in the store and connects to it: its nodes, its light client (from the
/// stored state where there is one) and its submitter key.
pub(crate) async fn connect_ledger(
    l: &LedgerSettings,
    store: &Store,
    metrics: &Metrics,
) -> Result<LedgerHandle, RelayerError> {
    Ok(match &l.kind {
        LedgerKindSettings::Substrate(substrate) => {
            store
                .upsert_ledger(&isthmus_schema::Ledger {
                    id: l.id,
                    name: l.name.clone(),
                    kind: isthmus_schema::LedgerKind::Substrate,
                    finality: isthmus_schema::FinalityMode::Grandpa,
                })
                .await?;
            // Resume from the state stored with the cursor, with no trust in the
            // node; or start at the configured anchor.
            let stored = stored_light_client(store, l.id).await?;
            let start = GrandpaStart {
                anchor: substrate.anchor.clone(),
                stored,
            };
            // A key in a PKCS#11 token signs for an ECDSA account; sr25519 secrets
            // come from a file or a variable.
            let secret;
            let submitter = if matches!(l.submitter, isthmus_config::KeySource::Pkcs11(_)) {
                Submitter::Ecdsa(l.submitter.open_secp256k1()?)
            } else {
                secret = l.submitter.load_substrate_secret()?;
                Submitter::Secret(secret.expose())
            };
            let ledger = Arc::new(
                SubstrateLedger::connect(
                    &l.name,
                    l.id,
                    &l.rpc,
                    Some(Arc::new(RpcMetrics::new(&l.name, metrics))),
                    submitter,
                    &l.submitter.describe(),
                    start,
                )
                .await?,
            );
            handle(l, ledger.clone(), ledger)
        }
        LedgerKindSettings::Evm(evm) => {
            let finality = match &evm.finality {
                EvmFinality::FinalizedTag => isthmus_schema::FinalityMode::FinalizedTag,
                EvmFinality::Sealed(sealed) => match sealed.protocol_at(sealed.checkpoint.number) {
                    SealProtocol::Qbft => isthmus_schema::FinalityMode::Qbft,
                    SealProtocol::Ibft2 => isthmus_schema::FinalityMode::Ibft2,
                    SealProtocol::Ibft => isthmus_schema::FinalityMode::Ibft,
                    SealProtocol::Clique => isthmus_schema::FinalityMode::Clique,
                },
            };
            store
                .upsert_ledger(&isthmus_schema::Ledger {
                    id: l.id,
                    name: l.name.clone(),
                    kind: isthmus_schema::LedgerKind::Evm,
                    finality,
                })
                .await?;
            let endpoints = EvmEndpoints {
                urls: l.rpc.clone(),
                observer: Some(Arc::new(RpcMetrics::new(&l.name, metrics))),
                chain_id: evm.chain_id,
                outbox: *evm.outbox.as_bytes(),
                inbox: *evm.inbox.as_bytes(),
                confirmations: evm.confirmations,
            };
            let submitter = l.submitter.open_secp256k1()?;
            let start = match &evm.finality {
                // Start the light client a little below the observer's progress, so
                // that after a restart the checkpoints this member and lagging peers
                // still need are inside the verified range.
                EvmFinality::FinalizedTag => LightClientStart::Tag {
                    start_at: store
                        .load_cursor(CursorKey {
                            ledger: l.id,
                            destination: None,
                            stage: Stage::Observe,
                        })
                        .await?
                        .map_or(0, |c| c.block.number.saturating_sub(LIGHT_CLIENT_MARGIN)),
                },
                // Resume from the state stored with the cursor, with no trust in the
                // node; or start at the operator's checkpoint.
                EvmFinality::Sealed(sealed) => LightClientStart::Sealed {
                    finality: sealed.clone(),
                    stored: stored_light_client(store, l.id).await?,
                },
            };
            let ledger =
                Arc::new(EvmLedger::connect(&l.name, l.id, &endpoints, submitter, start).await?);
            handle(l, ledger.clone(), ledger)
        }
    })
}

/// The light-client state stored with the observe cursor of ledger `id`, with its
/// window of headers, if any.
async fn stored_light_client(
    store: &Store,
    id: u32,
) -> Result<
    Option<
        Box<(
            isthmus_schema::LightClientRecord,
            Vec<isthmus_schema::VerifiedHeaderRecord>,
        )>,
    >,
    RelayerError,
> {
    Ok(match store.light_client_state(id).await? {
        Some(record) => {
            let from = record
                .head
                .number
                .saturating_sub(crate::ledger::follow::HEADER_WINDOW as u64);
            let headers = store.light_client_headers(id, from).await?;
            Some(Box::new((record, headers)))
        }
        None => None,
    })
}

fn handle<L>(l: &LedgerSettings, source: Arc<L>, destination: Arc<L>) -> LedgerHandle
where
    L: Source + crate::ledger::Destination + 'static,
{
    LedgerHandle {
        name: l.name.clone(),
        id: l.id,
        poll_interval: l.poll_interval.max(Duration::from_millis(50)),
        source,
        destination,
    }
}

/// The HTTP layer's handles onto a running relayer.
pub fn handles(ctx: &Context, settings: &Settings) -> Handles {
    Handles {
        listen: settings.http.listen,
        store: ctx.store.clone(),
        ledgers: ctx.ledgers.values().cloned().collect(),
        metrics: ctx.metrics.clone(),
        escrow: Arc::new(crate::payments::Escrow::new(
            settings
                .ledgers
                .iter()
                .flat_map(|l| l.payment_apps.iter().map(|app| (l.id, *app)))
                .collect(),
        )),
    }
}

/// This member's attestation endpoint: its ledgers' light clients and its key,
/// limited as `[attestation]` says.
pub fn peer_endpoint(ctx: &Context, settings: &AttestationSettings) -> PeerEndpoint {
    let sources: BTreeMap<u32, Arc<dyn Source>> = ctx
        .ledgers
        .iter()
        .map(|(id, l)| (*id, l.source.clone()))
        .collect();
    PeerEndpoint::new(
        Endpoint::new(sources, ctx.attester.clone()),
        RateLimiter::new(settings.rate_per_s, settings.burst),
        ctx.metrics.clone(),
    )
    .with_store(ctx.store.clone())
}

/// Runs the pipeline's tasks until `shutdown` is cancelled; in-flight steps finish or
/// are abandoned at a point the next start resumes from. A task that panics stops
/// the relayer.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut tasks = JoinSet::new();
    let sources: BTreeSet<u32> = ctx.routes.iter().map(|r| r.source).collect();
    let destinations: BTreeSet<u32> = ctx.routes.iter().map(|r| r.destination).collect();
    for id in sources {
        let span = info_span!("observe", ledger = %ctx.name(id));
        tasks.spawn(observe_loop(ctx.clone(), id, shutdown.clone()).instrument(span));
    }
    for id in destinations {
        let lanes = ctx
            .routes
            .iter()
            .filter(|r| r.destination == id)
            .map(|r| r.in_flight)
            .max()
            .unwrap_or(1);
        for lane in 0..lanes {
            let span = info_span!("deliver", dst = %ctx.name(id), lane);
            tasks.spawn(deliver_loop(ctx.clone(), id, shutdown.clone()).instrument(span));
        }
        let span = info_span!("watch", dst = %ctx.name(id));
        tasks.spawn(watch_loop(ctx.clone(), id, shutdown.clone()).instrument(span));
        let span = info_span!("reconcile", dst = %ctx.name(id));
        tasks.spawn(reconcile_loop(ctx.clone(), id, shutdown.clone()).instrument(span));
    }
    tasks.spawn(orphan_loop(ctx.clone(), shutdown.clone()).instrument(info_span!("leases")));
    info!(member = %ctx.attester.member(), worker = %ctx.worker, "relayer running");
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            error!(error = %e, "a relayer task panicked; stopping");
            shutdown.cancel();
        }
    }
    info!("relayer stopped");
}

/// Sleeps `wait`, or less when `stop` is cancelled.
async fn pause(stop: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// Logs a failed step: a warning when it may succeed later, an error when an
/// operator must act.
fn report(what: &str, e: &PipelineError) {
    if e.is_retryable() {
        warn!(error = %e, "{what} failed; retrying");
    } else {
        error!(error = %e, "{what} failed; an operator must act");
    }
}

async fn observe_loop(ctx: Arc<Context>, ledger: u32, stop: CancellationToken) {
    let Some(interval) = ctx.ledgers.get(&ledger).map(|l| l.poll_interval) else {
        return;
    };
    // A catch-up (more than one round of final blocks behind): where it started.
    let mut catch_up: Option<(u64, Instant)> = None;
    while !stop.is_cancelled() {
        let began = Instant::now();
        let wait = match observe::observe(&ctx, ledger).await {
            Ok(Some(round)) if round.to < round.finalized => {
                let (start, since) = *catch_up.get_or_insert((round.from, began));
                let done = (round.to + 1 - start) as f64;
                let total = (round.finalized + 1 - start) as f64;
                let rate = done / since.elapsed().as_secs_f64().max(0.001);
                info!(
                    percent = format!("{:.1}", 100.0 * done / total),
                    blocks_per_s = rate.round() as u64,
                    remaining_blocks = round.finalized - round.to,
                    eta_s = ((round.finalized - round.to) as f64 / rate.max(0.001)).round() as u64,
                    "catching up"
                );
                Duration::ZERO
            }
            Ok(round) => {
                if let (Some((start, since)), Some(round)) = (catch_up.take(), round) {
                    info!(
                        blocks = round.to + 1 - start,
                        seconds = since.elapsed().as_secs(),
                        "caught up"
                    );
                }
                interval
            }
            Err(PipelineError::Ledger(LedgerError::Halted {
                ledger: name,
                number,
                rule,
                evidence,
            })) => {
                halt(&ctx, ledger, &name, number, &rule, &evidence).await;
                return;
            }
            Err(e) => {
                ctx.metrics
                    .rpc_errors
                    .with_label_values(&[&ctx.name(ledger)])
                    .inc();
                report("observation", &e);
                interval * 4
            }
        };
        pause(&stop, wait).await;
    }
}

/// A ledger's light client refused a header: the evidence goes into the history
/// (retried until the store takes it), the ERROR names the block, the rule and the
/// evidence, and this ledger's observer stops; every other route keeps running.
async fn halt(ctx: &Context, id: u32, name: &str, number: u64, rule: &str, evidence: &Value) {
    ctx.metrics.halted.with_label_values(&[name]).set(1);
    let mut wait = Duration::from_secs(1);
    let seq = loop {
        match ctx
            .store
            .record_consensus_fault(id, evidence, &ctx.worker)
            .await
        {
            Ok(seq) => break Some(seq),
            Err(e) if e.is_retryable() => {
                warn!(error = %e, "could not record the halt's evidence yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                error!(error = %e, "could not record the halt's evidence");
                break None;
            }
        }
    };
    error!(
        block = number,
        rule,
        evidence = %evidence,
        history_seq = seq,
        "light client halted ledger `{name}` at block {number}: {rule}; its observer stopped \
         (other routes keep running). The evidence is in the history (lifecycle_log event \
         consensus_fault); see docs/operations.md, \"A halted ledger\""
    );
}

/// One delivery lane: rounds back to back while there is work, each claiming its own
/// batch (the claims never overlap), so one lane sends while others await finality.
async fn deliver_loop(ctx: Arc<Context>, destination: u32, stop: CancellationToken) {
    let Some(interval) = ctx.ledgers.get(&destination).map(|l| l.poll_interval) else {
        return;
    };
    while !stop.is_cancelled() {
        let wait = match pipeline::round(&ctx, destination, &stop)
            .instrument(debug_span!("round"))
            .await
        {
            Ok(0) => interval,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                report("delivery round", &e);
                interval * 4
            }
        };
        pause(&stop, wait).await;
    }
}

async fn watch_loop(ctx: Arc<Context>, destination: u32, stop: CancellationToken) {
    let Some(interval) = ctx.ledgers.get(&destination).map(|l| l.poll_interval) else {
        return;
    };
    let mut next = None;
    while !stop.is_cancelled() {
        match pipeline::watch::watch(&ctx, destination, next).await {
            Ok(Some(n)) => next = Some(n),
            Ok(None) => return,
            Err(e) => warn!(error = %e, "could not follow the destination's deliveries; retrying"),
        }
        pause(&stop, interval).await;
    }
}

/// Corrects dead letters the destination contradicts (`pipeline::reconcile`).
async fn reconcile_loop(ctx: Arc<Context>, destination: u32, stop: CancellationToken) {
    loop {
        pause(&stop, RECONCILE_EVERY).await;
        if stop.is_cancelled() {
            return;
        }
        if let Err(e) = pipeline::reconcile::dead_letters(&ctx, destination).await {
            report("checking dead letters against the destination", &e);
        }
    }
}

/// A replica that died holds leases until they expire, and so does a lease of this
/// process whose claim's answer or release was lost; frees both sooner.
async fn orphan_loop(ctx: Arc<Context>, stop: CancellationToken) {
    let prefix = worker_prefix(ctx.attester.member());
    loop {
        pause(&stop, ORPHAN_CHECK).await;
        if stop.is_cancelled() {
            return;
        }
        match ctx.store.release_orphaned_leases(&prefix).await {
            Ok(0) => {}
            Ok(freed) => info!(freed, "took back the leases of a stopped replica"),
            Err(e) => warn!(error = %e, "could not check for leases of stopped replicas"),
        }
        match pipeline::leases::release_stray(&ctx).await {
            Ok(0) => {}
            Ok(freed) => info!(
                freed,
                "took back leases of this process that no step uses (a claim's answer or a release was lost to a database fault)"
            ),
            Err(e) => warn!(error = %e, "could not check for stray leases of this process"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn wait_for_shutdown() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// The lease-holder prefix of this member's processes.
pub(crate) fn worker_prefix(member: &str) -> String {
    // Postgres keeps 63 bytes of a session's application name: the member part is cut
    // so the whole id fits and matches its sessions.
    let mut end = 0;
    for (i, c) in member.char_indices() {
        if i + c.len_utf8() > 40 {
            break;
        }
        end = i + c.len_utf8();
    }
    format!("{}/", &member[..end])
}

/// This process's worker id: `<member>/<pid>`.
fn worker_id(member: &str) -> String {
    format!("{}{}", worker_prefix(member), std::process::id())
}

/// Refuses to start when a destination's endpoint takes checkpoints of another
/// network than `consortium.network`: every digest this member signed would be
/// refused there. A destination that does not answer now is checked by its
/// refusals later (a warning says so); the start does not wait for it.
async fn check_networks(
    ledgers: &BTreeMap<u32, LedgerHandle>,
    routes: &[Route],
    ours: isthmus_protocol::Network,
) -> Result<(), RelayerError> {
    let destinations: BTreeSet<u32> = routes.iter().map(|r| r.destination).collect();
    for id in destinations {
        let Some(ledger) = ledgers.get(&id) else {
            continue;
        };
        match tokio::time::timeout(NETWORK_CHECK_TIMEOUT, ledger.destination.network()).await {
            Ok(Ok(theirs)) if theirs == ours => {}
            Ok(Ok(theirs)) => {
                return Err(RelayerError::Consortium(format!(
                    "ledger `{}`'s endpoint takes checkpoints of network {theirs}, but \
                     consortium.network is {ours}: set consortium.network to the id the \
                     endpoints were deployed with (the same in every member's file)",
                    ledger.name
                )))
            }
            Ok(Err(e)) => {
                warn!(ledger = %ledger.name, error = %e, "could not read the endpoint's network id; not checked at start");
            }
            Err(_) => {
                warn!(ledger = %ledger.name, seconds = NETWORK_CHECK_TIMEOUT.as_secs(), "the endpoint's network id did not come back in time; not checked at start");
            }
        }
    }
    Ok(())
}

/// Refuses to start when a source's Outbox replaced another of the same ledger
/// without continuing its nonces: this history holds a message at or above the
/// Outbox's first nonce that the Outbox did not send. Its own messages would take the
/// old nonces, and possibly the old ids, and the history and the new Inboxes would
/// take them for old messages (docs/protocol.md, "Replacing an Outbox").
async fn check_outboxes(
    ledgers: &BTreeMap<u32, LedgerHandle>,
    routes: &[Route],
    store: &Store,
) -> Result<(), RelayerError> {
    let sources: BTreeSet<u32> = routes.iter().map(|r| r.source).collect();
    for id in sources {
        let Some(ledger) = ledgers.get(&id) else {
            continue;
        };
        let check = async {
            let first = ledger.source.first_nonce().await?;
            let Some((nonce, message)) = store.highest_message_from(id, first).await? else {
                return Ok(None);
            };
            let sent = ledger.source.outbox_sent(message.0).await?;
            Ok::<_, RelayerError>((sent == Some(false)).then_some((first, nonce, message)))
        };
        match tokio::time::timeout(NETWORK_CHECK_TIMEOUT, check).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((first, nonce, message)))) => {
                return Err(RelayerError::Deployment(format!(
                    "ledger `{}`'s Outbox starts at nonce {first}, but this history holds \
                     message 0x{} at nonce {nonce}, which that Outbox did not send: it \
                     replaced another Outbox without continuing its nonces, so ids would \
                     repeat. Deploy the new Outbox with firstNonce {} and the new Inboxes \
                     with that start nonce, then set ledgers.outbox to it \
                     (docs/protocol.md, \"Replacing an Outbox\")",
                    ledger.name,
                    hex::encode(message.0),
                    nonce + 1,
                )))
            }
            Ok(Err(e)) => {
                warn!(ledger = %ledger.name, error = %e, "could not check the Outbox against this history; not checked at start");
            }
            Err(_) => {
                warn!(ledger = %ledger.name, seconds = NETWORK_CHECK_TIMEOUT.as_secs(), "the Outbox did not answer in time; not checked against this history at start");
            }
        }
    }
    Ok(())
}

/// How long the start waits for one endpoint's answer (a network id, a first nonce).
const NETWORK_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_fit_a_postgres_application_name() {
        let long = "é".repeat(60);
        let id = worker_id(&long);
        assert!(id.len() <= 63, "{id}");
        assert!(id.starts_with(&worker_prefix(&long)));
        assert_eq!(worker_prefix("bank-a"), "bank-a/");
    }
}
