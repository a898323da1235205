//! The typed configuration sections.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

use figment::value::magic::RelativePathBuf;
use serde::Deserialize;

use crate::key::KeySource;
use crate::problem::Provenance;
use crate::secret::DatabaseUrl;

/// The whole relayer configuration.
///
/// Obtain it with [`Config::load`](crate::Config::load) or
/// [`Config::from_figment`](crate::Config::from_figment), then call
/// [`Config::validate`](crate::Config::validate): parsing checks shape and types,
/// validation checks meaning (references, uniqueness, formats, key sources, supported
/// modes) and yields the typed [`Settings`](crate::Settings) to run with. `Debug`
/// never shows a secret.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Postgres database holding progress and history.
    pub database: DatabaseConfig,
    /// Which consortium member this relayer is, and its attestation key.
    pub member: MemberConfig,
    /// The ledgers this relayer observes or delivers to.
    #[serde(default)]
    pub ledgers: Vec<LedgerConfig>,
    /// The directed routes messages travel along.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The consortium whose signatures a destination accepts.
    pub consortium: ConsortiumConfig,
    /// The plain HTTP server: health, readiness, metrics.
    #[serde(default)]
    pub http: HttpConfig,
    /// The attestation endpoint the other members call, served with mutual TLS.
    /// Required; optional here so that its absence is reported with a fix.
    #[serde(default)]
    pub attestation: Option<AttestationConfig>,
    /// The payment screening service this member asks before it approves the release
    /// of a held payment (optional).
    #[serde(default)]
    pub screening: Option<ScreeningConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    #[serde(skip)]
    pub(crate) provenance: Provenance,
}

/// `[database]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL, e.g. `postgres://isthmus:PASSWORD@db:5432/isthmus`. Its password
    /// is never printed.
    pub url: DatabaseUrl,
    /// Maximum number of pooled connections.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
}

/// Default for `database.pool_size`: what the delivery benchmark was measured with
/// (up to 8 lanes, a watcher and an observer per ledger, the HTTP endpoint).
pub const DEFAULT_POOL_SIZE: u32 = 16;

fn default_pool_size() -> u32 {
    DEFAULT_POOL_SIZE
}

/// `[member]`: this relayer's identity in the consortium.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The member's name; must appear in `[consortium].members`.
    pub name: String,
    /// The secp256k1 key this member attests checkpoints with. Its address must be the
    /// member's `signer` in `[consortium].members`.
    pub key: KeySource,
}

/// The family of a ledger, which decides how it is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// An EVM chain (Besu, Quorum, Ethereum, anvil).
    Evm,
    /// A Substrate chain carrying the Isthmus pallet.
    Substrate,
}

impl fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LedgerKind::Evm => "evm",
            LedgerKind::Substrate => "substrate",
        })
    }
}

/// How the relayer decides that a source block is final, as written. EVM ledgers
/// take `qbft`, `ibft2`, `ibft` and `clique` (seals verified by the light client
/// from a trusted `checkpoint`) or `finalized-tag` (development chains); Substrate
/// ledgers take `grandpa` (see [`EvmFinality`](crate::EvmFinality)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Finality {
    /// QBFT seals (Besu, Quorum): final once sealed by a quorum of validators.
    Qbft,
    /// IBFT 2.0 seals (Besu).
    Ibft2,
    /// IBFT 1.0 seals (GoQuorum's "istanbul").
    Ibft,
    /// Clique proof-of-authority signatures.
    Clique,
    /// Trusts the node's `finalized` block tag. For dev chains: every record made under
    /// this mode says so.
    FinalizedTag,
    /// GRANDPA justifications (Substrate).
    Grandpa,
}

impl Finality {
    /// The finality modes a ledger kind supports.
    pub fn allowed_for(kind: LedgerKind) -> &'static [Finality] {
        match kind {
            LedgerKind::Evm => &[
                Finality::Qbft,
                Finality::Ibft2,
                Finality::Ibft,
                Finality::Clique,
                Finality::FinalizedTag,
            ],
            LedgerKind::Substrate => &[Finality::Grandpa],
        }
    }
}

