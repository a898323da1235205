//! The `isthmus` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default configuration file when neither `--config` nor `ISTHMUS_CONFIG` is given.
pub const DEFAULT_CONFIG: &str = "isthmus.toml";

/// Environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "ISTHMUS_CONFIG";

/// Isthmus: relays messages between EVM and Substrate ledgers, verified by light
/// clients and attested by a consortium, with every step recorded in Postgres.
#[derive(Debug, Parser)]
#[command(
    name = "isthmus",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 success; 1 configuration problems or a failure; 2 usage error.\n\
                  Configuration keys, environment overrides and key sources: docs/configuration.md"
)]
pub struct Cli {
    /// Log line format: `human` (for terminals) or `json` (one object per line).
    /// Overrides `log.format`. Default: human when stderr is a terminal, else JSON.
    /// The level comes from `RUST_LOG` when set, else from `log.level`.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats selectable on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for isthmus_config::LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Human => isthmus_config::LogFormat::Human,
            LogFormatArg::Json => isthmus_config::LogFormat::Json,
        }
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the Postgres database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run local development ledgers (never for production).
    #[command(subcommand)]
    Devnet(DevnetCommand),
    /// Run the relayer: observe, verify, attest, deliver and confirm on every enabled
    /// route, serve HTTP (health, readiness, metrics, attestations) until SIGTERM/Ctrl-C.
    Run(ConfigArg),
    /// Dispatch a message from a configured EVM ledger's Outbox and print its id.
    Send(SendArgs),
    /// Show a message's lifecycle with the evidence of each step.
    Status(StatusArgs),
    /// List messages by route, status and time.
    Messages(MessagesArgs),
    /// Put a failed or dead-lettered message back into delivery (recorded as an
    /// operator action).
    Retry(RetryArgs),
    /// Check the history for tampering.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The light clients of sealed EVM ledgers (qbft, ibft2, ibft, clique).
    #[command(subcommand, name = "light-client")]
    LightClient(LightClientCommand),
    /// Signer-set updates governed by the consortium: a member's key rotation, a
    /// member joining or leaving (docs/operations.md, "Rotating a signer").
    #[command(subcommand)]
    Signers(SignersCommand),
    /// Route pause and resume on a destination: any one member pauses a route at
    /// once; a quorum of the origin's signers resumes it (docs/operations.md,
    /// "Pausing a route").
    #[command(subcommand)]
    Route(RouteCommand),
    /// List the messages held on their destination by a value control, with their
    /// amounts, reasons and the decisions signed so far (docs/operations.md,
    /// "Reviewing holds").
    Holds(HoldsArgs),
    /// Sign the release of a held message with this member's attestation key, fetch
    /// the other members' signatures from their endpoints, and submit the release
    /// once a quorum of the origin's signers signed. Recorded in the history.
    Approve(HoldDecisionArgs),
    /// Sign the rejection of a held message (it ends refused and its payment
    /// returns), fetch the others' and submit once a quorum signed. Recorded.
    Reject(HoldDecisionArgs),
}

/// Arguments of `holds`.
#[derive(Debug, Args)]
pub struct HoldsArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also the holds that ended (released and delivered, rejected, expired).
    #[arg(long)]
    pub all: bool,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
}

/// Arguments of `approve` and `reject`.
#[derive(Debug, Args)]
pub struct HoldDecisionArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The held message's id (0x and 64 hex digits).
    pub id: String,
    /// Why (recorded; required to reject).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
}

/// `isthmus route ...`
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Show whether a route is paused on its destination, and its epoch.
    Show(RouteShowArgs),
    /// Pause a route at once: signs the pause with this member's attestation key and
    /// submits it with this member's submitter key. Recorded in the history.
    Pause(RouteDecisionArgs),
    /// Sign the resume of a paused route with this member's attestation key; writes
    /// a signature file for `route resume`. Recorded in the history.
    SignResume(RouteSignResumeArgs),
    /// Resume a paused route with signatures of a quorum of the origin's current
    /// signer set. Recorded in the history, as is a refusal.
    Resume(RouteResumeArgs),
}

impl RouteCommand {
    /// The configuration file the command names.
    pub fn config(&self) -> &std::path::Path {
        match self {
            Self::Show(a) => &a.route.config.config,
            Self::Pause(a) => &a.route.config.config,
            Self::SignResume(a) => &a.route.config.config,
            Self::Resume(a) => &a.decision.route.config.config,
        }
    }
}

/// The route a `route` command names.
#[derive(Debug, Args)]
pub struct RouteArg {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The destination ledger, whose inbox holds the route's state.
    #[arg(long, value_name = "LEDGER")]
    pub on: String,
    /// The origin ledger whose messages the route carries.
    #[arg(long, value_name = "LEDGER")]
    pub origin: String,
}

