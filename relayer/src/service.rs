//! `isthmus run`: the relayer service.
//!
//! Per source ledger an **observer** scans finalized blocks and records messages
//! and its cursor in one transaction. Per destination ledger a **deliverer** claims
//! ready messages (`FOR UPDATE SKIP LOCKED`, so replicas share the work), verifies
//! the source checkpoint with the light client, collects the consortium's
//! attestations, submits one batch per origin and records the final outcome. Every
//! status change is a compare-and-set with its log row; a crash at any point leaves
//! a state from which the next round continues, and the Inbox's replay protection
//! makes a repeated submission harmless.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use isthmus_adapter_evm::Delivery;
use isthmus_config::{Config, LedgerKind};
use isthmus_protocol::{Attestation, MerkleTree, Message};
use isthmus_schema::{
    BlockRef, CursorKey, MessageId, MessageRecord, MessageStatus, NewAttestation, NewCheckpoint,
    NewDelivery, RejectedEntry, RetryPolicy, Stage, Store,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, error, info, info_span, warn, Instrument};

use crate::attest::{self, Attester, Consortium};
use crate::ledgers::{EvmLedger, Ledger, MessageOutcome, Observed, SubstrateLedger};
use crate::metrics::Metrics;
use crate::RelayerError;

/// How long a delivery may take to become final on the destination.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a claimed message stays leased to this worker. The lease survives the
/// in-flight statuses, so it must outlast a whole round (peers' answers, the
/// submission and its finality): a replica of this member takes the message over
/// only after a crash, and then the destination's replay check decides.
const LEASE: Duration = Duration::from_secs(300);
/// Blocks below the observer's cursor at which the light client starts after a
/// restart.
const LIGHT_CLIENT_MARGIN: u64 = 256;
/// How often a held-back message is looked at (delivered by its member yet?).
const HOLD_STEP: Duration = Duration::from_secs(4);
/// Final blocks of a destination below its head from which a relayer starts to
/// follow its deliveries (older ones are looked up when a held message's turn
/// times out).
const WATCH_LOOKBACK: u64 = 64;
/// How often a deliverer looks for leases held by stopped replicas of this member.
const ORPHAN_CHECK: Duration = Duration::from_secs(30);
/// How long a peer has to answer an attestation request.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// The running relayer's shared state.
pub struct Relayer {
    /// The configuration it runs with.
    pub config: Config,
    /// The history store.
    pub store: Store,
    /// Ledgers by protocol id.
    pub ledgers: BTreeMap<u32, Arc<Ledger>>,
    /// This member's attestation key.
    pub attester: Attester,
    /// The consortium.
    pub consortium: Consortium,
    /// Metrics.
    pub metrics: Metrics,
    /// Worker id for claim leases: member name and process id.
    pub worker: String,
    /// Retry budget of failed deliveries.
    pub retry: RetryPolicy,
    http: reqwest::Client,
    /// When each member last delivered a message of its turn, per destination, as
    /// the destination's deliveries show (see `watch_deliveries`).
    progress: std::sync::Mutex<HashMap<(u32, [u8; 20]), Instant>>,
    /// When this process started (a member never seen delivering counts from here).
    started: Instant,
}

impl Relayer {
    /// Connects to Postgres (migrating it) and to every ledger of the configuration.
    pub async fn start(config: Config) -> Result<Arc<Self>, RelayerError> {
        // Sessions carry the worker id, so replicas can tell this process's leases
        // from those of a process that died (`release_orphaned_leases`).
        let worker = worker_id(&config.member.name);
        let pool = isthmus_schema::connect_as(config.database.url.expose(), &worker).await?;
        let store = Store::new(pool);
        store.migrate().await?;
        let freed = store
            .release_orphaned_leases(&worker_prefix(&config.member.name))
            .await?;
        if freed > 0 {
            info!(
                freed,
                "took back the leases of a stopped process of this member"
            );
        }
        let secret = config.member.key.load_secp256k1()?;
        let attester = Attester::new(config.member.name.clone(), secret.expose());
        let consortium = Consortium::from_config(&config).map_err(RelayerError::Usage)?;
        if consortium
            .member_of(&attester.address())
            .map(|m| m.name.as_str())
            != Some(attester.member())
        {
            return Err(RelayerError::Usage(format!(
                "member.key signs as 0x{} which is not the signer of member `{}` in [consortium]",
                hex::encode(attester.address()),
                attester.member()
            )));
        }
        let mut ledgers = BTreeMap::new();
        for l in &config.ledgers {
            let (kind, finality) = match l.kind {
                LedgerKind::Evm => (
                    isthmus_schema::LedgerKind::Evm,
                    isthmus_schema::FinalityMode::FinalizedTag,
                ),
                LedgerKind::Substrate => (
                    isthmus_schema::LedgerKind::Substrate,
                    isthmus_schema::FinalityMode::Grandpa,
                ),
            };
            store
                .upsert_ledger(&isthmus_schema::Ledger {
                    id: l.id,
                    name: l.name.clone(),
                    kind,
                    finality,
                })
                .await?;
            if l.kind == LedgerKind::Substrate {
                let secret = l.submitter.load_substrate_secret()?;
                let ledger = SubstrateLedger::connect(l, secret.expose())
                    .await
                    .map_err(|e| RelayerError::Usage(e.to_string()))?;
                ledgers.insert(l.id, Arc::new(Ledger::Substrate(Box::new(ledger))));
                continue;
            }
            let submitter = l.submitter.load_secp256k1()?.expose().to_bytes().into();
            // Start the light client a little below the observer's progress, so that
            // after a restart the checkpoints this member and lagging peers still
            // need are inside the verified range.
            let start_at = store
                .load_cursor(CursorKey {
                    ledger: l.id,
                    destination: None,
                    stage: Stage::Observe,
                })
                .await?
                .map_or(0, |c| c.block.number.saturating_sub(LIGHT_CLIENT_MARGIN));
            let ledger = EvmLedger::connect(l, Some(submitter), start_at)
                .await
                .map_err(|e| RelayerError::Usage(e.to_string()))?;
            ledgers.insert(l.id, Arc::new(Ledger::Evm(Box::new(ledger))));
        }
        let http = reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .build()
            .map_err(|e| RelayerError::Usage(format!("HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            config,
            store,
            ledgers,
            attester,
            consortium,
            metrics: Metrics::new(),
            worker,
            retry: RetryPolicy {
                max_attempts: 8,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(300),
            },
            http,
            progress: std::sync::Mutex::new(HashMap::new()),
            started: Instant::now(),
        }))
    }

