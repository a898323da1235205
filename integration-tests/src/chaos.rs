//! The chaos scenario (issue 11, "correct under faults"): three members relay while
//! their nodes and databases misbehave, then the faults stop and the invariants must
//! hold.
//!
//! A [`Plan`] runs in cycles. In each cycle every member reaches each ledger and its
//! database through its own fault proxies ([`crate::MemberProxies`]) with the
//! plan's fault mixes on, messages are sent on every route in waves, and after each
//! wave one scheduled fault happens ([`Scheduled`]: a node SIGSTOPped, Postgres
//! restarted, one or two members SIGKILLed, a nonce jam). Then the faults stop and
//! the cycle's recovery is timed until every message is delivered and every member's
//! history says so. After the last cycle [`run`] asserts:
//!
//! - nothing lost: every message sent is delivered on its destination;
//! - nothing delivered twice: one `MessageDelivered` per id, the echo recipients'
//!   counts and the Substrate clearing balances match what was sent;
//! - every member's history equals the chain: each message `delivered`, its
//!   `deliveries` row naming a transaction whose `MessageDelivered` event has the id;
//! - `isthmus audit verify` passes for every member;
//! - no permanent jam: nothing left pending, no submitter transaction left in a pool.
//!
//! Every random choice comes from the plan's seed; [`Report`] prints the numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use ethers::types::{H256, U256};

use crate::faults::{FaultKind, FaultMix, SplitMix64};
use crate::{
    wait_until, Consortium, Devnet, Ledger, SubLedger, SUBMITTERS, SUB_BANK_A, SUB_BANK_B,
    SUB_LEDGER,
};

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Seeds the proxies' faults, the schedule and its choices.
    pub seed: u64,
    /// Cycles of faults followed by a timed recovery.
    pub cycles: usize,
    /// Messages per cycle on each EVM route (evm-a → evm-b, evm-b → evm-a).
    pub evm_per_cycle: usize,
    /// Messages per cycle on each Substrate route (evm-a → sub, sub → evm-a); 0 runs
    /// without the Substrate ledger.
    pub sub_per_cycle: usize,
    /// Per-request faults of the EVM nodes' proxies.
    pub node_mix: FaultMix,
    /// Per-chunk faults of the Postgres proxies.
    pub postgres_mix: FaultMix,
    /// Per-chunk faults of the Substrate WebSocket proxies.
    pub sub_mix: FaultMix,
    /// Whether each cycle also SIGKILLs two members at once (the quorum is lost until
    /// they are back).
    pub kill_two: bool,
    /// How long a node stays SIGSTOPped.
    pub node_pause: Duration,
    /// How long a Postgres restart refuses connections.
    pub postgres_down: Duration,
    /// How long a killed member stays down.
    pub member_down: Duration,
    /// How long a nonce jam goes on.
    pub jam_for: Duration,
    /// How long a cycle's recovery may take before the run fails.
    pub recovery_timeout: Duration,
}

impl Plan {
    /// The short run of `make test`: one cycle, EVM and Substrate routes, every fault
    /// kind once, about three minutes.
    pub fn short(seed: u64) -> Self {
        Self {
            seed,
            cycles: 1,
            evm_per_cycle: 80,
            sub_per_cycle: 4,
            node_mix: FaultMix::http(0.04)
                .with_delay(Duration::from_millis(20), Duration::from_millis(400))
                .with_stall(Duration::from_secs(12)),
            postgres_mix: FaultMix::tcp(0.001)
                .with_delay(Duration::from_millis(10), Duration::from_millis(300))
                .with_stall(Duration::from_secs(3)),
            sub_mix: FaultMix::tcp(0.002)
                .with_delay(Duration::from_millis(10), Duration::from_millis(300))
                .with_stall(Duration::from_secs(3)),
            kill_two: false,
            node_pause: Duration::from_secs(10),
            postgres_down: Duration::from_secs(4),
            member_down: Duration::from_secs(4),
            jam_for: Duration::from_secs(6),
            // Well below the relayer's claim lease (300 s): a lease whose claim's
            // answer or release was lost to a reset must come back within a minute
            // (the stray-lease check), not when the lease runs out.
            recovery_timeout: Duration::from_secs(180),
        }
    }