/// Arguments of `route show`.
#[derive(Debug, Args)]
pub struct RouteShowArgs {
    /// The route.
    #[command(flatten)]
    pub route: RouteArg,
}

/// Arguments of `route pause`, and what `route resume` records.
#[derive(Debug, Args)]
pub struct RouteDecisionArgs {
    /// The route.
    #[command(flatten)]
    pub route: RouteArg,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Why (recorded; required).
    #[arg(long)]
    pub reason: String,
}

/// Arguments of `route sign-resume`.
#[derive(Debug, Args)]
pub struct RouteSignResumeArgs {
    /// The route.
    #[command(flatten)]
    pub route: RouteArg,
    /// Where to write this member's signature.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
}

/// Arguments of `route resume`.
#[derive(Debug, Args)]
pub struct RouteResumeArgs {
    /// The route, who and why.
    #[command(flatten)]
    pub decision: RouteDecisionArgs,
    /// The members' signature files (`route sign-resume`).
    #[arg(value_name = "SIGNATURE", required = true)]
    pub signatures: Vec<PathBuf>,
}

/// `isthmus signers ...`
#[derive(Debug, Subcommand)]
pub enum SignersCommand {
    /// Show the signer sets a destination accepts for an origin's checkpoints: the
    /// current one and, during an update's overlap, the one it replaced.
    Show(SignersShowArgs),
    /// Propose an update of an origin's signer set on a destination: reads the
    /// current set and writes the update (next version) with its digest to a file.
    /// Recorded in the history.
    Propose(SignersProposeArgs),
    /// Check a proposal against its destination and sign its digest with this
    /// member's attestation key; writes a signature file. Recorded in the history.
    Sign(SignersSignArgs),
    /// Submit a proposal with signatures of a quorum of the current set, with this
    /// member's submitter key on the destination. Recorded in the history, as is a
    /// refusal.
    Submit(SignersSubmitArgs),
}

impl SignersCommand {
    /// The configuration file the command names.
    pub fn config(&self) -> &std::path::Path {
        match self {
            Self::Show(a) => &a.config.config,
            Self::Propose(a) => &a.config.config,
            Self::Sign(a) => &a.config.config,
            Self::Submit(a) => &a.config.config,
        }
    }
}

/// Arguments of `signers show`.
#[derive(Debug, Args)]
pub struct SignersShowArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The destination ledger whose inbox holds the sets.
    #[arg(long, value_name = "LEDGER")]
    pub on: String,
    /// The origin ledger the sets attest.
    #[arg(long, value_name = "LEDGER")]
    pub origin: String,
}

/// Arguments of `signers propose`.
#[derive(Debug, Args)]
pub struct SignersProposeArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The destination ledger whose inbox holds the set.
    #[arg(long, value_name = "LEDGER")]
    pub on: String,
    /// The origin ledger whose signer set changes.
    #[arg(long, value_name = "LEDGER")]
    pub origin: String,
    /// The whole new set, in order (comma-separated or repeated addresses).
    #[arg(
        long,
        value_name = "ADDRESS",
        value_delimiter = ',',
        conflicts_with = "replace",
        required_unless_present = "replace"
    )]
    pub signers: Vec<String>,
    /// Replace one signer of the current set by another, in place (a key
    /// rotation): OLD=NEW, repeatable.
    #[arg(long, value_name = "OLD=NEW")]
    pub replace: Vec<String>,
    /// The new threshold [default: the current one].
    #[arg(long)]
    pub threshold: Option<u8>,
    /// How long the replaced set stays valid after the update: seconds, or a number
    /// with s, m, h or d (at most 30d). Members switching keys need this long.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub overlap: String,
    /// Where to write the proposal.
    #[arg(long, value_name = "FILE", default_value = "signer-set-proposal.json")]
    pub out: PathBuf,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Why the set changes (recorded).
    #[arg(long)]
    pub reason: String,
}

/// Arguments of `signers sign`.
#[derive(Debug, Args)]
pub struct SignersSignArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The proposal file.
    #[arg(value_name = "PROPOSAL")]
    pub proposal: PathBuf,
    /// Where to write this member's signature.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
}

/// Arguments of `signers submit`.
#[derive(Debug, Args)]
pub struct SignersSubmitArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The proposal file.
    #[arg(value_name = "PROPOSAL")]
    pub proposal: PathBuf,
    /// The members' signature files.
    #[arg(value_name = "SIGNATURE", required = true)]
    pub signatures: Vec<PathBuf>,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
}