impl fmt::Display for Finality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Finality::Qbft => "qbft",
            Finality::Ibft2 => "ibft2",
            Finality::Ibft => "ibft",
            Finality::Clique => "clique",
            Finality::FinalizedTag => "finalized-tag",
            Finality::Grandpa => "grandpa",
        })
    }
}

/// One `[[ledgers]]` entry.
///
/// Fields for both kinds sit in one table; validation rejects a field that does not
/// belong to the ledger's `kind` and requires the ones that do.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Unique name that routes refer to.
    pub name: String,
    /// Unique protocol domain id (the `origin`/`destination` in messages).
    pub id: u32,
    /// `evm` or `substrate`.
    pub kind: LedgerKind,
    /// RPC endpoints (`http(s)://` or `ws(s)://`), tried in order.
    pub rpc: Vec<String>,
    /// How finality is decided; must suit `kind`.
    pub finality: Finality,
    /// The key that pays for and signs delivery transactions on this ledger:
    /// secp256k1 hex for EVM, an sr25519 seed or secret URI for Substrate.
    pub submitter: KeySource,
    /// How often to poll for new final blocks, in milliseconds.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Apps on this ledger that send escrowed payments (the clearing app): EVM
    /// contract addresses, or 32-byte account ids on a Substrate ledger. Their payments
    /// still waiting for their receipt are exported as the escrow outstanding per route.
    #[serde(default)]
    pub payment_apps: Vec<String>,
    /// EVM only: the chain id transactions are signed for.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// EVM only: the Outbox contract address.
    #[serde(default)]
    pub outbox: Option<String>,
    /// EVM only: the Inbox contract address.
    #[serde(default)]
    pub inbox: Option<String>,
    /// EVM only: extra blocks to wait after finality (default 0); carried into
    /// [`EvmSettings::confirmations`](crate::EvmSettings::confirmations).
    #[serde(default)]
    pub confirmations: Option<u64>,
    /// EVM sealed finality: the epoch length (`epochlength` of a BFT genesis,
    /// default 30000; Clique's `epoch`, required).
    #[serde(default)]
    pub epoch: Option<u64>,
    /// EVM sealed finality: the block the light client starts from, trusted.
    #[serde(default)]
    pub checkpoint: Option<CheckpointConfig>,
    /// EVM sealed finality: later blocks from which another protocol applies (a
    /// network that migrated, e.g. IBFT 1.0 to QBFT).
    #[serde(default)]
    pub transitions: Option<Vec<TransitionConfig>>,
    /// EVM sealed finality: how validators are selected, `header` (votes in block
    /// headers, the default). `contract` (Besu's validator contract) is refused.
    #[serde(default)]
    pub validator_selection: Option<String>,
    /// Substrate only: the Isthmus pallet's name in the runtime. The relayer always
    /// addresses the pallet by its metadata name `Isthmus`: validation refuses any other
    /// value (the key is kept so that the refusal names the reason, not "unknown key").
    #[serde(default)]
    pub pallet: Option<String>,
    /// Substrate only: the pallet's index in the runtime. Nothing checks an index (the
    /// pallet is found by name), so validation refuses the key with that reason.
    #[serde(default)]
    pub pallet_index: Option<u8>,
    /// Substrate only: where GRANDPA justifications come from: `rpc` (the node's
    /// `grandpa_proveFinality`), the only source and the default.
    #[serde(default)]
    pub justifications: Option<Justifications>,
    /// Substrate only: the trust anchor the GRANDPA light client starts from.
    #[serde(default)]
    pub anchor: Option<AnchorConfig>,
}

/// Where a Substrate ledger's GRANDPA justifications come from, as written. They are
/// verified by the GRANDPA light client against the authority set it tracks from the
/// ledger's anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Justifications {
    /// The node's GRANDPA RPC (`grandpa_proveFinality`), as a light client takes it.
    Rpc,
}

