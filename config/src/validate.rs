//! Whole-configuration validation: every problem, each with its key, place and fix.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

mod attestation;

use crate::address::EvmAddress;
use crate::error::ConfigError;
use crate::key::KeySource;
use crate::model::{
    AnchorConfig, Config, Finality, LedgerConfig, LedgerKind, DEFAULT_BFT_EPOCH, DEFAULT_PALLET,
    MAX_BATCH_SIZE, MAX_IN_FLIGHT, MAX_TAKEOVER_S, MIN_MESSAGE_GAS,
};
use crate::problem::{KeyPath, Problem};
use crate::secret::redact_url;
use crate::settings::{
    ConsensusStep, ConsortiumMemberSettings, ConsortiumSettings, DatabaseSettings, EvmFinality,
    EvmSettings, GrandpaAnchor, HttpSettings, LedgerKindSettings, LedgerSettings, LogSettings,
    MemberSettings, RouteSettings, ScreeningSettings, SealProtocol, SealedFinality, Settings,
    SubstrateSettings, TrustedBlock,
};

/// URL schemes accepted for ledger RPC endpoints.
/// URL schemes accepted for an EVM ledger's nodes (JSON-RPC over HTTP).
const EVM_RPC_SCHEMES: &[&str] = &["http", "https"];
/// URL schemes accepted for a Substrate ledger's nodes (JSON-RPC over WebSocket).
const SUBSTRATE_RPC_SCHEMES: &[&str] = &["ws", "wss"];
/// URL schemes accepted for peers' attestation endpoints (mutual TLS only).
const ATTESTATION_SCHEMES: &[&str] = &["https"];
/// URL schemes accepted for the database.
const DB_SCHEMES: &[&str] = &["postgres", "postgresql"];
/// Levels accepted in `log.level` directives.
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

impl Config {
    /// Checks the configuration's meaning and, when it is sound, returns it parsed
    /// into the typed [`Settings`] the relayer runs with. Otherwise returns every
    /// problem found, not just the first: an operator fixing a file should need one
    /// run, not one per mistake.
    ///
    /// Key sources are checked for real: environment variables must be set and files
    /// readable, holding a key of the right form. Key material never appears in a
    /// problem, nor in the settings (which hold the [`KeySource`]s).
    ///
    /// Modes and options that `isthmus run` cannot honour are problems too, each with
    /// its reason: a Substrate ledger without a trust `anchor` (or one whose chain
    /// spec cannot be read), a `pallet` other than `Isthmus`, and `pallet_index`.
    pub fn validate(&self) -> Result<Settings, Vec<Problem>> {
        let mut check = Checker {
            config: self,
            problems: Vec::new(),
        };
        let database = check.database();
        let ledgers = check.ledgers();
        let routes = check.routes();
        let consortium = check.consortium();
        let member = check.member();
        let attestation = check.attestation();
        let log = check.log();
        let screening = check.screening();
        let settings = (|| {
            Some(Settings {
                database: database?,
                member: member?,
                ledgers: ledgers.into_iter().collect::<Option<_>>()?,
                routes: routes.into_iter().collect::<Option<_>>()?,
                consortium: consortium?,
                http: HttpSettings {
                    listen: self.http.listen,
                },
                attestation: attestation?,
                screening: screening?,
                log: log?,
            })
        })();
        match settings {
            Some(settings) if check.problems.is_empty() => Ok(settings),
            _ => {
                if check.problems.is_empty() {
                    // Every check that yields no value reports why; reaching this is a
                    // bug in this crate, and a configuration must not pass because of it.
                    check.problems.push(self.provenance.problem(
                        &KeyPath::default(),
                        "the configuration could not be turned into settings, but no check says why"
                            .to_owned(),
                        "report this as a bug in isthmus-config, with the configuration (keys removed)"
                            .to_owned(),
                    ));
                }
                Err(check.problems)
            }
        }
    }

    /// Legal but risky settings, worth a look and never fatal: a threshold that a
    /// minority of members can meet, no enabled route, an HTTP server listening on
    /// every interface, or this member's certificate expiring within 30 days.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        let members = self.consortium.members.len();
        let threshold = self.consortium.threshold as usize;
        if threshold >= 1 && threshold <= members && threshold * 2 <= members {
            warnings.push(self.provenance.problem(
                &KeyPath::root("consortium").field("threshold"),
                format!(
                    "threshold {threshold} of {members} members lets a minority attest a checkpoint alone"
                ),
                format!("raise it to at least {} (a majority) unless this is intended", members / 2 + 1),
            ));
        }
        if !self.routes.iter().any(|r| r.enabled) {
            warnings.push(self.provenance.problem(
                &KeyPath::root("routes"),
                "no enabled route: this relayer will deliver nothing".to_owned(),
                "add a [[routes]] table or set `enabled = true` on one".to_owned(),
            ));
        }
        let listen = self.http.listen;
        if listen.ip().is_unspecified() {
            warnings.push(self.provenance.problem(
                &KeyPath::root("http").field("listen"),
                format!(
                    "{listen} is an unspecified address: health, readiness and metrics are then \
                     reachable from every network the host is on"
                ),
                format!(
                    "bind to the interface Prometheus scrapes from, e.g. 127.0.0.1:{}",
                    listen.port()
                ),
            ));
        }
        if let Some(warning) = self.certificate_expiry_warning() {
            warnings.push(warning);
        }
        warnings
    }
}