/// `isthmus light-client ...`
#[derive(Debug, Subcommand)]
pub enum LightClientCommand {
    /// Show each sealed ledger's stored state: checkpoint, verified head, protocol,
    /// validator set, and any halt recorded in the history.
    Status(ConfigArg),
    /// Discard a ledger's stored light-client state, so that the next start begins
    /// at the configured checkpoint (every process of this member must be stopped).
    /// Recorded as an operator action in the hash-chained history.
    Reset(ResetArgs),
}

/// Arguments of `light-client reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The ledger's name.
    #[arg(long, value_name = "LEDGER")]
    pub ledger: String,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Why (recorded; required: a reset moves the ledger's trust anchor).
    #[arg(long)]
    pub reason: String,
}

/// Just the configuration file.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// Arguments of `send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Source ledger name (its submitter key pays and becomes the sender).
    #[arg(long, value_name = "LEDGER")]
    pub from: String,
    /// Destination ledger name.
    #[arg(long, value_name = "LEDGER")]
    pub to: String,
    /// Recipient: 20-byte EVM address or 32-byte account, hex.
    #[arg(long, value_name = "ADDRESS")]
    pub recipient: String,
    /// Body as text (see --body-hex and --body-file for bytes).
    #[arg(long, conflicts_with_all = ["body_hex", "body_file"], value_name = "TEXT")]
    pub body: Option<String>,
    /// Body as hex bytes.
    #[arg(long, conflicts_with = "body_file", value_name = "HEX")]
    pub body_hex: Option<String>,
    /// Body read from a file, as its bytes (for bodies too large for an argument).
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<std::path::PathBuf>,
    /// Unix seconds after which the message must not be delivered (0 = never).
    #[arg(long, default_value_t = 0)]
    pub deadline: u64,
    /// Environment variable holding the sender's key: secp256k1 (64 hex digits) on an
    /// EVM ledger, an sr25519 secret URI or 0x seed (`//Ferdie`) on a Substrate ledger.
    /// The sender pays and is the message's `sender`. Default: the source ledger's
    /// submitter key (fine for testing; a relayer's submitter should not send).
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Message id (0x + 64 hex digits).
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `messages`.
#[derive(Debug, Args)]
pub struct MessagesArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this route, as SOURCE->DESTINATION ledger names.
    #[arg(long, value_name = "SRC->DST")]
    pub route: Option<String>,
    /// Only these statuses (repeatable): observed, verified, attested, submitted,
    /// delivered, failed, dead_letter, expired, rejected, refused.
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Only messages whose receipt says this outcome (repeatable): delivered,
    /// refused, expired.
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Vec<String>,
    /// Observed at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Observed before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Arguments of `retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Message id.
    pub id: String,
    /// Who is acting (recorded).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Why (recorded).
    #[arg(long, default_value = "operator retry")]
    pub reason: String,
}

/// `isthmus audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the lifecycle log's hash chain; name the first altered or missing
    /// row. Exit 0 when intact, 1 when not.
    Verify(ConfigArg),
    /// Write the lifecycle log of a time range (CSV or JSON lines) with each row's
    /// `prev_hash` and `row_hash`, so the export can be checked against the chain.
    Export(ExportArgs),
}

/// Arguments of `audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Rows appended at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Rows appended before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
}

/// Formats of `audit export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// A header line, then one comma-separated line per row (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Json,
}

/// `isthmus devnet ...`
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Start an anvil ledger for a configured EVM ledger, deploy the Isthmus endpoints
    /// and write their addresses; runs until Ctrl-C or SIGTERM, then stops anvil.
    ///
    /// Anvil listens on the port of the ledger's first `rpc` URL, with its
    /// `chain_id`. Deployment uses anvil's first development account, so a fresh
    /// anvil always yields the same addresses (those of config/examples/devnet.toml).
    Evm(DevnetEvmArgs),
    /// Start the Substrate dev chain (chopsticks running the dev runtime) for a
    /// configured Substrate ledger and wire it; runs until Ctrl-C or SIGTERM.
    ///
    /// The chain listens on the port of the ledger's first `rpc` URL. Through `sudo`
    /// the devnet sets the runtime's ledger id to the configured `id`, makes the
    /// pallet's inbox trust every configured EVM ledger's Outbox with the consortium's
    /// signers and threshold, and lets the devnet's dApp accounts on those ledgers
    /// instruct the clearing app. Needs the runtime wasm (`make substrate-runtime`)
    /// and the devnet tools (`make devnet-tools`).
    Substrate(DevnetSubstrateArgs),
    /// Make a throwaway consortium CA and, for every member of the configuration's
    /// consortium, a certificate for its TLS name with its key (server and client
    /// use), for mutual TLS between the members' attestation endpoints.
    ///
    /// Writes `ca.pem`, `<name>.pem` and `<name>.key` (owner-readable only). Devnet
    /// only: a real consortium's CA issues its members' certificates.
    Certificates(DevnetCertificatesArgs),
    /// Pay through the clearing pallet of a configured Substrate ledger, from a bank
    /// the key operates (the devnet's first bank, `0x0a…`, which `//Ferdie`
    /// operates): the amount moves into escrow until the payment's receipt comes
    /// back, then settles or returns to the bank. Prints the payment's message id.
    Pay(DevnetPayArgs),
}