    /// Runs observers and deliverers until `shutdown` is cancelled; in-flight steps
    /// finish or are abandoned at a point the next start resumes from.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), RelayerError> {
        let mut tasks = tokio::task::JoinSet::new();
        let sources: std::collections::BTreeSet<u32> =
            self.enabled_routes().iter().map(|(s, _)| *s).collect();
        let destinations: std::collections::BTreeSet<u32> =
            self.enabled_routes().iter().map(|(_, d)| *d).collect();
        for id in sources {
            let me = self.clone();
            let stop = shutdown.clone();
            let name = me.ledgers[&id].name().to_owned();
            tasks.spawn(
                async move { me.observe_loop(id, stop).await }
                    .instrument(info_span!("observe", ledger = %name)),
            );
        }
        for id in destinations {
            let me = self.clone();
            let stop = shutdown.clone();
            let name = me.ledgers[&id].name().to_owned();
            tasks.spawn(
                async move { me.deliver_loop(id, stop).await }
                    .instrument(info_span!("deliver", dst = %name)),
            );
        }
        info!(member = %self.attester.member(), worker = %self.worker, "relayer running");
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                error!(error = %e, "a relayer task panicked; stopping");
                shutdown.cancel();
            }
        }
        info!("relayer stopped");
        Ok(())
    }

    /// Enabled routes between ledgers this relayer can reach: (source, destination).
    pub fn enabled_routes(&self) -> Vec<(u32, u32)> {
        let id = |name: &str| self.config.ledger(name).map(|l| l.id);
        self.config
            .routes
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| Some((id(&r.source)?, id(&r.destination)?)))
            .filter(|(s, d)| self.ledgers.contains_key(s) && self.ledgers.contains_key(d))
            .collect()
    }

    fn poll_interval(&self, ledger: u32) -> Duration {
        let ms = self
            .config
            .ledgers
            .iter()
            .find(|l| l.id == ledger)
            .map_or(1000, |l| l.poll_interval_ms);
        Duration::from_millis(ms.max(50))
    }

    async fn observe_loop(&self, ledger: u32, stop: CancellationToken) {
        let pause = self.poll_interval(ledger);
        // A catch-up (more than one round of final blocks behind): where it started.
        let mut catch_up: Option<(u64, std::time::Instant)> = None;
        while !stop.is_cancelled() {
            let began = std::time::Instant::now();
            let wait = match self.observe_once(ledger).await {
                Ok(Some(round)) if round.to < round.finalized => {
                    let (start, since) = *catch_up.get_or_insert((round.from, began));
                    let done = (round.to + 1 - start) as f64;
                    let total = (round.finalized + 1 - start) as f64;
                    let rate = done / since.elapsed().as_secs_f64().max(0.001);
                    info!(
                        percent = format!("{:.1}", 100.0 * done / total),
                        blocks_per_s = rate.round() as u64,
                        remaining_blocks = round.finalized - round.to,
                        eta_s =
                            ((round.finalized - round.to) as f64 / rate.max(0.001)).round() as u64,
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
                    pause
                }
                Err(e) => {
                    self.metrics
                        .rpc_errors
                        .with_label_values(&[self.ledgers[&ledger].name()])
                        .inc();
                    if e.is_retryable() {
                        warn!(error = %e, "observation failed; retrying");
                    } else {
                        error!(error = %e, "observation failed; an operator must act");
                    }
                    pause * 4
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Scans the next bounded range of final blocks. Returns the range scanned and
    /// the final head (more remain when `to < finalized`), or None when there was
    /// nothing new.
    async fn observe_once(&self, id: u32) -> Result<Option<ObservedRound>, RelayerError> {
        let ledger = &self.ledgers[&id];
        let key = CursorKey {
            ledger: id,
            destination: None,
            stage: Stage::Observe,
        };
        let cursor = self.store.load_cursor(key).await?;
        if let Some(c) = cursor {
            ledger.check_linkage(c.block).await?;
        }
        let finalized = ledger.finalized().await?;
        self.metrics
            .height
            .with_label_values(&[ledger.name(), "finalized"])
            .set(finalized.number as i64);
        let from = cursor.map_or(ledger.first_block(), |c| c.block.number + 1);
        if from > finalized.number {
            return Ok(None);
        }
        let to = finalized.number.min(from + ledger.scan_range() - 1);
        let to_ref = ledger.block_ref(to).await?.ok_or_else(|| {
            RelayerError::Usage(format!(
                "ledger {}: final block {to} vanished",
                ledger.name()
            ))
        })?;
        let mut messages = Vec::new();
        let mut rejected = Vec::new();
        for scanned in ledger.scan(from, to).await? {
            match scanned {
                Observed::Message(m) => messages.push(m),
                Observed::Rejected {
                    block,
                    tx_hash,
                    log_index,
                    reason,
                    raw,
                } => {
                    warn!(block = block.number, tx = ?tx_hash.map(|t| hex32(&t)), log_index, %reason, "outbox entry rejected; recorded in the history");
                    rejected.push(RejectedEntry {
                        block,
                        tx_hash,
                        index: log_index,
                        reason,
                        raw,
                    });
                }
            }
        }
        // The entries are recorded with the range, so the history shows every
        // outbox entry: a message, or a rejection with its reason.
        let outcome = self
            .store
            .record_observed_with_rejected(key, to_ref, &messages, &rejected, &self.worker)
            .await?;
        self.metrics
            .rejected_logs
            .with_label_values(&[ledger.name()])
            .inc_by(outcome.rejected as u64);
        // Submission turns: each message has one member whose turn it is to submit
        // it. The others hold it back until it is `consortium.takeover_s` old; then
        // they look whether it was delivered (and only record that delivery), or
        // take it over. The Inbox's replay check keeps delivery exactly once either
        // way; the turns spare the duplicate transactions. Where the destination's
        // deliveries are followed as they land (`watch_deliveries`), a held message
        // is looked at again only at its takeover; elsewhere every HOLD_STEP, so
        // that other members' deliveries reach this history soon.
        let mut others: BTreeMap<bool, Vec<MessageId>> = BTreeMap::new();
        for m in &messages {
            if self.consortium.turn_of(m.nonce) != Some(self.attester.address()) {
                let followed = self
                    .ledgers
                    .get(&m.destination)
                    .is_some_and(|l| l.lists_deliveries());
                others.entry(followed).or_default().push(m.id);
            }
        }
        for (followed, held) in others {
            let wait = if followed {
                self.config.consortium.takeover()
            } else {
                HOLD_STEP
            };
            self.store.defer_observed(&held, wait).await?;
        }
        self.metrics
            .height
            .with_label_values(&[ledger.name(), "observed"])
            .set(to as i64);
        let remaining = finalized.number - to;
        if outcome.inserted > 0 || remaining > 0 {
            info!(
                from,
                to,
                inserted = outcome.inserted,
                remaining_blocks = remaining,
                "observed"
            );
        }
        Ok(Some(ObservedRound {
            from,
            to,
            finalized: finalized.number,
        }))
    }

    /// Runs the route's `in_flight` delivery lanes towards `destination`. Each lane
    /// claims its own batch (the claims never overlap), so one lane sends while the
    /// others wait for their batches' finality.
    async fn deliver_loop(&self, destination: u32, stop: CancellationToken) {
        let lanes = self
            .config
            .routes
            .iter()
            .filter(|r| r.enabled)
            .filter(|r| self.config.ledger(&r.destination).map(|l| l.id) == Some(destination))
            .map(|r| r.in_flight())
            .max()
            .unwrap_or(1)
            .max(1);
        futures::future::join(
            futures::future::join_all(
                (0..lanes).map(|lane| self.deliver_lane(destination, lane, stop.clone())),
            ),
            self.watch_deliveries(destination, stop.clone()),
        )
        .await;
    }

    /// Follows the deliveries the destination makes, by any member, over its final
    /// blocks: records those of messages held here (another member's turn) as soon
    /// as they land, and notes when each member last delivered a message of its turn
    /// (a member that keeps delivering is not taken over, however long the queue).
    /// On ledgers that cannot list their deliveries (Substrate), held messages are
    /// looked up one by one instead and takeover goes by age alone.
    async fn watch_deliveries(&self, destination: u32, stop: CancellationToken) {
        let pause = self.poll_interval(destination);
        let mut next = None;
        while !stop.is_cancelled() {
            match self.watch_once(destination, next).await {
                Ok(Some(n)) => next = Some(n),
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "could not follow the destination's deliveries; retrying")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One step of [`Self::watch_deliveries`] from block `next` (None: from a little
    /// below the final head). Returns the next block to look at, or None when the
    /// ledger cannot list deliveries.
    async fn watch_once(
        &self,
        destination: u32,
        next: Option<u64>,
    ) -> Result<Option<u64>, RelayerError> {
        let target = &self.ledgers[&destination];
        let head = target.finalized().await?.number;
        let from = next.unwrap_or_else(|| head.saturating_sub(WATCH_LOOKBACK));
        if from > head {
            return Ok(Some(from));
        }
        let to = head.min(from + target.scan_range() - 1);
        let Some(seen) = target.deliveries_between(from, to).await? else {
            return Ok(None);
        };
        if seen.is_empty() {
            return Ok(Some(to + 1));
        }
        // A member's progress: deliveries of its turns sent by another submitter
        // than this relayer's. This relayer's own takeovers do not count, or its
        // first takeover would make a stopped member look alive to it.
        if let Ok(mut progress) = self.progress.lock() {
            let now = Instant::now();
            for d in seen.iter().filter(|d| !d.by_this_submitter) {
                if let Some(member) = self.consortium.turn_of(d.nonce) {
                    progress.insert((destination, member), now);
                }
            }
        }
        let ids: Vec<MessageId> = seen.iter().map(|d| MessageId(d.id.0)).collect();
        let held = self
            .store
            .claim_ids(
                &ids,
                &[
                    MessageStatus::Observed,
                    MessageStatus::Verified,
                    MessageStatus::Attested,
                    MessageStatus::Failed,
                ],
                &self.worker,
                LEASE,
            )
            .await?;
        if !held.is_empty() {
            let found = seen.iter().map(|d| (d.id, (d.tx_hash, d.block))).collect();
            let recorded = self.record_found_deliveries(target, &held, &found).await;
            self.release(&held.iter().map(|m| m.id).collect::<Vec<_>>())
                .await;
            recorded?;
        }
        Ok(Some(to + 1))
    }

    /// Whether the member whose turn `nonce` is looks stopped on `destination`: no
    /// delivery of its turns seen there for `consortium.takeover_s` (counted from this
    /// process's start when none was seen).
    fn turn_holder_idle(&self, destination: u32, nonce: u64) -> bool {
        let Some(member) = self.consortium.turn_of(nonce) else {
            return true;
        };
        let last = self
            .progress
            .lock()
            .ok()
            .and_then(|p| p.get(&(destination, member)).copied())
            .unwrap_or(self.started);
        last.elapsed() >= self.config.consortium.takeover()
    }

    async fn deliver_lane(&self, destination: u32, lane: u32, stop: CancellationToken) {
        let pause = self.poll_interval(destination);
        let mut orphans_checked = std::time::Instant::now();
        while !stop.is_cancelled() {
            // A replica that died holds leases until they expire; free them sooner.
            if lane == 0 && orphans_checked.elapsed() >= ORPHAN_CHECK {
                orphans_checked = std::time::Instant::now();
                match self
                    .store
                    .release_orphaned_leases(&worker_prefix(&self.config.member.name))
                    .await
                {
                    Ok(0) => {}
                    Ok(freed) => info!(freed, "took back the leases of a stopped replica"),
                    Err(e) => warn!(error = %e, "could not check for leases of stopped replicas"),
                }
            }
            let wait = match self
                .deliver_once(destination, &stop)
                .instrument(debug_span!("lane", lane))
                .await
            {
                Ok(0) => pause,
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    if e.is_retryable() {
                        warn!(lane, error = %e, "delivery round failed; retrying");
                    } else {
                        error!(lane, error = %e, "delivery round failed; an operator must act");
                    }
                    pause * 4
                }
            };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round for `destination`: claim, then per origin verify, attest, deliver,
    /// confirm. Returns how many messages reached a final state.
    async fn deliver_once(
        &self,
        destination: u32,
        stop: &CancellationToken,
    ) -> Result<usize, RelayerError> {
        let origins: Vec<u32> = self
            .enabled_routes()
            .iter()
            .filter(|(_, d)| *d == destination)
            .map(|(s, _)| *s)
            .collect();
        let batch = self
            .config
            .routes
            .iter()
            .filter(|r| self.config.ledger(&r.destination).map(|l| l.id) == Some(destination))
            .map(|r| r.batch_size())
            .max()
            .unwrap_or(16);
        // Sized so that whole delivery transactions fill the destination's blocks.
        let batch = self.ledgers[&destination].batch_for(batch);
        let claiming = Instant::now();
        let claimed = self
            .store
            .claim_ready_turns(
                destination,
                &origins,
                &[
                    MessageStatus::Observed,
                    MessageStatus::Verified,
                    MessageStatus::Attested,
                    MessageStatus::Submitted,
                    MessageStatus::Failed,
                ],
                batch,
                &self.worker,
                LEASE,
                self.consortium.turns_of(self.attester.address()),
            )
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        self.phase(destination, "claim", claiming);
        let mut by_origin: BTreeMap<u32, Vec<MessageRecord>> = BTreeMap::new();
        for m in claimed {
            by_origin.entry(m.origin).or_default().push(m);
        }
        let mut done = 0;
        let mut failure = None;
        for (origin, messages) in by_origin {
            let ids: Vec<MessageId> = messages.iter().map(|m| m.id).collect();
            if stop.is_cancelled() || failure.is_some() || !origins.contains(&origin) {
                if !origins.contains(&origin) {
                    debug!(
                        origin,
                        "messages from a ledger with no enabled route here; left for another relayer"
                    );
                }
                self.release(&ids).await;
                continue;
            }
            let span = info_span!("route", src = %self.ledgers[&origin].name(), dst = %self.ledgers[&destination].name());
            match self
                .relay(origin, destination, messages)
                .instrument(span)
                .await
            {
                Ok(n) => done += n,
                Err(e) => {
                    // Whatever this round left in flight is retried from its stored
                    // status by the next round (here or in a replica), not after the
                    // lease runs out.
                    self.release(&ids).await;
                    failure = Some(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    /// Gives back this worker's leases on `ids` (those still held: final states and
    /// failures already cleared theirs).
    async fn release(&self, ids: &[MessageId]) {
        if let Err(e) = self.store.release_claims(ids, &self.worker).await {
            warn!(messages = ids.len(), error = %e, "could not release claims; they expire with their lease");
        }
    }

    async fn relay(
        &self,
        origin: u32,
        destination: u32,
        messages: Vec<MessageRecord>,
    ) -> Result<usize, RelayerError> {
        let source = &self.ledgers[&origin];
        let target = &self.ledgers[&destination];
        let now = Utc::now().timestamp().max(0) as u64;
        let mut done = 0;
        let mut open = Vec::new();
        let mut phase = Instant::now();
        for m in messages {
            if m.status == MessageStatus::Observed {
                if let Some(reason) = undeliverable(target, &m) {
                    self.store
                        .transition(
                            m.id,
                            MessageStatus::Observed,
                            MessageStatus::Rejected,
                            &json!({"reason": reason}),
                            &self.worker,
                        )
                        .await?;
                    warn!(msg_id = %m.id, %reason, "rejected: the destination cannot take this message; never submitted");
                    done += 1;
                    continue;
                }
            }
            let expired = m.deadline != 0 && now > m.deadline;
            if expired && m.status != MessageStatus::Submitted {
                self.store
                    .transition(
                        m.id,
                        m.status,
                        MessageStatus::Expired,
                        &json!({"deadline": m.deadline, "now": now}),
                        &self.worker,
                    )
                    .await?;
                info!(msg_id = %m.id, deadline = m.deadline, "expired before delivery; never submitted");
                done += 1;
            } else {
                open.push(m);
            }
        }
        // Skip what the destination already processed (another member's submission,
        // or this member's before a restart): record that delivery instead. A
        // message of this member's turn that was never attempted can only have been
        // delivered by a member taking it over, which the delivery watcher records;
        // the inbox would skip it anyway.
        let mine = |m: &MessageRecord| {
            m.status == MessageStatus::Observed
                && m.attempts == 0
                && self.consortium.turn_of(m.nonce) == Some(self.attester.address())
        };
        let ids: Vec<_> = open
            .iter()
            .filter(|m| !mine(m))
            .map(|m| protocol_id(m.id))
            .collect();
        let delivered = target.delivered_among(&ids).await?;
        let (already, open): (Vec<_>, Vec<_>) = open
            .into_iter()
            .partition(|m| delivered.contains(&protocol_id(m.id)));
        done += self.record_foreign_deliveries(target, &already).await?;
        let takeover = self.config.consortium.takeover();
        let mut live = Vec::new();
        let mut young = Vec::new();
        let mut busy = Vec::new();
        for m in open {
            if m.status != MessageStatus::Observed
                || self.consortium.turn_of(m.nonce) == Some(self.attester.address())
            {
                live.push(m);
            } else if Utc::now() - m.observed_at
                < chrono::Duration::from_std(takeover).unwrap_or(chrono::Duration::MAX)
            {
                // Another member's turn, not delivered yet: look again shortly.
                young.push(m.id);
            } else if !self.turn_holder_idle(destination, m.nonce) {
                // Its member keeps delivering (a queue, not a stop): the watcher
                // records the delivery when it lands; look again after a takeover
                // period.
                busy.push(m.id);
            } else {
                live.push(m);
            }
        }
        for (held, wait) in [(young, HOLD_STEP), (busy, takeover)] {
            if !held.is_empty() {
                self.store.defer_observed(&held, wait).await?;
                self.release(&held).await;
            }
        }
        if live.is_empty() {
            return Ok(done);
        }
        phase = self.phase(destination, "checks", phase);

        // Verify: the checkpoint at the observer's cursor covers every claimed message.
        let cursor = self
            .store
            .load_cursor(CursorKey {
                ledger: origin,
                destination: None,
                stage: Stage::Observe,
            })
            .await?
            .ok_or_else(|| {
                RelayerError::Usage(format!("no observer cursor for ledger {}", source.name()))
            })?;
        let verified = source.verify_checkpoint(cursor.block).await?;
        let checkpoint = *verified.checkpoint();
        let leaves = self
            .store
            .outbox_leaves(origin, u64::from(checkpoint.count))
            .await?;
        let tree =
            MerkleTree::from_leaves(leaves).map_err(|e| RelayerError::Usage(e.to_string()))?;
        if tree.root() != checkpoint.root {
            return Err(RelayerError::Usage(format!(
                "observed messages of {} do not produce the proven root at block {}: the history is incomplete",
                source.name(), checkpoint.block_number
            )));
        }
        let digest = checkpoint.digest();
        let evidence = json!({
            "checkpoint_digest": hex32(&digest),
            "source_block": checkpoint.block_number,
            "source_block_hash": hex32(&checkpoint.block_hash),
            "root": hex32(&checkpoint.root),
            "count": checkpoint.count,
            "finality": verified.finality(),
        });
        self.store
            .record_checkpoint(
                &NewCheckpoint {
                    digest,
                    origin,
                    outbox: checkpoint.outbox.0,
                    root: checkpoint.root,
                    count: checkpoint.count,
                    block: BlockRef {
                        number: checkpoint.block_number,
                        hash: checkpoint.block_hash,
                    },
                },
                &evidence,
                &self.worker,
            )
            .await?;
        let observed: Vec<MessageId> = live
            .iter()
            .filter(|m| m.status == MessageStatus::Observed)
            .map(|m| m.id)
            .collect();
        self.store
            .transition_many(
                &observed,
                MessageStatus::Observed,
                MessageStatus::Verified,
                &evidence,
                &self.worker,
            )
            .await?;
        phase = self.phase(destination, "verify", phase);

        // Attest: ours, then the peers' until the threshold.
        let attestations = self.collect_attestations(&verified).await?;
        let quorum = match self.consortium.signers.verify(&digest, &attestations) {
            Ok(q) => q,
            Err(e) => {
                warn!(
                    have = e.have,
                    need = e.need,
                    "not enough attestations yet; will ask again"
                );
                self.release(&live.iter().map(|m| m.id).collect::<Vec<_>>())
                    .await;
                return Ok(done);
            }
        };
        let signers: Vec<String> = quorum
            .signers
            .iter()
            .map(|s| {
                self.consortium
                    .member_of(s)
                    .map_or_else(|| hex::encode(s), |m| m.name.clone())
            })
            .collect();
        let attested = json!({"checkpoint_digest": hex32(&digest), "signers": signers});
        for from in [
            MessageStatus::Observed,
            MessageStatus::Verified,
            MessageStatus::Failed,
            MessageStatus::Submitted,
        ] {
            let ids: Vec<MessageId> = live
                .iter()
                .filter(|m| m.status == from)
                .map(|m| m.id)
                .collect();
            let from = if from == MessageStatus::Observed {
                MessageStatus::Verified
            } else {
                from
            };
            self.store
                .transition_many(&ids, from, MessageStatus::Attested, &attested, &self.worker)
                .await?;
        }

        phase = self.phase(destination, "attest", phase);

        // Deliver: recorded as submitted before the transaction leaves, so a crash
        // after sending is resolved by the destination's replay check next round.
        let ids: Vec<MessageId> = live.iter().map(|m| m.id).collect();
        let messages: Vec<Message> = live.iter().map(to_protocol).collect::<Result<_, _>>()?;
        let delivery = Delivery {
            checkpoint,
            attestations: quorum
                .signers
                .iter()
                .filter_map(|s| {
                    attestations
                        .iter()
                        .find(|a| a.recover(&digest).ok() == Some(*s))
                        .copied()
                })
                .collect(),
            messages: messages
                .iter()
                .map(|m| tree.branch(m.nonce).map(|b| (m.clone(), b)))
                .collect::<Result<_, _>>()
                .map_err(|e| RelayerError::Usage(e.to_string()))?,
        };
        self.store
            .transition_many(
                &ids,
                MessageStatus::Attested,
                MessageStatus::Submitted,
                &json!({"checkpoint_digest": hex32(&digest), "batch_size": ids.len()}),
                &self.worker,
            )
            .await?;
        let outcome = match target.deliver(&delivery, FINALITY_TIMEOUT).await {
            Ok(o) => o,
            Err(e) => {
                self.metrics
                    .rpc_errors
                    .with_label_values(&[target.name()])
                    .inc();
                warn!(error = %e, retryable = e.is_retryable(), "delivery failed");
                for id in &ids {
                    self.store
                        .set_failure(
                            *id,
                            MessageStatus::Submitted,
                            &e.to_string(),
                            &self.retry,
                            &self.worker,
                        )
                        .await?;
                }
                return Ok(done);
            }
        };
        phase = self.phase(destination, "submit", phase);
        let route = format!("{}->{}", source.name(), target.name());
        let mut deliveries = Vec::new();
        let mut latencies = Vec::new();
        let mut foreign = Vec::new();
        for (index, (id, result)) in outcome.outcomes.iter().enumerate() {
            let id = MessageId(id.0);
            let Some(record) = live.iter().find(|m| m.id == id) else {
                continue;
            };
            match result {
                MessageOutcome::Delivered => {
                    deliveries.push(NewDelivery {
                        message_id: id,
                        destination,
                        tx_hash: outcome.tx_hash,
                        block_number: outcome.block.number,
                        block_hash: Some(outcome.block.hash),
                        gas_used: outcome.gas_used,
                        checkpoint_digest: Some(digest),
                        batch_index: index as u32,
                        batch_size: outcome.outcomes.len() as u32,
                    });
                    latencies.push(
                        (Utc::now() - record.observed_at).num_milliseconds().max(0) as f64 / 1000.0,
                    );
                }
                MessageOutcome::AlreadyDelivered => {
                    self.store
                        .transition(
                            id,
                            MessageStatus::Submitted,
                            MessageStatus::Attested,
                            &json!({"note": "delivered by another submission"}),
                            &self.worker,
                        )
                        .await?;
                    foreign.push(MessageRecord {
                        status: MessageStatus::Attested,
                        ..record.clone()
                    });
                }
                MessageOutcome::HandlerFailed(reason) => {
                    let failure = self
                        .store
                        .set_failure(
                            id,
                            MessageStatus::Submitted,
                            &format!("recipient refused: {reason}"),
                            &self.retry,
                            &self.worker,
                        )
                        .await?;
                    warn!(msg_id = %id, %reason, ?failure, "recipient refused the message; it stays deliverable");
                }
                MessageOutcome::Expired => {
                    self.store
                        .transition(
                            id,
                            MessageStatus::Submitted,
                            MessageStatus::Expired,
                            &json!({"tx": hex32(&outcome.tx_hash)}),
                            &self.worker,
                        )
                        .await?;
                    done += 1;
                }
            }
        }
        // One transaction for the batch's deliveries: all are recorded or none.
        self.store
            .record_deliveries(&deliveries, MessageStatus::Submitted, &self.worker)
            .await?;
        for (d, latency) in deliveries.iter().zip(latencies) {
            self.metrics
                .latency
                .with_label_values(&[&route])
                .observe(latency);
            info!(msg_id = %d.message_id, tx = %hex32(&outcome.tx_hash), block = outcome.block.number, "delivered");
        }
        done += deliveries.len();
        done += self.record_foreign_deliveries(target, &foreign).await?;
        self.phase(destination, "record", phase);
        Ok(done)
    }

    /// Observes the seconds since `since` as `phase` of a delivery round towards
    /// `destination`; returns now, the start of the next phase.
    fn phase(&self, destination: u32, phase: &str, since: Instant) -> Instant {
        let now = Instant::now();
        self.metrics
            .round_phase
            .with_label_values(&[self.ledgers[&destination].name(), phase])
            .observe(now.duration_since(since).as_secs_f64());
        now
    }

    /// Records deliveries made by other submissions (another member, or an earlier
    /// run of this one), each found by the inbox's event. Returns how many.
    async fn record_foreign_deliveries(
        &self,
        target: &Ledger,
        messages: &[MessageRecord],
    ) -> Result<usize, RelayerError> {
        if messages.is_empty() {
            return Ok(0);
        }
        let ids: Vec<_> = messages.iter().map(|m| protocol_id(m.id)).collect();
        let found = target.find_deliveries(&ids).await?;
        self.record_found_deliveries(target, messages, &found).await
    }

    /// Records the deliveries of `messages` (claimed by this worker) that another
    /// submission made, as `found` gives them (every message must be in it).
    async fn record_found_deliveries(
        &self,
        target: &Ledger,
        messages: &[MessageRecord],
        found: &HashMap<isthmus_protocol::MessageId, ([u8; 32], BlockRef)>,
    ) -> Result<usize, RelayerError> {
        if let Some(missing) = messages
            .iter()
            .find(|m| !found.contains_key(&protocol_id(m.id)))
        {
            return Err(RelayerError::Usage(format!(
                "{} reports {} delivered but no delivery event was found",
                target.name(),
                missing.id
            )));
        }
        let mut by_status: std::collections::HashMap<MessageStatus, Vec<NewDelivery>> =
            std::collections::HashMap::new();
        // A message this relayer had not verified or attested goes straight to
        // delivered: its history shows only what this relayer did.
        for m in messages {
            let (tx, block) = found[&protocol_id(m.id)];
            by_status.entry(m.status).or_default().push(NewDelivery {
                message_id: m.id,
                destination: target.id(),
                tx_hash: tx,
                block_number: block.number,
                block_hash: Some(block.hash),
                gas_used: None,
                checkpoint_digest: None,
                batch_index: 0,
                batch_size: 1,
            });
        }
        for (from, deliveries) in by_status {
            self.store
                .record_deliveries(&deliveries, from, &self.worker)
                .await?;
            debug!(
                messages = deliveries.len(),
                "delivered by another submission; recorded"
            );
        }
        Ok(messages.len())
    }

    /// Signs the checkpoint and gathers the other members' attestations, recording
    /// every one with its verdict.
    async fn collect_attestations(
        &self,
        verified: &crate::verified::VerifiedCheckpoint,
    ) -> Result<Vec<Attestation>, RelayerError> {
        let checkpoint = verified.checkpoint();
        let digest = checkpoint.digest();
        let own = self.attester.sign(verified);
        let mut accepted = vec![own];
        self.record_attestation(
            digest,
            self.attester.address(),
            self.attester.member(),
            Some(own),
            Ok(()),
        )
        .await?;
        let peers: Vec<_> = self
            .consortium
            .members
            .iter()
            .filter(|m| m.signer != self.attester.address())
            .collect();
        let answers = futures::future::join_all(
            peers
                .iter()
                .map(|p| attest::request(&self.http, p, checkpoint, PEER_TIMEOUT)),
        )
        .await;
        for verdict in answers {
            match &verdict.verdict {
                Ok(()) => {
                    if let Some(a) = verdict.attestation {
                        accepted.push(a);
                    }
                }
                Err(reason) => {
                    self.metrics
                        .refused_attestations
                        .with_label_values(&[&verdict.member])
                        .inc();
                    warn!(member = %verdict.member, %reason, "attestation refused");
                }
            }
            self.record_attestation(
                digest,
                verdict.signer,
                &verdict.member,
                verdict.attestation,
                verdict.verdict.clone(),
            )
            .await?;
        }
        Ok(accepted)
    }

    async fn record_attestation(
        &self,
        digest: [u8; 32],
        signer: [u8; 20],
        member: &str,
        attestation: Option<Attestation>,
        verdict: Result<(), String>,
    ) -> Result<(), RelayerError> {
        // An unreachable member produced no signature: nothing to record as an
        // attestation; the warning and the metric say it.
        let Some(attestation) = attestation else {
            return Ok(());
        };
        self.store
            .record_attestation(
                &NewAttestation {
                    checkpoint_digest: digest,
                    signer,
                    member: Some(member.to_owned()),
                    signature: attestation.0,
                    verdict,
                },
                &self.worker,
            )
            .await?;
        Ok(())
    }

    /// Verifies and signs a checkpoint at a peer's request (the attestation endpoint).
    pub async fn attest_for_peer(
        &self,
        request: &attest::AttestRequest,
    ) -> Result<attest::AttestResponse, String> {
        let ledger = self
            .ledgers
            .get(&request.origin)
            .ok_or_else(|| format!("ledger {} is not followed here", request.origin))?;
        let hash: [u8; 32] = request
            .block_hash
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "block_hash is not 0x and 32 bytes of hex".to_owned())?;
        let verified = ledger
            .verify_checkpoint(BlockRef {
                number: request.block_number,
                hash,
            })
            .await
            .map_err(|e| e.to_string())?;
        let signature = self.attester.sign(&verified);
        info!(
            origin = request.origin,
            block = request.block_number,
            count = verified.checkpoint().count,
            "attested a checkpoint for a peer"
        );
        Ok(attest::AttestResponse {
            member: self.attester.member().to_owned(),
            signer: format!("0x{}", hex::encode(self.attester.address())),
            checkpoint: verified.checkpoint().into(),
            signature: format!("0x{}", hex::encode(signature.0)),
        })
    }

    /// Refreshes the gauges read from Postgres and the ledgers (at scrape time).
    pub async fn refresh_metrics(&self) -> Result<(), RelayerError> {
        let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
            "SELECT origin::bigint, destination::bigint, status, count(*) FROM messages GROUP BY 1, 2, 3",
        )
        .fetch_all(self.store.pool())
        .await?;
        self.metrics.messages.reset();
        let name = |id: i64| {
            u32::try_from(id)
                .ok()
                .and_then(|id| self.ledgers.get(&id))
                .map_or_else(|| id.to_string(), |l| l.name().to_owned())
        };
        for (o, d, status, n) in rows {
            self.metrics
                .messages
                .with_label_values(&[&format!("{}->{}", name(o), name(d)), &status])
                .set(n);
        }
        for ledger in self.ledgers.values() {
            if let Some(gwei) = ledger.balance_gwei().await {
                self.metrics
                    .balance_gwei
                    .with_label_values(&[ledger.name()])
                    .set(gwei);
            }
            if let Some(free) = ledger.free_balance().await {
                self.metrics
                    .free_balance
                    .with_label_values(&[ledger.name()])
                    .set(free as f64);
            }
        }
        Ok(())
    }
}

/// One observer round: blocks `from..=to` scanned, `finalized` the final head then.
#[derive(Clone, Copy, Debug)]
struct ObservedRound {
    from: u64,
    to: u64,
    finalized: u64,
}

/// The lease-holder prefix of this member's processes.
fn worker_prefix(member: &str) -> String {
    // Postgres keeps 63 bytes of a session's application name: the member part is
    // cut so the whole id fits and matches its sessions.
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

fn hex32(b: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(b))
}

fn protocol_id(id: MessageId) -> isthmus_protocol::MessageId {
    isthmus_protocol::MessageId(id.0)
}

/// Why `target` can never accept `m`, when that is decidable before submission: an
/// EVM Inbox can only call a 20-byte address, so a recipient with non-zero upper 12
/// bytes would fail on every attempt.
fn undeliverable(target: &Ledger, m: &MessageRecord) -> Option<String> {
    match target {
        Ledger::Evm(_) if m.recipient[..12].iter().any(|b| *b != 0) => Some(format!(
            "recipient 0x{} is not a 20-byte address, so no contract on EVM ledger `{}` can receive it",
            hex::encode(m.recipient),
            target.name()
        )),
        _ => None,
    }
}

fn to_protocol(m: &MessageRecord) -> Result<Message, RelayerError> {
    Message::decode(&m.canonical)
        .map_err(|e| RelayerError::Usage(format!("stored message {} does not decode: {e}", m.id)))
}