/// A Substrate ledger's trust anchor, as written: a finalized block and the GRANDPA
/// authority set (with its id) that finalizes its descendants. Either a chain spec's
/// `lightSyncState` (`chain_spec`), or the four values given here.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// A chain spec (JSON) with a `lightSyncState` (`finalizedBlockHeader`,
    /// `grandpaAuthoritySet`), as Polkadot, Kusama, Westend and Paseo publish; a
    /// relative path starts at the configuration file's directory.
    #[serde(default)]
    pub chain_spec: Option<RelativePathBuf>,
    /// The anchor block's hash (0x + 64 hex digits).
    #[serde(default)]
    pub block: Option<String>,
    /// The anchor block's number.
    #[serde(default)]
    pub number: Option<u32>,
    /// The id of the authority set in force after the anchor block.
    #[serde(default)]
    pub set_id: Option<u64>,
    /// That set's authorities: ed25519 public keys (0x + 64 hex digits), weight 1
    /// each.
    #[serde(default)]
    pub authorities: Option<Vec<String>>,
}

/// Default for `ledgers[].poll_interval_ms`.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 2_000;
/// The metadata name the relayer finds the Isthmus pallet by; the only accepted
/// `ledgers[].pallet`.
pub const DEFAULT_PALLET: &str = "Isthmus";

fn default_poll_interval_ms() -> u64 {
    DEFAULT_POLL_INTERVAL_MS
}

impl LedgerConfig {
    /// The pallet name as written, defaulted to [`DEFAULT_PALLET`].
    pub fn pallet_name(&self) -> &str {
        self.pallet.as_deref().unwrap_or(DEFAULT_PALLET)
    }

    /// Where GRANDPA justifications come from as written, `Rpc` when absent.
    pub fn justifications(&self) -> Justifications {
        self.justifications.unwrap_or(Justifications::Rpc)
    }

    /// Extra confirmations after finality, defaulted.
    pub fn confirmations(&self) -> u64 {
        self.confirmations.unwrap_or(0)
    }
}

/// One `[[routes]]` entry: messages from `source`'s outbox to `destination`'s inbox.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name of the source ledger.
    pub source: String,
    /// Name of the destination ledger.
    pub destination: String,
    /// Messages per delivery transaction (default [`DEFAULT_BATCH_SIZE`]).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Delivery batches this relayer keeps in flight at once towards the route's
    /// destination, each waiting for its own finality (default [`DEFAULT_IN_FLIGHT`]).
    #[serde(default)]
    pub in_flight: Option<u32>,
    /// The most gas the delivery of one message may need on an EVM destination,
    /// measured by simulating `Inbox.process` of that message alone (base cost and
    /// quorum check included). A message above it is dead-lettered with the reason
    /// before any submission. Unset: only the block's gas limit bounds it.
    #[serde(default)]
    pub max_message_gas: Option<u64>,
    /// Whether the route runs (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

/// Default for `routes[].batch_size`.
pub const DEFAULT_BATCH_SIZE: u32 = 16;
/// Largest accepted `routes[].batch_size`.
pub const MAX_BATCH_SIZE: u32 = 1_000;
/// Default for `routes[].in_flight`.
pub const DEFAULT_IN_FLIGHT: u32 = 4;
/// Largest accepted `routes[].in_flight`.
pub const MAX_IN_FLIGHT: u32 = 32;
/// Smallest accepted `routes[].max_message_gas`: a transaction's base cost.
pub const MIN_MESSAGE_GAS: u64 = 21_000;

fn default_true() -> bool {
    true
}

impl RouteConfig {
    /// The batch size, defaulted.
    pub fn batch_size(&self) -> u32 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// The number of batches in flight, defaulted.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.unwrap_or(DEFAULT_IN_FLIGHT)
    }
}

/// `[consortium]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsortiumConfig {
    /// The network's id (`0x` and 64 hex digits), the same in every member's file and
    /// every endpoint of the deployment: checkpoint digests bind it.
    pub network: String,
    /// Every member, this relayer's included.
    pub members: Vec<ConsortiumMember>,
    /// How many members' attestations a destination needs.
    pub threshold: u32,
    /// Seconds after observing a message before a member delivers it although it is
    /// another member's turn (default [`DEFAULT_TAKEOVER_S`]).
    #[serde(default)]
    pub takeover_s: Option<u64>,
}

/// Default for `consortium.takeover_s`.
pub const DEFAULT_TAKEOVER_S: u64 = 20;
/// Largest accepted `consortium.takeover_s` (one hour).
pub const MAX_TAKEOVER_S: u64 = 3_600;