    /// The soak of `make chaos`: about `messages` messages over several cycles on
    /// every route, with two members killed in every cycle too.
    pub fn soak(seed: u64, messages: usize) -> Self {
        let cycles = 4;
        let per_cycle = messages.div_ceil(cycles);
        let sub_per_cycle = (per_cycle / 20).max(4);
        Self {
            cycles,
            evm_per_cycle: (per_cycle.saturating_sub(2 * sub_per_cycle) / 2).max(1),
            sub_per_cycle,
            kill_two: true,
            jam_for: Duration::from_secs(10),
            recovery_timeout: Duration::from_secs(240),
            ..Self::short(seed)
        }
    }
}

/// A fault the schedule injects between two waves of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheduled {
    /// SIGSTOP the anvil of ledger `0` (evm-a) or `1` (evm-b), SIGCONT after
    /// [`Plan::node_pause`].
    PauseNode(usize),
    /// SIGSTOP the Substrate dev chain, SIGCONT after [`Plan::node_pause`].
    PauseSubstrate,
    /// Every member's Postgres restarts (its proxy resets and refuses connections).
    PostgresRestart,
    /// SIGKILL one member; start it again after [`Plan::member_down`].
    KillOne(usize),
    /// SIGKILL two members; start them again after [`Plan::member_down`].
    KillTwo(usize, usize),
    /// Transactions from member `member`'s submitter key on ledger `ledger` (0, 1),
    /// outside the relayer: its in-flight delivery replaced, its next nonce taken, a
    /// nonce gap.
    NonceJam {
        /// The member whose key is used.
        member: usize,
        /// The EVM ledger (0: evm-a, 1: evm-b).
        ledger: usize,
    },
}

impl fmt::Display for Scheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheduled::PauseNode(l) => write!(f, "SIGSTOP {}", ["evm-a", "evm-b"][*l]),
            Scheduled::PauseSubstrate => f.write_str("SIGSTOP sub"),
            Scheduled::PostgresRestart => f.write_str("Postgres restart"),
            Scheduled::KillOne(m) => write!(f, "SIGKILL bank-{m}"),
            Scheduled::KillTwo(a, b) => write!(f, "SIGKILL bank-{a} and bank-{b}"),
            Scheduled::NonceJam { member, ledger } => {
                write!(
                    f,
                    "nonce jam bank-{member} on {}",
                    ["evm-a", "evm-b"][*ledger]
                )
            }
        }
    }
}

/// The outcome of a run (the invariants have been asserted when [`run`] returns it).
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The plan's seed.
    pub seed: u64,
    /// Messages sent per route.
    pub sent: BTreeMap<&'static str, usize>,
    /// Messages sent and never delivered.
    pub lost: usize,
    /// Deliveries beyond the first of a message (events or handler runs).
    pub duplicated: usize,
    /// Faults injected by the proxies, by what they stood in front of ("EVM node",
    /// "Postgres", "Substrate WS") and kind.
    pub proxy_faults: BTreeMap<(&'static str, FaultKind), u64>,
    /// Scheduled faults and their effects, by name.
    pub scheduled: BTreeMap<String, u64>,
    /// Each cycle's recovery: from faults off to everything delivered on the ledgers
    /// and recorded `delivered` in every member's history.
    pub recoveries: Vec<Duration>,
    /// Each cycle's time from faults off to everything delivered on the ledgers (the
    /// histories may settle later).
    pub delivered_after: Vec<Duration>,
    /// Times a member's process ended by itself and the harness started it again.
    pub self_exits: u64,
    /// The whole run.
    pub wall: Duration,
}

impl Report {
    /// Messages sent on every route.
    pub fn messages(&self) -> usize {
        self.sent.values().sum()
    }