/// Arguments of `devnet pay`.
#[derive(Debug, Args)]
pub struct DevnetPayArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The Substrate ledger to pay from (`[[ledgers]] name`).
    #[arg(long, value_name = "NAME")]
    pub ledger: String,
    /// The ledger the creditor bank is on.
    #[arg(long, value_name = "LEDGER")]
    pub to: String,
    /// End-to-end id, 0x + 64 hex digits: the pallet takes each once.
    #[arg(long, value_name = "HEX32")]
    pub uetr: String,
    /// Paying bank on this ledger, 0x + 64 hex digits.
    #[arg(
        long,
        value_name = "HEX32",
        default_value = "0x0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"
    )]
    pub debtor: String,
    /// Receiving bank on the destination, 0x + 64 hex digits.
    #[arg(long, value_name = "HEX32")]
    pub creditor: String,
    /// Amount in the currency's smallest unit.
    #[arg(long)]
    pub amount: u128,
    /// Unix seconds after which the payment must not be credited (0 = never); a later
    /// delivery returns it.
    #[arg(long, default_value_t = 0)]
    pub deadline: u64,
    /// Environment variable holding the paying account's sr25519 secret URI or 0x
    /// seed (the devnet's `//Ferdie`).
    #[arg(long, value_name = "VAR")]
    pub key_env: String,
}

/// Arguments of `devnet certificates`.
#[derive(Debug, Args)]
pub struct DevnetCertificatesArgs {
    /// Configuration file (its `[[consortium.members]]` are issued certificates).
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Directory to write into.
    #[arg(long, value_name = "DIR", default_value = "devnet/state/tls")]
    pub out: PathBuf,
    /// Also issue a certificate for this name (repeatable), e.g. a client that is no
    /// member, to try the endpoint's refusals.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
}

/// Arguments of `devnet substrate`.
#[derive(Debug, Args)]
pub struct DevnetSubstrateArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Name of the Substrate ledger (`[[ledgers]] name`) to run.
    #[arg(long, value_name = "NAME")]
    pub ledger: String,
}

/// Arguments of `devnet evm`.
#[derive(Debug, Args)]
pub struct DevnetEvmArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Name of the EVM ledger (`[[ledgers]] name`) to run.
    #[arg(long, value_name = "NAME")]
    pub ledger: String,
    /// Where to write the deployed addresses (JSON) [default: devnet/state/<ledger>.json].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seconds between blocks (0: a block only per transaction). Finality trails the
    /// head by two blocks, so blocks must keep coming for messages to become final.
    #[arg(long, default_value_t = 1, value_name = "SECONDS")]
    pub block_time: u64,
}

/// `isthmus config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration and print every problem with its key, file and fix.
    ///
    /// Reads the file plus `ISTHMUS_*` environment overrides, checks references,
    /// formats and key sources (environment variables set, key files readable and
    /// holding valid keys; key material is never printed). Exits 0 and prints a short
    /// summary when valid, 1 when there are problems.
    Validate(ValidateArgs),
}

/// Arguments of `config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = CONFIG_ENV, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// `isthmus db ...`
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply the schema migrations that the database does not have yet.
    ///
    /// Safe to repeat: applied migrations are recorded and skipped, and an applied
    /// migration whose file changed is refused. Prints the migrations it applied.
    Migrate(MigrateArgs),
}

/// Arguments of `db migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Configuration file whose `database.url` to use
    /// [default: $ISTHMUS_CONFIG, else isthmus.toml].
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        conflicts_with = "database_url"
    )]
    pub config: Option<PathBuf>,

    /// Database URL to use instead of a configuration file, e.g.
    /// postgres://postgres@127.0.0.1:5432/isthmus.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl MigrateArgs {
    /// The configuration file to read when no `--database-url` is given.
    pub fn config_path(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .map_or_else(|| PathBuf::from(DEFAULT_CONFIG), PathBuf::from)
        })
    }
}
