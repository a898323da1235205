//! The commands behind the CLI, callable from tests with any output sink.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use isthmus_config::{Config, ConfigError, DatabaseUrl, Problem};
use sqlx::migrate::Migrate;

use crate::RelayerError;

/// How a command ended, when it ran to completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was in order.
    Success,
    /// The command found problems and reported them (exit status 1).
    Problems,
}

/// `isthmus config validate`: loads `path`, prints each problem (key, file, fix) and
/// the warnings, or a summary when the configuration is valid.
pub fn config_validate(path: &Path, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    tracing::debug!(file = %path.display(), "validating configuration");
    let config = match load(path, out)? {
        Some(config) => config,
        None => return Ok(Outcome::Problems),
    };
    let warnings = config.warnings();
    match config.validate() {
        Ok(_settings) => {
            writeln!(out, "{} is valid", path.display())?;
            write_summary(&config, out)?;
            write_problems("warning", &warnings, out)?;
            Ok(Outcome::Success)
        }
        Err(problems) => {
            writeln!(out, "{}: {} problem(s)", path.display(), problems.len())?;
            write_problems("error", &problems, out)?;
            write_problems("warning", &warnings, out)?;
            Ok(Outcome::Problems)
        }
    }
}

/// Loads a configuration, printing parse problems instead of failing: a file with a
/// typo is the operator's input to fix, not an internal error. `None` means problems
/// were printed.
pub fn load(path: &Path, out: &mut dyn Write) -> Result<Option<Config>, RelayerError> {
    match Config::load(path) {
        Ok(config) => Ok(Some(config)),
        Err(ConfigError::Parse(problems)) => {
            writeln!(
                out,
                "{}: cannot be parsed, {} problem(s)",
                path.display(),
                problems.len()
            )?;
            write_problems("error", &problems, out)?;
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

fn write_problems(label: &str, problems: &[Problem], out: &mut dyn Write) -> std::io::Result<()> {
    for problem in problems {
        writeln!(out, "{label}: {problem}")?;
    }
    Ok(())
}

fn write_summary(config: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    let ledgers: Vec<String> = config
        .ledgers
        .iter()
        .map(|l| format!("{} ({} #{})", l.name, l.kind, l.id))
        .collect();
    let enabled = config.routes.iter().filter(|r| r.enabled).count();
    let members: Vec<&str> = config
        .consortium
        .members
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    writeln!(
        out,
        "  ledgers:   {}: {}",
        config.ledgers.len(),
        ledgers.join(", ")
    )?;
    writeln!(
        out,
        "  routes:    {} ({enabled} enabled)",
        config.routes.len()
    )?;
    for route in &config.routes {
        let state = if route.enabled { "" } else { " (disabled)" };
        writeln!(
            out,
            "             {} -> {}{state}",
            route.source, route.destination
        )?;
    }
    writeln!(
        out,
        "  members:   {}: {}",
        members.len(),
        members.join(", ")
    )?;
    writeln!(
        out,
        "  threshold: {} of {}",
        config.consortium.threshold,
        members.len()
    )?;
    writeln!(
        out,
        "  this relayer: member {}, http on {}",
        config.member.name, config.http.listen
    )?;
    if let Some(attestation) = &config.attestation {
        writeln!(
            out,
            "  attestation: mutual TLS on {}, certificate {}, CA {}",
            attestation.listen,
            attestation.certificate.relative().display(),
            attestation.ca.relative().display()
        )?;
    }
    Ok(())
}

/// A migration that `db migrate` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its version (the number in the file name).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
}

/// The result of `db migrate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    /// Migrations applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// How many migrations the database now has.
    pub total: usize,
}

/// `isthmus db migrate`: connects to `url` and applies the pending migrations of
/// [`isthmus_schema::MIGRATOR`], reporting which ones were applied.
pub async fn db_migrate(
    url: &DatabaseUrl,
    out: &mut dyn Write,
) -> Result<MigrationReport, RelayerError> {
    tracing::info!(database = %url, "applying schema migrations");
    let pool = isthmus_schema::connect(url.expose()).await?;
    let before = applied_versions(&pool).await?;
    isthmus_schema::MIGRATOR.run(&pool).await?;
    let after = applied_versions(&pool).await?;
    pool.close().await;

    let applied: Vec<AppliedMigration> = isthmus_schema::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| after.contains(&m.version) && !before.contains(&m.version))
        .map(|m| AppliedMigration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect();
    let report = MigrationReport {
        applied,
        total: after.len(),
    };
    if report.applied.is_empty() {
        writeln!(
            out,
            "database {url} is up to date ({} migration(s) applied earlier)",
            report.total
        )?;
    } else {
        writeln!(
            out,
            "applied {} migration(s) to {url}:",
            report.applied.len()
        )?;
        for m in &report.applied {
            writeln!(out, "  {} {}", m.version, m.description)?;
        }
        writeln!(out, "the database now has {} migration(s)", report.total)?;
    }
    tracing::info!(
        applied = report.applied.len(),
        total = report.total,
        "schema is up to date"
    );
    Ok(report)
}

async fn applied_versions(pool: &sqlx::PgPool) -> Result<BTreeSet<i64>, RelayerError> {
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table().await?;
    let applied = conn.list_applied_migrations().await?;
    Ok(applied.into_iter().map(|m| m.version).collect())
}