    /// The longest recovery.
    pub fn longest_recovery(&self) -> Duration {
        self.recoveries.iter().copied().max().unwrap_or_default()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| fault | injected |")?;
        writeln!(f, "|---|---|")?;
        for ((role, kind), n) in &self.proxy_faults {
            writeln!(f, "| {role}: {kind} | {n} |")?;
        }
        for (name, n) in &self.scheduled {
            writeln!(f, "| {name} | {n} |")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "| seed | messages | lost | duplicated | longest recovery | recoveries: all delivered / histories settled | self exits | wall |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|---|")?;
        let routes: Vec<String> = self.sent.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let recoveries: Vec<String> = self
            .delivered_after
            .iter()
            .zip(&self.recoveries)
            .map(|(d, r)| format!("{:.1} / {:.1} s", d.as_secs_f64(), r.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "| {} | {} ({}) | {} | {} | {:.1} s | {} | {} | {:.0} s |",
            self.seed,
            self.messages(),
            routes.join(", "),
            self.lost,
            self.duplicated,
            self.longest_recovery().as_secs_f64(),
            recoveries.join(", "),
            self.self_exits,
            self.wall.as_secs_f64()
        )
    }
}

/// The ids sent on each route.
#[derive(Default)]
struct Sent {
    a_to_b: Vec<[u8; 32]>,
    b_to_a: Vec<[u8; 32]>,
    a_to_sub: Vec<[u8; 32]>,
    sub_to_a: Vec<[u8; 32]>,
}

impl Sent {
    fn all(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.a_to_b
            .iter()
            .chain(&self.b_to_a)
            .chain(&self.a_to_sub)
            .chain(&self.sub_to_a)
    }

