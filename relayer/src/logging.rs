//! Log setup: one subscriber for the process, writing to stderr.
//!
//! The format is human text when stderr is a terminal and JSON otherwise, unless the
//! command line or `log.format` choose. The filter is `RUST_LOG` when set (an operator
//! debugging one process should not need to edit the shared file), else `log.level`.
//! Nothing in this crate logs secrets: the database URL is logged in its redacted
//! form and keys are never logged.

use std::io::IsTerminal;

use isthmus_config::LogFormat;
use tracing_subscriber::EnvFilter;

use crate::RelayerError;

/// Picks the format: the command line first, then the configuration, then the
/// terminal test.
pub fn resolve_format(
    cli: Option<LogFormat>,
    config: Option<LogFormat>,
    stderr_is_terminal: bool,
) -> LogFormat {
    cli.or(config).unwrap_or(if stderr_is_terminal {
        LogFormat::Human
    } else {
        LogFormat::Json
    })
}

/// Postgres server notices ("relation already exists, skipping") that sqlx logs at
/// INFO; quieted unless the configured level mentions sqlx itself.
const QUIET_NOTICES: &str = "sqlx::postgres::notice=warn";

/// Builds the filter: `rust_log` (the `RUST_LOG` value) when set and non-empty, taken
/// as is; else `config_level` with Postgres notices quieted.
pub fn filter(rust_log: Option<&str>, config_level: &str) -> Result<EnvFilter, RelayerError> {
    let directives = match rust_log {
        Some(value) if !value.trim().is_empty() => value.to_owned(),
        _ if config_level.contains("sqlx") => config_level.to_owned(),
        _ => format!("{config_level},{QUIET_NOTICES}"),
    };
    Ok(EnvFilter::try_new(directives)?)
}

/// Installs the process's subscriber. A second call keeps the first subscriber (tests
/// run several commands in one process).
pub fn init(
    cli: Option<LogFormat>,
    config: Option<LogFormat>,
    config_level: &str,
) -> Result<(), RelayerError> {
    let stderr_is_terminal = std::io::stderr().is_terminal();
    let format = resolve_format(cli, config, stderr_is_terminal);
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(rust_log.as_deref(), config_level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // An already installed subscriber is fine: the first one wins.
    let _already_set = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Human => builder.with_ansi(stderr_is_terminal).try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_precedence() {
        use LogFormat::{Human, Json};
        assert_eq!(resolve_format(Some(Json), Some(Human), true), Json);
        assert_eq!(resolve_format(None, Some(Json), true), Json);
        assert_eq!(resolve_format(None, Some(Human), false), Human);
        assert_eq!(resolve_format(None, None, true), Human);
        assert_eq!(resolve_format(None, None, false), Json);
    }

    #[test]
    fn rust_log_wins_over_config_level() {
        let f = filter(Some("debug"), "warn").expect("valid filter");
        assert_eq!(f.to_string(), "debug");
        let f = filter(None, "warn").expect("valid filter");
        assert!(f.to_string().split(',').any(|d| d == "warn"), "{f}");
        assert!(f.to_string().contains(QUIET_NOTICES), "{f}");
        let f = filter(Some("  "), "isthmus=trace,info").expect("valid filter");
        assert!(f.to_string().contains("isthmus=trace"), "{f}");
        assert!(filter(None, "isthmus=loud").is_err());
    }
}
