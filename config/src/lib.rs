//! Typed configuration for the Isthmus relayer.
//!
//! A configuration is one TOML file plus `ISTHMUS_` environment variables that
//! override it (`__` separates nesting levels: `ISTHMUS_DATABASE__URL` sets
//! `database.url`). Loading happens in two steps:
//!
//! 1. [`Config::load`] parses the file into its raw sections ([`Config`]) and rejects
//!    unknown keys, missing keys and wrong types, naming the key and the file or
//!    variable.
//! 2. [`Config::validate`] checks meaning and reports **every** problem at once:
//!    references between sections, uniqueness, address and URL formats, finality
//!    modes, that every key source can be read and holds a valid key, and that every
//!    mode and option is one `isthmus run` supports. When there is no problem it
//!    returns the [`Settings`]: the configuration parsed once into types (an enum per
//!    ledger kind, [`EvmAddress`]es, [`Duration`](std::time::Duration)s, route
//!    endpoints as ledger ids, defaults applied), which is what the relayer runs with.
//!
//! Secrets never appear in `Debug`, `Display` or serialized output: keys are read only
//! from the environment or files ([`KeySource`]) and held in [`Secret`]; the database
//! URL's password is masked ([`DatabaseUrl`]).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = isthmus_config::Config::load(std::path::Path::new("isthmus.toml"))?;
//! match config.validate() {
//!     Ok(settings) => println!("{} ledgers", settings.ledgers.len()),
//!     Err(problems) => {
//!         for problem in problems {
//!             eprintln!("{problem}");
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod address;
mod error;
mod key;
mod model;
mod problem;
mod secret;
mod settings;
mod tls;
mod validate;

use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;

pub use address::{AddressError, EvmAddress};
pub use error::ConfigError;
pub use key::{KeySource, Pkcs11Source, Secp256k1Key};
pub use model::{
    AnchorConfig, AttestationConfig, CheckpointConfig, Config, ConsortiumConfig, ConsortiumMember,
    DatabaseConfig, Finality, HttpConfig, Justifications, LedgerConfig, LedgerKind, LogConfig,
    LogFormat, MemberConfig, RouteConfig, ScreeningConfig, TransitionConfig, DEFAULT_ATTEST_BURST,
    DEFAULT_ATTEST_RATE, DEFAULT_BATCH_SIZE, DEFAULT_BFT_EPOCH, DEFAULT_IN_FLIGHT, DEFAULT_LISTEN,
    DEFAULT_LOG_LEVEL, DEFAULT_PALLET, DEFAULT_POLL_INTERVAL_MS, DEFAULT_POOL_SIZE,
    DEFAULT_SCREENING_TIMEOUT_MS, DEFAULT_TAKEOVER_S, MAX_BATCH_SIZE, MAX_IN_FLIGHT,
    MAX_SCREENING_TIMEOUT_MS, MAX_TAKEOVER_S, MIN_MESSAGE_GAS,
};
pub use problem::Problem;
pub use secret::{DatabaseUrl, Secret, REDACTED};
pub use settings::{
    AttestationSettings, ConsensusStep, ConsortiumMemberSettings, ConsortiumSettings,
    DatabaseSettings, EvmFinality, EvmSettings, GrandpaAnchor, HttpSettings, LedgerKindSettings,
    LedgerSettings, LogSettings, MemberSettings, RouteSettings, ScreeningSettings, SealProtocol,
    SealedFinality, Settings, SubstrateSettings, TrustedBlock,
};
pub use tls::{crypto_provider, is_tls_name, TlsError, TlsFiles, TlsMaterial};

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "ISTHMUS_";

/// Separator between nesting levels in those variables' names.
pub const ENV_SEPARATOR: &str = "__";

/// `ISTHMUS_` variables that are not configuration keys (the CLI reads
/// `ISTHMUS_CONFIG` for the file's path), lowercased as figment sees them.
const ENV_NOT_KEYS: &[&str] = &["config"];

impl Config {
    /// The figment a file-based configuration is built from: the TOML file, then
    /// `ISTHMUS_*` environment variables on top. Exposed so callers can add their own
    /// layers before [`Config::from_figment`].
    pub fn figment(path: &Path) -> Figment {
        Figment::from(Toml::file_exact(path)).merge(env_provider())
    }

    /// Reads `path` and the `ISTHMUS_*` environment, and parses them. Does not
    /// validate: call [`Config::validate`] next.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // figment treats a missing file as empty; an operator means a real file.
        std::fs::metadata(path)
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file",
                    ))
                }
            })
            .map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Self::extract(&Self::figment(path), Some(path))
    }

    /// Parses a configuration from any figment (tests and embedders use this with
    /// explicit providers). Problems are located by the figment's own metadata.
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        Self::extract(figment, None)
    }

    fn extract(figment: &Figment, file: Option<&Path>) -> Result<Config, ConfigError> {
        let provenance = problem::Provenance::new(figment, file);
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(problem::from_figment_error(e, &provenance)))?;
        config.provenance = provenance;
        Ok(config)
    }

    /// The configuration file this was loaded from, if it came from [`Config::load`].
    pub fn source_file(&self) -> Option<&Path> {
        self.provenance.file()
    }

    /// The ledger with this name.
    pub fn ledger(&self, name: &str) -> Option<&LedgerConfig> {
        self.ledgers.iter().find(|l| l.name == name)
    }
}

/// `ISTHMUS_*` variables, `__` for nesting, minus the ones that are not keys.
fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX)
        .split(ENV_SEPARATOR)
        .ignore(ENV_NOT_KEYS)
}