    fn total(&self) -> usize {
        self.a_to_b.len() + self.b_to_a.len() + self.a_to_sub.len() + self.sub_to_a.len()
    }
}

fn log(started: Instant, what: impl fmt::Display) {
    eprintln!("[chaos {:>6.1}s] {what}", started.elapsed().as_secs_f64());
}

/// The runtime's clearing app address: `keccak256("isthmus clearing app")`.
fn pallet_clearing_app() -> [u8; 32] {
    isthmus_protocol::keccak256(b"isthmus clearing app")
}

/// A payment of 1 from `SUB_BANK_A` to `SUB_BANK_B` with a unique instruction id.
fn unit_payment(seed: u64, n: usize) -> Vec<u8> {
    use ethers::abi::Token;
    let instruction = isthmus_protocol::keccak256(format!("chaos {seed} payment {n}").as_bytes());
    ethers::abi::encode(&[
        Token::FixedBytes(instruction.to_vec()),
        Token::FixedBytes(SUB_BANK_A.to_vec()),
        Token::FixedBytes(SUB_BANK_B.to_vec()),
        Token::Uint(U256::one()),
    ])
}

/// Runs `plan` and asserts the invariants (panics naming the broken one, with the
/// members' logs). Returns the numbers.
pub async fn run(plan: &Plan) -> Report {
    let started = Instant::now();
    let mut rng = SplitMix64::new(plan.seed);
    let with_sub = plan.sub_per_cycle > 0;
    log(started, format_args!("seed {} plan {plan:?}", plan.seed));
    let devnet = if with_sub {
        Devnet::start_with_substrate().await
    } else {
        Devnet::start().await
    };
    let mut consortium = Consortium::with_proxies(&devnet, "chaos", plan.seed).await;
    for m in &mut consortium.members {
        m.start();
    }
    log(started, "devnet and members up");
    let mut report = Report {
        seed: plan.seed,
        ..Report::default()
    };
    let mut sent = Sent::default();
    let mut payments = 0usize;

    for cycle in 0..plan.cycles {
        // This cycle's schedule: every kind once, in a seeded order.
        let member = |rng: &mut SplitMix64| rng.below(3) as usize;
        let mut schedule = vec![
            Scheduled::PauseNode(rng.below(2) as usize),
            Scheduled::PostgresRestart,
            Scheduled::KillOne(member(&mut rng)),
            Scheduled::NonceJam {
                member: member(&mut rng),
                ledger: rng.below(2) as usize,
            },
        ];
        if with_sub {
            schedule.push(Scheduled::PauseSubstrate);
        }
        if plan.kill_two {
            let first = member(&mut rng);
            schedule.push(Scheduled::KillTwo(
                first,
                (first + 1 + rng.below(2) as usize) % 3,
            ));
        }
        for i in (1..schedule.len()).rev() {
            schedule.swap(i, rng.below(i as u64 + 1) as usize);
        }
        log(
            started,
            format_args!("cycle {cycle}: faults on; schedule {schedule:?}"),
        );
        for p in consortium.proxies() {
            p.set_evm_mix(&plan.node_mix);
            p.postgres.set_mix(plan.postgres_mix.clone());
            if let Some(sub) = &p.sub {
                sub.set_mix(plan.sub_mix.clone());
            }
        }

        let waves = schedule.len();
        for (wave, event) in schedule.iter().enumerate() {
            let share = |total: usize| total * (wave + 1) / waves - total * wave / waves;
            let n_evm = share(plan.evm_per_cycle);
            let n_sub = share(plan.sub_per_cycle);
            let (ab, ba) = tokio::join!(
                devnet.a.dispatch_burst(2, devnet.b.deployment.echo, n_evm),
                devnet.b.dispatch_burst(1, devnet.a.deployment.echo, n_evm),
            );
            sent.a_to_b.extend(ab);
            sent.b_to_a.extend(ba);
            if let Some(sub) = &devnet.sub {
                let bodies = (payments..payments + n_sub)
                    .map(|n| unit_payment(plan.seed, n))
                    .collect();
                payments += n_sub;
                sent.a_to_sub.extend(
                    devnet
                        .a
                        .dispatch_burst_raw(SUB_LEDGER, pallet_clearing_app(), bodies)
                        .await,
                );
                for _ in 0..n_sub {
                    let echo = isthmus_protocol::Address32::from_evm(devnet.a.deployment.echo.0).0;
                    sent.sub_to_a
                        .push(sub.dispatch(1, echo, 0, b"chaos from sub").await);
                }
            }
            log(
                started,
                format_args!(
                    "cycle {cycle} wave {wave}: {} sent; now {event}",
                    sent.total()
                ),
            );
            inject(
                *event,
                plan,
                &devnet,
                &mut consortium,
                &mut report,
                &mut rng,
            )
            .await;
            report.self_exits += restart_exited(&mut consortium, started);
        }

        // Faults off: time the recovery.
        consortium.faults_off();
        let off = Instant::now();
        log(
            started,
            format_args!("cycle {cycle}: faults off; {} messages sent", sent.total()),
        );
        let deadline = off + plan.recovery_timeout;
        let mut delivered_after = None;
        loop {
            report.self_exits += restart_exited(&mut consortium, started);
            if delivered_after.is_none() && on_chain(&devnet, &sent, payments).await {
                delivered_after = Some(off.elapsed());
            }
            if delivered_after.is_some() && settled(&devnet, &consortium, &sent, payments).await {
                break;
            }
            if Instant::now() > deadline {
                let missing = missing(&devnet, &sent).await;
                panic!(
                    "seed {}: cycle {cycle} did not recover within {:?}: {} of {} messages not delivered on \
                     their destination ({:?}); members' unsettled messages:\n{}\n{}",
                    plan.seed,
                    plan.recovery_timeout,
                    missing.len(),
                    sent.total(),
                    missing.iter().take(10).map(hex::encode).collect::<Vec<_>>(),
                    unsettled(&consortium).await,
                    consortium.logs()
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let recovery = off.elapsed();
        let delivered_after = delivered_after.unwrap_or(recovery);
        log(
            started,
            format_args!(
                "cycle {cycle}: everything delivered after {delivered_after:?}, every history settled after {recovery:?}"
            ),
        );
        report.recoveries.push(recovery);
        report.delivered_after.push(delivered_after);
    }

    report.sent.insert("evm-a -> evm-b", sent.a_to_b.len());
    report.sent.insert("evm-b -> evm-a", sent.b_to_a.len());
    if with_sub {
        report.sent.insert("evm-a -> sub", sent.a_to_sub.len());
        report.sent.insert("sub -> evm-a", sent.sub_to_a.len());
    }
    for p in consortium.proxies() {
        let roles = [
            ("EVM node", &p.evm_a),
            ("EVM node", &p.evm_b),
            ("Postgres", &p.postgres),
        ];
        for (role, proxy) in roles
            .into_iter()
            .chain(p.sub.iter().map(|s| ("Substrate WS", s)))
        {
            for (kind, n) in proxy.counts().0 {
                *report.proxy_faults.entry((role, kind)).or_default() += n;
            }
        }
    }
    check_invariants(&devnet, &mut consortium, &sent, payments, &mut report).await;
    report.wall = started.elapsed();
    log(started, format_args!("done\n{report}"));
    for m in &mut consortium.members {
        m.stop();
    }
    report
}

/// Starts every member whose process ended by itself (as a supervisor would);
/// returns how many.
fn restart_exited(consortium: &mut Consortium, started: Instant) -> u64 {
    let mut n = 0;
    for m in &mut consortium.members {
        if let Some(status) = m.exited() {
            log(
                started,
                format_args!(
                    "{} exited by itself ({status}); starting it again. Its log ends:\n{}",
                    m.name,
                    m.log_tail()
                ),
            );
            m.start();
            n += 1;
        }
    }
    n
}

async fn inject(
    event: Scheduled,
    plan: &Plan,
    devnet: &Devnet,
    consortium: &mut Consortium,
    report: &mut Report,
    rng: &mut SplitMix64,
) {
    let count = |report: &mut Report, name: &str| {
        *report.scheduled.entry(name.to_owned()).or_default() += 1;
    };
    let ledgers = [&devnet.a, &devnet.b];
    match event {
        Scheduled::PauseNode(l) => {
            ledgers[l].pause();
            tokio::time::sleep(plan.node_pause).await;
            ledgers[l].resume();
            count(report, "EVM node SIGSTOP");
        }
        Scheduled::PauseSubstrate => {
            if let Some(sub) = &devnet.sub {
                sub.pause();
                tokio::time::sleep(plan.node_pause).await;
                sub.resume();
                count(report, "Substrate node SIGSTOP");
            }
        }
        Scheduled::PostgresRestart => {
            for p in consortium.proxies() {
                p.postgres.restart(plan.postgres_down);
            }
            tokio::time::sleep(plan.postgres_down + Duration::from_secs(1)).await;
            count(report, "Postgres restart (all members)");
        }
        Scheduled::KillOne(m) => {
            consortium.members[m].kill();
            tokio::time::sleep(plan.member_down).await;
            consortium.members[m].start();
            count(report, "one member SIGKILL");
        }
        Scheduled::KillTwo(a, b) => {
            consortium.members[a].kill();
            consortium.members[b].kill();
            tokio::time::sleep(plan.member_down).await;
            consortium.members[a].start();
            consortium.members[b].start();
            count(report, "two members SIGKILL");
        }
        Scheduled::NonceJam { member, ledger } => {
            let effects = nonce_jam(ledgers[ledger], member, plan.jam_for, rng).await;
            for (name, n) in effects {
                *report.scheduled.entry(name).or_default() += n;
            }
        }
    }
}

/// Sends transactions from member `member`'s submitter key on `ledger` for `length`,
/// outside its relayer: when the relayer has a transaction in flight, it is replaced
/// at its nonce with a higher fee (the delivery is dropped); otherwise the next nonce
/// is taken; once, a transaction one nonce ahead opens a gap that the next one fills.
/// Returns what happened, by name.
async fn nonce_jam(
    ledger: &Ledger,
    member: usize,
    length: Duration,
    rng: &mut SplitMix64,
) -> BTreeMap<String, u64> {
    use ethers::middleware::SignerMiddleware;
    use ethers::providers::Middleware;
    use ethers::signers::{LocalWallet, Signer};
    use ethers::types::{BlockNumber, TransactionRequest};
    let mut effects = BTreeMap::new();
    let mut note = |name: String| *effects.entry(name).or_insert(0) += 1;
    let wallet = LocalWallet::from_bytes(&SUBMITTERS[member])
        .unwrap_or_else(|e| panic!("submitter key {member}: {e}"))
        .with_chain_id(ledger.anvil.chain_id());
    let me = wallet.address();
    let provider = ledger
        .anvil
        .provider()
        .unwrap_or_else(|e| panic!("{}: {e}", ledger.name));
    let client = SignerMiddleware::new(provider, wallet);
    let price = U256::from(100_000_000_000u64);
    let send = |nonce: U256, price: U256| {
        let tx = TransactionRequest::new()
            .from(me)
            .to(me)
            .value(0)
            .gas(21_000)
            .gas_price(price)
            .nonce(nonce);
        let client = &client;
        async move { client.send_transaction(tx, None).await.map(|p| p.tx_hash()) }
    };
    let deadline = Instant::now() + length;
    let mut gap_opened = false;
    let mut ours = BTreeSet::new();
    while Instant::now() < deadline {
        let count = |block: BlockNumber| client.get_transaction_count(me, Some(block.into()));
        let (Ok(latest), Ok(pending)) = (
            count(BlockNumber::Latest).await,
            count(BlockNumber::Pending).await,
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // The relayer's transaction is in flight when the pool holds one at a nonce
        // this jam did not send.
        let attempts: Vec<(U256, &str)> = if pending > latest {
            if ours.contains(&latest) {
                Vec::new()
            } else {
                vec![(latest, "nonce jam: in-flight delivery replaced")]
            }
        } else if !gap_opened && rng.below(8) == 0 {
            gap_opened = true;
            vec![
                (pending + 1, "nonce jam: gap opened (nonce too high)"),
                (pending, "nonce jam: gap filled"),
            ]
        } else if rng.below(8) == 0 {
            vec![(pending, "nonce jam: next nonce taken")]
        } else {
            Vec::new()
        };
        for (nonce, what) in attempts {
            match send(nonce, price).await {
                Ok(_) => {
                    ours.insert(nonce);
                    note(what.to_owned());
                }
                Err(e) => {
                    let e = e.to_string().to_ascii_lowercase();
                    let why = [
                        "underpriced",
                        "nonce too low",
                        "nonce too high",
                        "already known",
                    ]
                    .into_iter()
                    .find(|w| e.contains(w))
                    .unwrap_or("other");
                    note(format!("nonce jam: refused ({why})"));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50 + rng.below(100))).await;
    }
    effects
}

/// Whether every message sent so far is delivered on its destination and every
/// member's history has settled it (nothing in another status).
async fn settled(devnet: &Devnet, consortium: &Consortium, sent: &Sent, payments: usize) -> bool {
    if !on_chain(devnet, sent, payments).await {
        return false;
    }
    let total = sent.total() as i64;
    for m in &consortium.members {
        let (delivered, other) = history_counts(m).await;
        if delivered != total || other != 0 {
            return false;
        }
    }
    true
}

/// Whether every message sent so far is delivered on its destination.
async fn on_chain(devnet: &Devnet, sent: &Sent, payments: usize) -> bool {
    let on_b: BTreeSet<[u8; 32]> = devnet
        .b
        .delivered_events()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if !sent.a_to_b.iter().all(|id| on_b.contains(id)) {
        return false;
    }
    let on_a: BTreeSet<[u8; 32]> = devnet
        .a
        .delivered_events()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if !sent
        .b_to_a
        .iter()
        .chain(&sent.sub_to_a)
        .all(|id| on_a.contains(id))
    {
        return false;
    }
    if let Some(sub) = &devnet.sub {
        if sub.clearing_balance(SUB_BANK_A).await != 1_000_000 - payments as u128 {
            return false;
        }
    }
    true
}

/// A member's count of delivered messages and of messages in any other status.
async fn history_counts(m: &crate::Member) -> (i64, i64) {
    let Ok(pool) = sqlx::PgPool::connect(&m.database_url).await else {
        return (-1, -1);
    };
    let row: Result<(i64, i64), _> = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status <> 'delivered') FROM messages",
    )
    .fetch_one(&pool)
    .await;
    pool.close().await;
    row.unwrap_or((-1, -1))
}

/// The ids sent and not delivered on their destination.
async fn missing(devnet: &Devnet, sent: &Sent) -> Vec<[u8; 32]> {
    let on_b: BTreeSet<[u8; 32]> = devnet
        .b
        .delivered_events()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let on_a: BTreeSet<[u8; 32]> = devnet
        .a
        .delivered_events()
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut missing: Vec<[u8; 32]> = sent
        .a_to_b
        .iter()
        .filter(|id| !on_b.contains(*id))
        .copied()
        .collect();
    missing.extend(
        sent.b_to_a
            .iter()
            .chain(&sent.sub_to_a)
            .filter(|id| !on_a.contains(*id)),
    );
    if let Some(sub) = &devnet.sub {
        for id in &sent.a_to_sub {
            if sub.delivered_count(&[*id]).await == 0 {
                missing.push(*id);
            }
        }
    }
    missing
}

/// A message row that is not delivered: id, origin, destination, status, attempts,
/// last error.
type UnsettledRow = (Vec<u8>, i64, i64, String, i32, Option<String>);

/// Each member's messages that are not delivered: status, attempts, last error.
async fn unsettled(consortium: &Consortium) -> String {
    let mut out = String::new();
    for m in &consortium.members {
        let Ok(pool) = sqlx::PgPool::connect(&m.database_url).await else {
            continue;
        };
        let rows: Vec<UnsettledRow> = sqlx::query_as(
            "SELECT id, origin, destination, status, attempts, last_error FROM messages \
             WHERE status <> 'delivered' ORDER BY observed_at LIMIT 10",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        let (delivered, other) = history_counts(m).await;
        out += &format!("{}: {delivered} delivered, {other} not\n", m.name);
        for (id, origin, destination, status, attempts, error) in rows {
            out += &format!(
                "  0x{} {origin}->{destination} {status} attempts {attempts} last_error {error:?}\n",
                hex::encode(id)
            );
        }
        pool.close().await;
    }
    out
}

/// The final checks of a run (see the module's documentation); fills the report's
/// lost and duplicated counts, then asserts.
async fn check_invariants(
    devnet: &Devnet,
    consortium: &mut Consortium,
    sent: &Sent,
    payments: usize,
    report: &mut Report,
) {
    let seed = report.seed;
    // Nothing lost.
    let missing = missing(devnet, sent).await;
    report.lost = missing.len();

    // Nothing delivered twice: one event per id; each handler ran once.
    let mut events_per_id: BTreeMap<(u32, [u8; 32]), u64> = BTreeMap::new();
    let mut event_tx: BTreeSet<(u32, [u8; 32], H256)> = BTreeSet::new();
    for ledger in [&devnet.a, &devnet.b] {
        for (id, tx) in ledger.delivered_events().await {
            *events_per_id.entry((ledger.id, id)).or_default() += 1;
            event_tx.insert((ledger.id, id, tx));
        }
    }
    let mut duplicated: usize = events_per_id.values().map(|n| (*n - 1) as usize).sum();
    let on_b = echo_received(&devnet.b).await;
    let on_a = echo_received(&devnet.a).await;
    let expected_a = sent.b_to_a.len() + sent.sub_to_a.len();
    duplicated += on_b.saturating_sub(sent.a_to_b.len()) + on_a.saturating_sub(expected_a);
    let mut sub_balance_ok = true;
    if let Some(sub) = &devnet.sub {
        let a = sub.clearing_balance(SUB_BANK_A).await;
        let b = sub.clearing_balance(SUB_BANK_B).await;
        let moved = 1_000_000u128.saturating_sub(a) as usize;
        duplicated += moved.saturating_sub(payments);
        sub_balance_ok = a == 1_000_000 - payments as u128 && b == 1_000_000 + payments as u128;
    }
    report.duplicated = duplicated;
    assert!(
        missing.is_empty(),
        "seed {seed}: {} messages lost: {:?}",
        missing.len(),
        missing.iter().map(hex::encode).collect::<Vec<_>>()
    );
    let twice: Vec<String> = events_per_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((ledger, id), n)| format!("0x{} on {ledger}: {n} events", hex::encode(id)))
        .collect();
    assert_eq!(
        duplicated, 0,
        "seed {seed}: duplicated deliveries: {twice:?}"
    );
    assert_eq!(on_b, sent.a_to_b.len(), "seed {seed}: evm-b's echo count");
    assert_eq!(on_a, expected_a, "seed {seed}: evm-a's echo count");
    assert!(
        sub_balance_ok,
        "seed {seed}: the Substrate clearing balances moved {payments} payments other than once"
    );
    if let Some(sub) = &devnet.sub {
        assert_eq!(
            sub.delivered_count(&sent.a_to_sub).await,
            sent.a_to_sub.len(),
            "seed {seed}: the pallet's inbox"
        );
    }

    // Every member's history equals the chain.
    let all: BTreeSet<[u8; 32]> = sent.all().copied().collect();
    for m in &consortium.members {
        let pool = m.db().await;
        let statuses: Vec<(Vec<u8>, String)> = sqlx::query_as("SELECT id, status FROM messages")
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        let recorded: BTreeSet<[u8; 32]> = statuses
            .iter()
            .filter(|(_, s)| s == "delivered")
            .filter_map(|(id, _)| id.as_slice().try_into().ok())
            .collect();
        assert_eq!(
            statuses.len(),
            all.len(),
            "seed {seed}: {} records other messages",
            m.name
        );
        assert_eq!(
            recorded, all,
            "seed {seed}: {}'s delivered messages differ from those sent",
            m.name
        );
        let deliveries: Vec<(Vec<u8>, i64, Vec<u8>)> =
            sqlx::query_as("SELECT message_id, destination, tx_hash FROM deliveries")
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        assert_eq!(
            deliveries.len(),
            all.len(),
            "seed {seed}: {}: one deliveries row per message",
            m.name
        );
        for (id, destination, tx) in &deliveries {
            let (Ok(id), Ok(tx)) = (
                <[u8; 32]>::try_from(id.as_slice()),
                <[u8; 32]>::try_from(tx.as_slice()),
            ) else {
                panic!("{}: malformed deliveries row", m.name);
            };
            if *destination == i64::from(SUB_LEDGER) {
                continue; // checked on the pallet above: delivered, exactly once.
            }
            assert!(
                event_tx.contains(&(*destination as u32, id, H256(tx))),
                "seed {seed}: {} says 0x{} was delivered on {destination} by 0x{}, whose receipt has no MessageDelivered for it",
                m.name,
                hex::encode(id),
                hex::encode(tx)
            );
        }
        pool.close().await;
        let out = m.isthmus(&["audit", "verify"]);
        assert!(
            out.status.success(),
            "seed {seed}: {}: audit verify failed: {}{}",
            m.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // No permanent jam: no submitter transaction left in a pool.
    for (i, key) in SUBMITTERS.iter().enumerate() {
        for ledger in [&devnet.a, &devnet.b] {
            let clear = wait_until(Duration::from_secs(60), || submitter_idle(ledger, key)).await;
            assert!(
                clear,
                "seed {seed}: bank-{i}'s submitter has a transaction stuck in {}'s pool",
                ledger.name
            );
        }
    }
}

/// How many messages `ledger`'s echo recipient has handled.
async fn echo_received(ledger: &Ledger) -> usize {
    use isthmus_adapter_evm::contracts::EchoRecipient;
    EchoRecipient::new(ledger.deployment.echo, ledger.admin.clone())
        .received()
        .call()
        .await
        .unwrap_or_else(|e| panic!("echo on {}: {e}", ledger.name))
        .as_usize()
}

/// Whether the submitter with secret `key` has nothing pending on `ledger`.
async fn submitter_idle(ledger: &Ledger, key: &[u8; 32]) -> bool {
    use ethers::providers::Middleware;
    use ethers::signers::{LocalWallet, Signer};
    use ethers::types::BlockNumber;
    let Ok(wallet) = LocalWallet::from_bytes(key) else {
        return false;
    };
    let me = wallet.address();
    let count = |block: BlockNumber| ledger.admin.get_transaction_count(me, Some(block.into()));
    matches!(
        (count(BlockNumber::Latest).await, count(BlockNumber::Pending).await),
        (Ok(l), Ok(p)) if l == p
    )
}

impl SubLedger {
    /// Pauses the dev chain (SIGSTOP).
    pub fn pause(&self) {
        crate::signal(self.pid(), "STOP");
    }

    /// Resumes a paused dev chain (SIGCONT).
    pub fn resume(&self) {
        crate::signal(self.pid(), "CONT");
    }
}