struct Checker<'a> {
    config: &'a Config,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// Whether no problem was reported since there were `before`.
    fn clean_since(&self, before: usize) -> bool {
        self.problems.len() == before
    }

    fn report(&mut self, path: &KeyPath, message: impl Into<String>, fix: impl Into<String>) {
        let problem = self
            .config
            .provenance
            .problem(path, message.into(), fix.into());
        self.problems.push(problem);
    }

    fn ledger_names(&self) -> String {
        let names: BTreeSet<&str> = self
            .config
            .ledgers
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        if names.is_empty() {
            "(none defined)".to_owned()
        } else {
            names.into_iter().collect::<Vec<_>>().join(", ")
        }
    }

    fn url(&mut self, path: &KeyPath, original: &str, schemes: &[&str], what: &str) {
        // Node URLs may carry credentials in their user-info part: never echo those.
        let shown = if original.contains('@') {
            redact_url(original)
        } else {
            original.to_owned()
        };
        let raw = shown.as_str();
        let wanted = schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(", ");
        match url::Url::parse(original) {
            Ok(url) if !schemes.contains(&url.scheme()) => self.report(
                path,
                format!("{what} `{raw}` uses scheme `{}`", url.scheme()),
                format!("use a URL starting with one of: {wanted}"),
            ),
            Ok(url) if url.host().is_none() => self.report(
                path,
                format!("{what} `{raw}` has no host"),
                format!(
                    "write a full URL such as {}127.0.0.1:8545",
                    wanted.split(", ").next().unwrap_or_default()
                ),
            ),
            Ok(_) => {}
            Err(e) => self.report(
                path,
                format!("{what} `{raw}` is not a valid URL ({e})"),
                format!("write a full URL starting with one of: {wanted}"),
            ),
        }
    }

    fn address(&mut self, path: &KeyPath, raw: &str, what: &str) -> Option<EvmAddress> {
        match raw.parse::<EvmAddress>() {
            Ok(address) => Some(address),
            Err(e) => {
                self.report(
                    path,
                    format!("{what} `{raw}` {e}"),
                    "write 0x followed by 40 hex digits (20 bytes), checksummed or all one case",
                );
                None
            }
        }
    }

    /// `consortium.network`: 32 bytes, never all zero (an endpoint refuses that id).
    fn network(&mut self, raw: &str) -> Option<[u8; 32]> {
        let path = KeyPath::root("consortium").field("network");
        let parsed = hex::decode(raw.strip_prefix("0x").unwrap_or(raw))
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        match parsed {
            Some(id) if id != [0u8; 32] => Some(id),
            Some(_) => {
                self.report(
                    &path,
                    "network id is all zero",
                    "use the id the consortium's endpoints were deployed with: keccak256 of the network's name (docs/protocol.md, \"Networks\")",
                );
                None
            }
            None => {
                self.report(
                    &path,
                    format!("network id `{raw}` is not 32 bytes of hex"),
                    "write 0x followed by 64 hex digits: the id the consortium's endpoints were deployed with",
                );
                None
            }
        }
    }

    fn name(&mut self, path: &KeyPath, name: &str, what: &str) {
        if name.trim().is_empty() {
            self.report(
                path,
                format!("{what} is empty"),
                format!("give the {what} a non-empty value"),
            );
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.report(
                path,
                format!("{what} `{name}` contains whitespace"),
                "use letters, digits, `-` and `_` only",
            );
        }
    }

    fn database(&mut self) -> Option<DatabaseSettings> {
        let before = self.problems.len();
        let db = &self.config.database;
        let url_path = KeyPath::root("database").field("url");
        match url::Url::parse(db.url.expose()) {
            Ok(url) if !DB_SCHEMES.contains(&url.scheme()) => self.report(
                &url_path,
                format!("database URL `{}` is not a Postgres URL", db.url),
                "use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            ),
            Ok(_) => {}
            // The parse error may quote the URL; show only the redacted form.
            Err(_) => self.report(
                &url_path,
                format!("database URL `{}` is not a valid URL", db.url),
                "use postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password)",
            ),
        }
        if db.pool_size == 0 {
            self.report(
                &KeyPath::root("database").field("pool_size"),
                "pool_size is 0: the relayer could never reach the database",
                "set it to 1 or more (default 10)",
            );
        }
        self.clean_since(before).then(|| DatabaseSettings {
            url: db.url.clone(),
            pool_size: db.pool_size,
        })
    }

    /// One entry per ledger: its settings, or `None` when it has a problem.
    fn ledgers(&mut self) -> Vec<Option<LedgerSettings>> {
        let ledgers = &self.config.ledgers;
        if ledgers.is_empty() {
            self.report(
                &KeyPath::root("ledgers"),
                "no ledgers are defined",
                "add a [[ledgers]] table for each ledger this relayer connects",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut ids: HashMap<u32, usize> = HashMap::new();
        let mut settings = Vec::with_capacity(ledgers.len());
        for (i, ledger) in ledgers.iter().enumerate() {
            let at = KeyPath::root("ledgers").index(i);
            self.name(&at.field("name"), &ledger.name, "ledger name");
            if let Some(first) = names.insert(&ledger.name, i) {
                names.insert(&ledger.name, first);
                self.report(
                    &at.field("name"),
                    format!(
                        "ledger name `{}` is already used by ledgers[{first}]",
                        ledger.name
                    ),
                    "give every ledger a unique name",
                );
            }
            if let Some(first) = ids.insert(ledger.id, i) {
                ids.insert(ledger.id, first);
                self.report(
                    &at.field("id"),
                    format!(
                        "ledger id {} is already used by ledgers[{first}] (`{}`)",
                        ledger.id, ledgers[first].name
                    ),
                    "give every ledger a unique domain id; messages name ledgers by it",
                );
            }
            settings.push(self.ledger(&at, ledger));
        }
        settings
    }

    fn ledger(&mut self, at: &KeyPath, ledger: &LedgerConfig) -> Option<LedgerSettings> {
        let before = self.problems.len();
        if ledger.rpc.is_empty() {
            self.report(
                &at.field("rpc"),
                format!("ledger `{}` has no RPC URL", ledger.name),
                "list at least one endpoint, e.g. rpc = [\"http://127.0.0.1:8545\"]",
            );
        }
        let schemes = match ledger.kind {
            LedgerKind::Evm => EVM_RPC_SCHEMES,
            LedgerKind::Substrate => SUBSTRATE_RPC_SCHEMES,
        };
        for (j, url) in ledger.rpc.iter().enumerate() {
            self.url(&at.field("rpc").index(j), url, schemes, "RPC URL");
        }
        let allowed = Finality::allowed_for(ledger.kind);
        if !allowed.contains(&ledger.finality) {
            let list = allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let fix = match ledger.kind {
                LedgerKind::Evm => format!(
                    "use one of: {list} (a consortium chain's protocol, or finalized-tag for a development chain)"
                ),
                LedgerKind::Substrate => format!("use one of: {list}"),
            };
            self.report(
                &at.field("finality"),
                format!(
                    "finality `{}` does not apply to {} ledger `{}`",
                    ledger.finality, ledger.kind, ledger.name
                ),
                fix,
            );
        }
        if ledger.poll_interval_ms == 0 {
            self.report(
                &at.field("poll_interval_ms"),
                "poll_interval_ms is 0, which would poll the node in a busy loop",
                "set it to 100 or more (default 2000)",
            );
        }
        let payment_apps = self.payment_apps(at, ledger);
        let kind = match ledger.kind {
            LedgerKind::Evm => self.evm_ledger(at, ledger).map(LedgerKindSettings::Evm),
            LedgerKind::Substrate => self
                .substrate_ledger(at, ledger)
                .map(LedgerKindSettings::Substrate),
        }?;
        self.clean_since(before).then(|| LedgerSettings {
            name: ledger.name.clone(),
            id: ledger.id,
            rpc: ledger.rpc.clone(),
            poll_interval: Duration::from_millis(ledger.poll_interval_ms),
            submitter: ledger.submitter.clone(),
            payment_apps,
            kind,
        })
    }

    /// `payment_apps`: EVM contract addresses, or 32-byte Substrate account ids, each
    /// once.
    fn payment_apps(&mut self, at: &KeyPath, ledger: &LedgerConfig) -> Vec<[u8; 32]> {
        let mut apps: Vec<[u8; 32]> = Vec::new();
        for (j, raw) in ledger.payment_apps.iter().enumerate() {
            let path = at.field("payment_apps").index(j);
            let app = match ledger.kind {
                LedgerKind::Evm => self.address(&path, raw, "payment app").map(|a| {
                    let mut padded = [0u8; 32];
                    padded[12..].copy_from_slice(a.as_bytes());
                    padded
                }),
                LedgerKind::Substrate => {
                    let mut id = [0u8; 32];
                    match raw
                        .strip_prefix("0x")
                        .map(|d| hex::decode_to_slice(d, &mut id))
                    {
                        Some(Ok(())) => Some(id),
                        _ => {
                            self.report(
                                &path,
                                format!("payment app `{raw}` is not a 32-byte account id"),
                                "write 0x followed by 64 hex digits: the app's account id \
                                 (the clearing pallet's is its APP_ADDRESS)",
                            );
                            None
                        }
                    }
                }
            };
            match app {
                Some(app) if apps.contains(&app) => self.report(
                    &path,
                    format!("payment app `{raw}` is listed twice"),
                    "list each app once",
                ),
                Some(app) => apps.push(app),
                None => {}
            }
        }
        apps
    }

    fn evm_ledger(&mut self, at: &KeyPath, ledger: &LedgerConfig) -> Option<EvmSettings> {
        let chain_id = match ledger.chain_id {
            None => {
                self.report(
                    &at.field("chain_id"),
                    format!("evm ledger `{}` has no chain_id", ledger.name),
                    "add the chain id transactions are signed for, e.g. chain_id = 1337",
                );
                None
            }
            Some(0) => {
                self.report(
                    &at.field("chain_id"),
                    "chain_id 0 is not a valid EVM chain id",
                    "use the chain id the node reports (eth_chainId)",
                );
                None
            }
            Some(id) => Some(id),
        };
        let outbox = self.contract(at, ledger, "outbox", ledger.outbox.as_deref());
        let inbox = self.contract(at, ledger, "inbox", ledger.inbox.as_deref());
        if let (Some(outbox), Some(inbox)) = (outbox, inbox) {
            if outbox == inbox {
                self.report(
                    &at.field("inbox"),
                    format!("inbox and outbox of ledger `{}` are the same address {inbox}", ledger.name),
                    "the Outbox and Inbox are separate contracts: set each to its own deployed address",
                );
            }
        }
        for (field, present) in [
            ("pallet", ledger.pallet.is_some()),
            ("pallet_index", ledger.pallet_index.is_some()),
            ("justifications", ledger.justifications.is_some()),
            ("anchor", ledger.anchor.is_some()),
        ] {
            if present {
                self.report(
                    &at.field(field),
                    format!(
                        "`{field}` applies to substrate ledgers, but `{}` is evm",
                        ledger.name
                    ),
                    format!("remove `{field}` or set kind = \"substrate\""),
                );
            }
        }
        let submitter = at.field("submitter");
        if let Some(error) = self.key_source_problem(&submitter, &ledger.submitter) {
            self.key_error(&submitter, &ledger.submitter, error);
        } else if let Err(error) = ledger.submitter.open_secp256k1() {
            self.key_error(&submitter, &ledger.submitter, error);
        }
        let finality = self.evm_finality(at, ledger);
        Some(EvmSettings {
            chain_id: chain_id?,
            outbox: outbox?,
            inbox: inbox?,
            finality: finality?,
            confirmations: ledger.confirmations(),
        })
    }

    /// An EVM ledger's finality: `finalized-tag`, or a sealed protocol with its
    /// checkpoint, epoch and transitions. Says which mode needs what.
    fn evm_finality(&mut self, at: &KeyPath, ledger: &LedgerConfig) -> Option<EvmFinality> {
        let sealed_keys = [
            ("epoch", ledger.epoch.is_some()),
            ("checkpoint", ledger.checkpoint.is_some()),
            ("transitions", ledger.transitions.is_some()),
            ("validator_selection", ledger.validator_selection.is_some()),
        ];
        let base = match seal_protocol(ledger.finality) {
            Some(p) => p,
            None => {
                if ledger.finality == Finality::FinalizedTag {
                    for (field, present) in sealed_keys {
                        if present {
                            self.report(
                                &at.field(field),
                                format!(
                                    "`{field}` applies to sealed finality (qbft, ibft2, ibft, \
                                     clique), but ledger `{}` trusts the node's finalized tag",
                                    ledger.name
                                ),
                                format!(
                                    "remove `{field}`, or set finality to the chain's protocol"
                                ),
                            );
                        }
                    }
                    return Some(EvmFinality::FinalizedTag);
                }
                // Any other mode was refused (or found not to suit the kind) by `ledger`.
                return None;
            }
        };
        let before = self.problems.len();
        self.validator_selection(at, ledger);
        let schedule = self.schedule(at, ledger, base);
        if base == SealProtocol::Clique && ledger.confirmations.is_none() {
            self.report(
                &at.field("confirmations"),
                format!(
                    "clique ledger `{}` has no confirmations: Clique blocks are never final",
                    ledger.name
                ),
                "set confirmations = N, the blocks to wait before a block is used (a reorg \
                 deeper than that halts the observer)",
            );
        }
        let (checkpoint, validators) = self.checkpoint(at, ledger)?;
        if !self.clean_since(before) {
            return None;
        }
        Some(EvmFinality::Sealed(SealedFinality {
            checkpoint,
            validators,
            schedule,
        }))
    }

    /// `validator_selection`: only selection by votes in headers can be followed.
    fn validator_selection(&mut self, at: &KeyPath, ledger: &LedgerConfig) {
        match ledger.validator_selection.as_deref() {
            None | Some("header") => {}
            Some("contract") => self.report(
                &at.field("validator_selection"),
                format!(
                    "ledger `{}` selects validators with a contract, which headers do not show: \
                     the light client follows votes in headers and cannot prove a validator \
                     contract's state",
                    ledger.name
                ),
                "run the network with header-based validator selection (votes in block \
                 headers), or use another ledger",
            ),
            Some(other) => self.report(
                &at.field("validator_selection"),
                format!("validator_selection `{other}` is not known"),
                "use \"header\" (the default), the only selection the light client follows",
            ),
        }
    }

    /// An epoch length as written for `protocol` (Clique has no default).
    fn epoch(
        &mut self,
        path: &KeyPath,
        name: &str,
        protocol: SealProtocol,
        epoch: Option<u64>,
    ) -> Option<u64> {
        match (protocol, epoch) {
            (_, Some(0)) => {
                self.report(
                    path,
                    "epoch 0 is not an epoch length",
                    "write the genesis's epoch length (epochlength; Clique: epoch), e.g. 30000",
                );
                None
            }
            (SealProtocol::Clique, None) => {
                self.report(
                    path,
                    format!("clique ledger `{}` has no epoch", name),
                    "add the genesis's clique epoch, e.g. epoch = 30000 (votes reset and \
                     signers are listed at every epoch block)",
                );
                None
            }
            (_, Some(e)) => Some(e),
            (_, None) => Some(DEFAULT_BFT_EPOCH),
        }
    }

    /// The protocol schedule: `finality`/`epoch` from block 0, then each transition.
    fn schedule(
        &mut self,
        at: &KeyPath,
        ledger: &LedgerConfig,
        base: SealProtocol,
    ) -> Vec<ConsensusStep> {
        let base_epoch = self.epoch(&at.field("epoch"), &ledger.name, base, ledger.epoch);
        let mut schedule = vec![ConsensusStep {
            from_block: 0,
            protocol: base,
            epoch: base_epoch.unwrap_or(DEFAULT_BFT_EPOCH),
        }];
        for (i, t) in ledger.transitions.iter().flatten().enumerate() {
            let path = at.field("transitions").index(i);
            let Some(protocol) = seal_protocol(t.finality) else {
                self.report(
                    &path.field("finality"),
                    format!("a transition to `{}` cannot be followed", t.finality),
                    "a transition names a sealed protocol: qbft, ibft2, ibft or clique",
                );
                continue;
            };
            let previous = schedule.last().map_or(base, |s| s.protocol);
            if (protocol == SealProtocol::Clique) != (previous == SealProtocol::Clique) {
                self.report(
                    &path.field("finality"),
                    format!("a transition from {previous} to {protocol} is not supported"),
                    "transitions are between BFT protocols (ibft, ibft2, qbft)",
                );
            }
            let last = schedule.last().map_or(0, |s| s.from_block);
            if t.block <= last {
                self.report(
                    &path.field("block"),
                    format!(
                        "transition block {} is not after the previous protocol's first block {last}",
                        t.block
                    ),
                    "list transitions in ascending block order, each after block 0",
                );
            }
            let e = self.epoch(&path.field("epoch"), &ledger.name, protocol, t.epoch);
            schedule.push(ConsensusStep {
                from_block: t.block,
                protocol,
                epoch: e.unwrap_or(DEFAULT_BFT_EPOCH),
            });
        }
        schedule
    }

    /// The trusted checkpoint: number, hash, and the validators given with it.
    fn checkpoint(
        &mut self,
        at: &KeyPath,
        ledger: &LedgerConfig,
    ) -> Option<(TrustedBlock, Option<Vec<EvmAddress>>)> {
        match &ledger.checkpoint {
            None => {
                self.report(
                    &at.field("checkpoint"),
                    format!(
                        "finality `{}` follows the header chain from a trusted checkpoint, and \
                         ledger `{}` has none",
                        ledger.finality, ledger.name
                    ),
                    "add checkpoint = { number = N, hash = \"0x...\" } with a block whose hash \
                     you obtained out of band (your own node, the consortium's genesis file or \
                     operator)",
                );
                None
            }
            Some(c) => {
                let hash = self.hash32(&at.field("checkpoint").field("hash"), &c.hash);
                let validators = c.validators.as_ref().map(|list| {
                    let path = at.field("checkpoint").field("validators");
                    if list.is_empty() {
                        self.report(
                            &path,
                            "the checkpoint's validator list is empty",
                            "list the validators (Clique: signers) in force after the checkpoint, \
                             or remove the key where the header lists them",
                        );
                    }
                    let mut seen = BTreeSet::new();
                    let mut out = Vec::new();
                    for (j, raw) in list.iter().enumerate() {
                        if let Some(a) = self.address(&path.index(j), raw, "validator address") {
                            if !seen.insert(a) {
                                self.report(
                                    &path.index(j),
                                    format!("validator {a} is listed twice"),
                                    "list each validator once",
                                );
                            }
                            out.push(a);
                        }
                    }
                    out
                });
                hash.map(|hash| {
                    (
                        TrustedBlock {
                            number: c.number,
                            hash,
                        },
                        validators,
                    )
                })
            }
        }
    }

    /// A 32-byte hash written as 0x + 64 hex digits.
    fn hash32(&mut self, path: &KeyPath, raw: &str) -> Option<[u8; 32]> {
        let digits = raw.strip_prefix("0x").unwrap_or("");
        let mut out = [0u8; 32];
        match hex::decode_to_slice(digits, &mut out) {
            Ok(()) if raw.starts_with("0x") => Some(out),
            _ => {
                self.report(
                    path,
                    format!("`{raw}` is not a block hash"),
                    "write 0x followed by 64 hex digits (32 bytes), as the node reports the \
                     block's hash",
                );
                None
            }
        }
    }

    /// An EVM ledger's `outbox` or `inbox` address, required.
    fn contract(
        &mut self,
        at: &KeyPath,
        ledger: &LedgerConfig,
        field: &str,
        value: Option<&str>,
    ) -> Option<EvmAddress> {
        match value {
            None => {
                self.report(
                    &at.field(field),
                    format!("evm ledger `{}` has no {field} address", ledger.name),
                    format!("add {field} = \"0x...\" with the deployed {field} contract's address"),
                );
                None
            }
            Some(raw) => self.address(&at.field(field), raw, &format!("{field} address")),
        }
    }

    fn substrate_ledger(
        &mut self,
        at: &KeyPath,
        ledger: &LedgerConfig,
    ) -> Option<SubstrateSettings> {
        for (field, present) in [
            ("chain_id", ledger.chain_id.is_some()),
            ("outbox", ledger.outbox.is_some()),
            ("inbox", ledger.inbox.is_some()),
            ("confirmations", ledger.confirmations.is_some()),
            ("epoch", ledger.epoch.is_some()),
            ("checkpoint", ledger.checkpoint.is_some()),
            ("transitions", ledger.transitions.is_some()),
            ("validator_selection", ledger.validator_selection.is_some()),
        ] {
            if present {
                self.report(
                    &at.field(field),
                    format!(
                        "`{field}` applies to evm ledgers, but `{}` is substrate",
                        ledger.name
                    ),
                    format!("remove `{field}` or set kind = \"evm\""),
                );
            }
        }
        // The relayer finds the pallet by its metadata name and nothing else: a
        // different name or an index would be silently ignored, so both are refused.
        if let Some(pallet) = ledger.pallet.as_deref().filter(|p| *p != DEFAULT_PALLET) {
            self.report(
                &at.field("pallet"),
                format!(
                    "pallet `{pallet}` cannot be used: the relayer addresses the pallet by its \
                     metadata name `{DEFAULT_PALLET}`"
                ),
                format!(
                    "remove `pallet` (the runtime must include the pallet as `{DEFAULT_PALLET}`)"
                ),
            );
        }
        if let Some(index) = ledger.pallet_index {
            self.report(
                &at.field("pallet_index"),
                format!(
                    "pallet_index {index} is not used: the relayer addresses the pallet by its \
                     metadata name `{DEFAULT_PALLET}` and never checks an index"
                ),
                "remove `pallet_index`",
            );
        }
        let anchor = self.anchor(at, ledger);
        let submitter = at.field("submitter");
        if let Some(error) = self.key_source_problem(&submitter, &ledger.submitter) {
            self.key_error(&submitter, &ledger.submitter, error);
        } else if matches!(ledger.submitter, KeySource::Pkcs11(_)) {
            // A token holds a secp256k1 key: the submitter is an ECDSA account.
            if let Err(error) = ledger.submitter.open_secp256k1() {
                self.key_error(&submitter, &ledger.submitter, error);
            }
        } else if let Err(error) = ledger.submitter.load_substrate_secret() {
            self.key_error(&submitter, &ledger.submitter, error);
        }
        Some(SubstrateSettings { anchor: anchor? })
    }

    /// A Substrate ledger's `anchor`: a chain spec's `lightSyncState`, or block,
    /// number, set id and authorities given in the configuration.
    fn anchor(&mut self, at: &KeyPath, ledger: &LedgerConfig) -> Option<GrandpaAnchor> {
        let path = at.field("anchor");
        let Some(anchor) = &ledger.anchor else {
            self.report(
                &path,
                format!(
                    "substrate ledger `{}` has no trust anchor: the GRANDPA light client must \
                     start from a finalized block and the authority set in force after it",
                    ledger.name
                ),
                "add anchor = { chain_spec = \"<file>\" } naming the network's chain spec with \
                 its lightSyncState, or anchor = { block = \"0x...\", number = N, set_id = S, \
                 authorities = [\"0x...\", ...] } from a source you trust",
            );
            return None;
        };
        let inline = [
            ("block", anchor.block.is_some()),
            ("number", anchor.number.is_some()),
            ("set_id", anchor.set_id.is_some()),
            ("authorities", anchor.authorities.is_some()),
        ];
        match &anchor.chain_spec {
            Some(spec) => {
                for (field, present) in inline {
                    if present {
                        self.report(
                            &path.field(field),
                            "the anchor comes from `chain_spec`; a value given beside it would \
                             be ignored",
                            format!(
                                "remove `{field}`, or remove `chain_spec` and give all four values"
                            ),
                        );
                    }
                }
                let file = spec.relative();
                match read_light_sync_state(&file) {
                    Ok(anchor) => Some(anchor),
                    Err(reason) => {
                        self.report(
                            &path.field("chain_spec"),
                            format!("`{}`: {reason}", file.display()),
                            "name a chain spec JSON file with a lightSyncState \
                             (finalizedBlockHeader, grandpaAuthoritySet) from a source you \
                             trust (the network's release), or give the anchor's four values",
                        );
                        None
                    }
                }
            }
            None => {
                for (field, present) in inline {
                    if !present {
                        self.report(
                            &path.field(field),
                            format!("the anchor has no `{field}`"),
                            "give block, number, set_id and authorities together, or a \
                             chain_spec instead",
                        );
                    }
                }
                self.inline_anchor(&path, anchor)
            }
        }
    }

    /// An anchor given by its four values (each reported where it is wrong).
    fn inline_anchor(&mut self, path: &KeyPath, anchor: &AnchorConfig) -> Option<GrandpaAnchor> {
        let block = anchor
            .block
            .as_deref()
            .and_then(|raw| self.hash32(&path.field("block"), raw));
        let empty = Vec::new();
        let list = anchor.authorities.as_ref().unwrap_or(&empty);
        let keys = path.field("authorities");
        if list.is_empty() && anchor.authorities.is_some() {
            self.report(
                &keys,
                "the authority list is empty",
                "list the ed25519 public keys of the set in force after the block",
            );
        }
        let mut seen = BTreeSet::new();
        let mut authorities = Vec::new();
        for (j, raw) in list.iter().enumerate() {
            let mut key = [0u8; 32];
            let digits = raw.strip_prefix("0x").unwrap_or("");
            if hex::decode_to_slice(digits, &mut key).is_err() || !raw.starts_with("0x") {
                self.report(
                    &keys.index(j),
                    format!("`{raw}` is not an ed25519 public key"),
                    "write 0x followed by 64 hex digits (the authority's GRANDPA key)",
                );
                continue;
            }
            if !seen.insert(key) {
                self.report(
                    &keys.index(j),
                    format!("authority {raw} is listed twice"),
                    "list each authority once",
                );
            }
            authorities.push((key, 1));
        }
        if list.is_empty() || authorities.len() != list.len() {
            return None;
        }
        Some(GrandpaAnchor {
            block: block?,
            number: anchor.number?,
            set_id: anchor.set_id?,
            authorities,
            source: "configuration".to_owned(),
        })
    }

    /// Structural problems of a key source, found before reading it.
    fn key_source_problem(&self, _path: &KeyPath, source: &KeySource) -> Option<ConfigError> {
        match source {
            KeySource::Inline => Some(ConfigError::KeyInline),
            KeySource::Env(var) if var.is_empty() => Some(ConfigError::KeyFormat {
                source_desc: "the key source".to_owned(),
                reason: "names an empty environment variable".to_owned(),
            }),
            KeySource::Pkcs11(p) => {
                let empty = [("token", &p.token), ("key", &p.key)]
                    .into_iter()
                    .find(|(_, label)| label.trim().is_empty());
                if let Some((field, _)) = empty {
                    Some(ConfigError::KeyFormat {
                        source_desc: source.describe(),
                        reason: format!("has an empty `{field}` label"),
                    })
                } else if matches!(*p.pin, KeySource::Pkcs11(_) | KeySource::Inline) {
                    Some(ConfigError::KeyFormat {
                        source_desc: source.describe(),
                        reason: "takes its PIN from `pin = { env = \"VAR\" }` or `pin = { file = \"path\" }` only".to_owned(),
                    })
                } else {
                    self.key_source_problem(_path, &p.pin)
                }
            }
            _ => None,
        }
    }

    fn key_error(&mut self, path: &KeyPath, source: &KeySource, error: ConfigError) {
        let fix = match &error {
            ConfigError::KeyInline => format!(
                "never write a key into the configuration: use `{} = {{ env = \"VAR\" }}` or `{} = {{ file = \"path\" }}`",
                path_leaf(path),
                path_leaf(path)
            ),
            ConfigError::KeyEnvMissing { var } => {
                format!("export {var} with the key, or point the key source at a file")
            }
            ConfigError::KeyFile { path: file, .. } => format!(
                "create `{}` holding the key (readable by the relayer only), or fix the path; relative paths start at the configuration file's directory",
                file.display()
            ),
            ConfigError::KeyFormat { .. } if path_leaf(path) == "submitter" && self.is_substrate(path) => {
                "supply an sr25519 seed (0x + 64 hex digits) or a secret URI (mnemonic, or //Alice on a dev chain), \
                 or a secp256k1 key in a PKCS#11 token for an ECDSA account".to_owned()
            }
            ConfigError::KeyToken { .. } => {
                "check the module path, the token and key labels (`pkcs11-tool --list-objects` shows them) and the PIN; \
                 the key must be a secp256k1 EC key pair with the label on both halves".to_owned()
            }
            _ => format!("supply a secp256k1 secret key as 64 hex digits (0x optional) via {}", source.describe()),
        };
        let message = match &error {
            ConfigError::KeyFile { source, .. } => format!("{error}: {source}"),
            _ => error.to_string(),
        };
        self.report(path, message, fix);
    }

    fn is_substrate(&self, path: &KeyPath) -> bool {
        self.config.ledgers.iter().enumerate().any(|(i, l)| {
            l.kind == LedgerKind::Substrate
                && path.to_string().starts_with(&format!("ledgers[{i}]."))
        })
    }

    /// One entry per route: its settings, or `None` when it has a problem.
    fn routes(&mut self) -> Vec<Option<RouteSettings>> {
        let names = self.ledger_names();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut settings = Vec::with_capacity(self.config.routes.len());
        for (i, route) in self.config.routes.iter().enumerate() {
            let before = self.problems.len();
            let at = KeyPath::root("routes").index(i);
            let mut ids = Vec::with_capacity(2);
            for (field, name) in [
                ("source", &route.source),
                ("destination", &route.destination),
            ] {
                match self.config.ledger(name) {
                    Some(ledger) => ids.push(ledger.id),
                    None => self.report(
                        &at.field(field),
                        format!("route names ledger `{name}` which is not defined"),
                        format!("define it under [[ledgers]] or use one of: {names}"),
                    ),
                }
            }
            let endpoints_defined = ids.len() == 2;
            if endpoints_defined && route.source == route.destination {
                self.report(
                    &at.field("destination"),
                    format!("route goes from `{}` to itself", route.source),
                    "a route joins two different ledgers: change source or destination",
                );
            }
            if let Some(first) = seen.insert((&route.source, &route.destination), i) {
                seen.insert((&route.source, &route.destination), first);
                self.report(
                    &at,
                    format!(
                        "route `{}` -> `{}` is already defined by routes[{first}]",
                        route.source, route.destination
                    ),
                    "remove the duplicate; each source/destination pair appears once",
                );
            }
            if let Some(batch) = route.batch_size {
                if batch == 0 || batch > MAX_BATCH_SIZE {
                    self.report(
                        &at.field("batch_size"),
                        format!("batch_size {batch} is outside 1..={MAX_BATCH_SIZE}"),
                        format!(
                            "set it between 1 and {MAX_BATCH_SIZE}, or remove it for the default"
                        ),
                    );
                }
            }
            if let Some(lanes) = route.in_flight {
                if lanes == 0 || lanes > MAX_IN_FLIGHT {
                    self.report(
                        &at.field("in_flight"),
                        format!("in_flight {lanes} is outside 1..={MAX_IN_FLIGHT}"),
                        format!(
                            "set it between 1 and {MAX_IN_FLIGHT}, or remove it for the default"
                        ),
                    );
                }
            }
            if let Some(gas) = route.max_message_gas {
                let to_evm = self
                    .config
                    .ledger(&route.destination)
                    .map(|l| l.kind == LedgerKind::Evm);
                if to_evm == Some(false) {
                    self.report(
                        &at.field("max_message_gas"),
                        format!(
                            "max_message_gas is for EVM destinations, and `{}` is not one",
                            route.destination
                        ),
                        "remove it: a Substrate runtime charges each handler the weight it declares",
                    );
                } else if gas < MIN_MESSAGE_GAS {
                    self.report(
                        &at.field("max_message_gas"),
                        format!(
                            "max_message_gas {gas} is below {MIN_MESSAGE_GAS}, less than any delivery needs"
                        ),
                        "set the gas one message's delivery may take (e.g. 1000000), or remove it",
                    );
                }
            }
            let route_settings = match ids[..] {
                [source, destination] if self.clean_since(before) => Some(RouteSettings {
                    source,
                    destination,
                    source_name: route.source.clone(),
                    destination_name: route.destination.clone(),
                    batch_size: route.batch_size(),
                    in_flight: route.in_flight(),
                    max_message_gas: route.max_message_gas,
                    enabled: route.enabled,
                }),
                _ => None,
            };
            settings.push(route_settings);
        }
        settings
    }

    fn consortium(&mut self) -> Option<ConsortiumSettings> {
        let before = self.problems.len();
        let consortium = &self.config.consortium;
        let members_path = KeyPath::root("consortium").field("members");
        if consortium.members.is_empty() {
            self.report(
                &members_path,
                "the consortium has no members",
                "add a [[consortium.members]] table (name, signer, attestation_url) per member",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut signers: HashMap<EvmAddress, usize> = HashMap::new();
        let mut tls_names: HashMap<String, usize> = HashMap::new();
        let mut members = Vec::with_capacity(consortium.members.len());
        for (i, member) in consortium.members.iter().enumerate() {
            let at = members_path.index(i);
            self.name(&at.field("name"), &member.name, "member name");
            if let Some(first) = names.insert(&member.name, i) {
                names.insert(&member.name, first);
                self.report(
                    &at.field("name"),
                    format!(
                        "member name `{}` is already used by consortium.members[{first}]",
                        member.name
                    ),
                    "give every member a unique name",
                );
            }
            let signer = self.address(&at.field("signer"), &member.signer, "signer address");
            if let Some(signer) = signer {
                if let Some(first) = signers.insert(signer, i) {
                    signers.insert(signer, first);
                    self.report(
                        &at.field("signer"),
                        format!(
                            "signer {signer} is already the signer of `{}`",
                            consortium.members[first].name
                        ),
                        "each member signs with its own key: give every member a distinct signer address",
                    );
                }
            }
            self.url(
                &at.field("attestation_url"),
                &member.attestation_url,
                ATTESTATION_SCHEMES,
                "attestation URL",
            );
            let tls_name = member
                .tls_name
                .clone()
                .unwrap_or_else(|| member.name.clone());
            if !crate::tls::is_tls_name(&tls_name) {
                self.report(
                    &at.field(if member.tls_name.is_some() { "tls_name" } else { "name" }),
                    format!("`{tls_name}` is not a DNS name, so no certificate can carry it as the member's TLS name"),
                    "set tls_name to the DNS name in the member's certificate (letters, digits, `-` and `.`)",
                );
            }
            let first = tls_names.insert(tls_name.clone(), i);
            // Two members of one name are reported as such above.
            if let Some(first) = first.filter(|f| consortium.members[*f].name != member.name) {
                self.report(
                    &at.field("tls_name"),
                    format!(
                        "TLS name `{tls_name}` is also the TLS name of `{}`",
                        consortium.members[first].name
                    ),
                    "each member is identified by its own certificate name: make them distinct",
                );
            }
            members.push(signer.map(|signer| ConsortiumMemberSettings {
                name: member.name.clone(),
                signer,
                attestation_url: member.attestation_url.clone(),
                tls_name,
            }));
        }
        let network = self.network(&consortium.network);
        if let Some(takeover) = consortium.takeover_s {
            if takeover == 0 || takeover > MAX_TAKEOVER_S {
                self.report(
                    &KeyPath::root("consortium").field("takeover_s"),
                    format!("takeover_s {takeover} is outside 1..={MAX_TAKEOVER_S}"),
                    "set it above the time a member needs to deliver a message on the slowest \
                     destination (default 20), at most 3600",
                );
            }
        }
        let count = consortium.members.len();
        if consortium.threshold == 0 || consortium.threshold as usize > count {
            self.report(
                &KeyPath::root("consortium").field("threshold"),
                format!(
                    "threshold {} is outside 1..={count} (the number of members)",
                    consortium.threshold
                ),
                if count == 0 {
                    "add members, then set threshold between 1 and their number".to_owned()
                } else {
                    format!(
                        "set threshold between 1 and {count}; a majority is {}",
                        count / 2 + 1
                    )
                },
            );
        }
        if !self.clean_since(before) {
            return None;
        }
        Some(ConsortiumSettings {
            network: network?,
            members: members.into_iter().collect::<Option<_>>()?,
            threshold: consortium.threshold,
            takeover: consortium.takeover(),
        })
    }

    fn member(&mut self) -> Option<MemberSettings> {
        let before = self.problems.len();
        let member = &self.config.member;
        let name_path = KeyPath::root("member").field("name");
        self.name(&name_path, &member.name, "member name");
        let entry = self
            .config
            .consortium
            .members
            .iter()
            .find(|m| m.name == member.name);
        if entry.is_none() && !member.name.trim().is_empty() {
            let known: BTreeSet<&str> = self
                .config
                .consortium
                .members
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            self.report(
                &name_path,
                format!(
                    "this relayer's member `{}` is not in [consortium].members",
                    member.name
                ),
                if known.is_empty() {
                    "add it as a [[consortium.members]] entry".to_owned()
                } else {
                    format!(
                        "add it as a [[consortium.members]] entry or use one of: {}",
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    )
                },
            );
        }
        let key_path = KeyPath::root("member").field("key");
        if let Some(error) = self.key_source_problem(&key_path, &member.key) {
            self.key_error(&key_path, &member.key, error);
            return None;
        }
        match member.key.open_secp256k1() {
            Err(error) => {
                self.key_error(&key_path, &member.key, error);
                None
            }
            Ok(key) => {
                // Without its consortium entry (reported above) or a valid signer there
                // (reported by `consortium`) there is nothing to compare the key with.
                let signer = entry?.signer.parse::<EvmAddress>().ok()?;
                let actual = EvmAddress::from_bytes(key.address());
                if actual != signer {
                    self.report(
                        &key_path,
                        format!(
                            "the key from {} signs as {actual}, but member `{}` is listed with signer {signer}",
                            member.key.describe(),
                            member.name
                        ),
                        format!(
                            "supply `{}`'s attestation key, or set its signer in [consortium].members to {actual}",
                            member.name
                        ),
                    );
                }
                self.clean_since(before).then(|| MemberSettings {
                    name: member.name.clone(),
                    key: member.key.clone(),
                    signer,
                })
            }
        }
    }

    /// `[screening]`: `Some(None)` when it is not set, `None` when it is wrong.
    fn screening(&mut self) -> Option<Option<ScreeningSettings>> {
        let Some(s) = &self.config.screening else {
            return Some(None);
        };
        let before = self.problems.len();
        let root = KeyPath::root("screening");
        self.url(
            &root.field("url"),
            &s.url,
            &["http", "https"],
            "screening service URL",
        );
        let ms = s
            .timeout_ms
            .unwrap_or(crate::model::DEFAULT_SCREENING_TIMEOUT_MS);
        if ms == 0 || ms > crate::model::MAX_SCREENING_TIMEOUT_MS {
            self.report(
                &root.field("timeout_ms"),
                format!(
                    "timeout_ms = {ms} is outside 1..={}",
                    crate::model::MAX_SCREENING_TIMEOUT_MS
                ),
                format!(
                    "set the milliseconds a screening answer may take, e.g. {} (no answer in \
                     time holds the payment)",
                    crate::model::DEFAULT_SCREENING_TIMEOUT_MS
                ),
            );
        }
        self.clean_since(before).then(|| {
            Some(ScreeningSettings {
                url: s.url.clone(),
                timeout: Duration::from_millis(ms),
            })
        })
    }

    fn log(&mut self) -> Option<LogSettings> {
        let level = &self.config.log.level;
        let path = KeyPath::root("log").field("level");
        let bad = level.split(',').map(str::trim).find(|directive| {
            let level = directive.rsplit_once('=').map_or(*directive, |(_, l)| l);
            !LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str())
        });
        if let Some(bad) = bad {
            self.report(
                &path,
                format!("log level directive `{bad}` is not understood"),
                format!(
                    "use a level ({}) or `target=level` pairs separated by commas, e.g. `info,isthmus=debug`",
                    LOG_LEVELS.join(", ")
                ),
            );
            return None;
        }
        Some(LogSettings {
            format: self.config.log.format,
            level: level.clone(),
        })
    }
}

fn path_leaf(path: &KeyPath) -> String {
    let full = path.to_string();
    full.rsplit('.').next().unwrap_or_default().to_owned()
}

/// The sealed protocol a `finality` value names, if it names one.
fn seal_protocol(finality: Finality) -> Option<SealProtocol> {
    match finality {
        Finality::Qbft => Some(SealProtocol::Qbft),
        Finality::Ibft2 => Some(SealProtocol::Ibft2),
        Finality::Ibft => Some(SealProtocol::Ibft),
        Finality::Clique => Some(SealProtocol::Clique),
        Finality::FinalizedTag | Finality::Grandpa => None,
    }
}

/// The anchor in a chain spec's `lightSyncState` (or a file that is that object):
/// the finalized header and the persisted GRANDPA authority set, SCALE hex. One
/// with changes still pending is refused (the tracker cannot resume it).
fn read_light_sync_state(file: &std::path::Path) -> Result<GrandpaAnchor, String> {
    use isthmus_light_client_grandpa::{AuthoritySetTracker, Header, LightSyncAuthoritySet};
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read it: {e}"))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let state = doc.get("lightSyncState").unwrap_or(&doc);
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let raw = state
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("no lightSyncState.{name}"))?;
        hex::decode(raw.trim_start_matches("0x"))
            .map_err(|e| format!("lightSyncState.{name} is not hex: {e}"))
    };
    let (header, set) = (
        field("finalizedBlockHeader")?,
        field("grandpaAuthoritySet")?,
    );
    AuthoritySetTracker::from_light_sync_state(&header, &set)
        .map_err(|e| format!("lightSyncState does not give an anchor: {e}"))?;
    let header = Header::decode_exact(&header).map_err(|e| e.to_string())?;
    let set = LightSyncAuthoritySet::decode_exact(&set).map_err(|e| e.to_string())?;
    Ok(GrandpaAnchor {
        block: header.hash().0,
        number: header.number,
        set_id: set.set_id,
        authorities: set
            .current_authorities
            .iter()
            .map(|(id, weight)| (id.0, *weight))
            .collect(),
        source: format!("chain spec {}", file.display()),
    })
}
