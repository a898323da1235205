//! Whole-configuration validation: every problem, each with its key, place and fix.

use std::collections::{BTreeSet, HashMap};

use crate::address::EvmAddress;
use crate::error::ConfigError;
use crate::key::KeySource;
use crate::model::{
    Config, Finality, LedgerConfig, LedgerKind, MAX_BATCH_SIZE, MAX_IN_FLIGHT, MAX_TAKEOVER_S,
};
use crate::problem::{KeyPath, Problem};
use crate::secret::redact_url;

/// URL schemes accepted for ledger RPC endpoints.
const RPC_SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
/// URL schemes accepted for peers' attestation endpoints.
const HTTP_SCHEMES: &[&str] = &["http", "https"];
/// URL schemes accepted for the database.
const DB_SCHEMES: &[&str] = &["postgres", "postgresql"];
/// Levels accepted in `log.level` directives.
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

impl Config {
    /// Checks the configuration's meaning and returns every problem found, not just
    /// the first: an operator fixing a file should need one run, not one per mistake.
    ///
    /// Key sources are checked for real: environment variables must be set and files
    /// readable, holding a key of the right form. Key material never appears in a
    /// problem.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut check = Checker {
            config: self,
            problems: Vec::new(),
        };
        check.database();
        check.ledgers();
        check.routes();
        check.consortium();
        check.member();
        check.log();
        if check.problems.is_empty() {
            Ok(())
        } else {
            Err(check.problems)
        }
    }

    /// Legal but risky settings, worth a look and never fatal: a threshold that a
    /// minority of members can meet, or no enabled route.
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
        warnings
    }
}

struct Checker<'a> {
    config: &'a Config,
    problems: Vec<Problem>,
}

impl Checker<'_> {
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

    fn database(&mut self) {
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
    }

    fn ledgers(&mut self) {
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
            self.ledger(&at, ledger);
        }
    }

    fn ledger(&mut self, at: &KeyPath, ledger: &LedgerConfig) {
        if ledger.rpc.is_empty() {
            self.report(
                &at.field("rpc"),
                format!("ledger `{}` has no RPC URL", ledger.name),
                "list at least one endpoint, e.g. rpc = [\"http://127.0.0.1:8545\"]",
            );
        }
        for (j, url) in ledger.rpc.iter().enumerate() {
            self.url(&at.field("rpc").index(j), url, RPC_SCHEMES, "RPC URL");
        }
        let allowed = Finality::allowed_for(ledger.kind);
        if !allowed.contains(&ledger.finality) {
            let list = allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            self.report(
                &at.field("finality"),
                format!(
                    "finality `{}` does not apply to {} ledger `{}`",
                    ledger.finality, ledger.kind, ledger.name
                ),
                format!("use one of: {list}"),
            );
        }
        if ledger.poll_interval_ms == 0 {
            self.report(
                &at.field("poll_interval_ms"),
                "poll_interval_ms is 0, which would poll the node in a busy loop",
                "set it to 100 or more (default 2000)",
            );
        }
        match ledger.kind {
            LedgerKind::Evm => self.evm_ledger(at, ledger),
            LedgerKind::Substrate => self.substrate_ledger(at, ledger),
        }
    }

    fn evm_ledger(&mut self, at: &KeyPath, ledger: &LedgerConfig) {
        match ledger.chain_id {
            None => self.report(
                &at.field("chain_id"),
                format!("evm ledger `{}` has no chain_id", ledger.name),
                "add the chain id transactions are signed for, e.g. chain_id = 1337",
            ),
            Some(0) => self.report(
                &at.field("chain_id"),
                "chain_id 0 is not a valid EVM chain id",
                "use the chain id the node reports (eth_chainId)",
            ),
            Some(_) => {}
        }
        let mut contracts = Vec::new();
        for field in ["outbox", "inbox"] {
            let value = if field == "outbox" {
                &ledger.outbox
            } else {
                &ledger.inbox
            };
            match value {
                None => self.report(
                    &at.field(field),
                    format!("evm ledger `{}` has no {field} address", ledger.name),
                    format!("add {field} = \"0x...\" with the deployed {field} contract's address"),
                ),
                Some(raw) => {
                    let address = self.address(&at.field(field), raw, &format!("{field} address"));
                    contracts.extend(address);
                }
            }
        }
        if let [outbox, inbox] = contracts[..] {
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
        } else if let Err(error) = ledger.submitter.load_secp256k1() {
            self.key_error(&submitter, &ledger.submitter, error);
        }
    }

    fn substrate_ledger(&mut self, at: &KeyPath, ledger: &LedgerConfig) {
        for (field, present) in [
            ("chain_id", ledger.chain_id.is_some()),
            ("outbox", ledger.outbox.is_some()),
            ("inbox", ledger.inbox.is_some()),
            ("confirmations", ledger.confirmations.is_some()),
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
        if let Some(pallet) = &ledger.pallet {
            if pallet.is_empty()
                || !pallet
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                self.report(
                    &at.field("pallet"),
                    format!("pallet name `{pallet}` is not a runtime pallet identifier"),
                    "use the pallet's name as in construct_runtime!, e.g. `Isthmus`",
                );
            }
        }
        let submitter = at.field("submitter");
        if let Some(error) = self.key_source_problem(&submitter, &ledger.submitter) {
            self.key_error(&submitter, &ledger.submitter, error);
        } else if let Err(error) = ledger.submitter.load_substrate_secret() {
            self.key_error(&submitter, &ledger.submitter, error);
        }
    }

    /// Structural problems of a key source, found before reading it.
    fn key_source_problem(&self, _path: &KeyPath, source: &KeySource) -> Option<ConfigError> {
        match source {
            KeySource::Inline => Some(ConfigError::KeyInline),
            KeySource::Env(var) if var.is_empty() => Some(ConfigError::KeyFormat {
                source_desc: "the key source".to_owned(),
                reason: "names an empty environment variable".to_owned(),
            }),
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
                "supply an sr25519 seed (0x + 64 hex digits) or a secret URI (mnemonic, or //Alice on a dev chain)".to_owned()
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

    fn routes(&mut self) {
        let names = self.ledger_names();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, route) in self.config.routes.iter().enumerate() {
            let at = KeyPath::root("routes").index(i);
            let mut endpoints_defined = true;
            for (field, name) in [
                ("source", &route.source),
                ("destination", &route.destination),
            ] {
                if self.config.ledger(name).is_none() {
                    endpoints_defined = false;
                    self.report(
                        &at.field(field),
                        format!("route names ledger `{name}` which is not defined"),
                        format!("define it under [[ledgers]] or use one of: {names}"),
                    );
                }
            }
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
        }
    }

    fn consortium(&mut self) {
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
            if let Some(signer) =
                self.address(&at.field("signer"), &member.signer, "signer address")
            {
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
                HTTP_SCHEMES,
                "attestation URL",
            );
        }
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
    }

    fn member(&mut self) {
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
            return;
        }
        match member.key.load_secp256k1() {
            Err(error) => self.key_error(&key_path, &member.key, error),
            Ok(key) => {
                let Some(entry) = entry else { return };
                let Ok(signer) = entry.signer.parse::<EvmAddress>() else {
                    return;
                };
                let actual = key.address();
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
            }
        }
    }

    fn log(&mut self) {
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
        }
    }
}

fn path_leaf(path: &KeyPath) -> String {
    let full = path.to_string();
    full.rsplit('.').next().unwrap_or_default().to_owned()
}