impl ConsortiumConfig {
    /// How long another member's turn is waited for, defaulted.
    pub fn takeover(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.takeover_s.unwrap_or(DEFAULT_TAKEOVER_S))
    }
}

/// One `[[consortium.members]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsortiumMember {
    /// Unique member name.
    pub name: String,
    /// The address its attestations recover to (`0x` + 20 bytes hex).
    pub signer: String,
    /// Base URL (`https://`) of the member's attestation endpoint.
    pub attestation_url: String,
    /// The DNS name the member's TLS certificate carries and identifies it by
    /// (default: the member name).
    #[serde(default)]
    pub tls_name: Option<String>,
}

/// `[attestation]`: this member's attestation endpoint, served with mutual TLS, and
/// the identity it presents to the other members' endpoints.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationConfig {
    /// Socket address the endpoint listens on.
    pub listen: SocketAddr,
    /// PEM file: this member's certificate (then its intermediates), issued by the
    /// consortium CA for its TLS name, usable as server and client certificate.
    pub certificate: RelativePathBuf,
    /// The certificate's PEM private key: `{ file = "path" }` or `{ env = "VAR" }`.
    pub key: KeySource,
    /// PEM file: the consortium CA certificate(s); peers must present a certificate
    /// issued by it.
    pub ca: RelativePathBuf,
    /// Requests per second each member may make (default [`DEFAULT_ATTEST_RATE`]).
    #[serde(default)]
    pub rate_per_s: Option<u32>,
    /// Requests a member may make at once above its rate (default
    /// [`DEFAULT_ATTEST_BURST`]).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// Default for `attestation.rate_per_s`: well above what a peer asks during a burst of
/// deliveries (one request per checkpoint and route).
pub const DEFAULT_ATTEST_RATE: u32 = 50;
/// Default for `attestation.burst`.
pub const DEFAULT_ATTEST_BURST: u32 = 200;

/// `[screening]`: an HTTP service (a bank's sanctions or AML screening) this member
/// asks about a held payment before it signs its release (docs/operations.md,
/// "Screening").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreeningConfig {
    /// `http://` or `https://` URL the payment's business fields are POSTed to.
    pub url: String,
    /// Milliseconds to wait for the answer (default [`DEFAULT_SCREENING_TIMEOUT_MS`]);
    /// no answer in time means hold.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Default for `screening.timeout_ms`.
pub const DEFAULT_SCREENING_TIMEOUT_MS: u64 = 2_000;
/// Longest `screening.timeout_ms`.
pub const MAX_SCREENING_TIMEOUT_MS: u64 = 60_000;

/// `[http]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Socket address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

/// Default for `http.listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7100));

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Multi-field text for people at a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}`; use `human` or `json`"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`. Unset: human when stderr is a terminal, JSON otherwise.
    #[serde(default)]
    pub format: Option<LogFormat>,
    /// Level filter in `RUST_LOG` syntax (`info`, `isthmus=debug,warn`). `RUST_LOG`,
    /// when set, wins.
    #[serde(default = "default_level")]
    pub level: String,
}

/// Default for `log.level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";

fn default_level() -> String {
    DEFAULT_LOG_LEVEL.to_owned()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: None,
            level: default_level(),
        }
    }
}

/// The epoch length of BFT chains when `epoch` is not written (Besu's and
/// GoQuorum's default `epochlength`).
pub const DEFAULT_BFT_EPOCH: u64 = 30_000;

/// A ledger's trusted checkpoint, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Block number.
    pub number: u64,
    /// Block hash (0x + 64 hex digits), under the protocol's hashing rule: what the
    /// node reports as the block's `hash`.
    pub hash: String,
    /// The validators (Clique: signers) in force after this block, where the header
    /// does not list them (a Clique block that is not an epoch block). Where the
    /// header lists them too, both must agree.
    #[serde(default)]
    pub validators: Option<Vec<String>>,
}

/// A protocol transition, as written (`[[ledgers.transitions]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionConfig {
    /// The first block sealed under `finality`.
    pub block: u64,
    /// The protocol from that block on.
    pub finality: Finality,
    /// Its epoch length (default 30000).
    #[serde(default)]
    pub epoch: Option<u64>,
}
