//! The Isthmus relayer service and its command line, `isthmus`.
//!
//! `main` only parses arguments and maps the result to an exit status; everything
//! else lives here so tests can drive it:
//!
//! - [`cli`]: the clap definition of the command line;
//! - [`commands`]: `config validate` and `db migrate`, writing their reports to any
//!   `Write`;
//! - [`logging`]: the tracing subscriber (human or JSON, `RUST_LOG` over `log.level`);
//! - [`operate`]: the operating commands (`run`, `send`, `status`, `messages`,
//!   `retry`, `audit`);
//! - [`devnet`]: `devnet evm` and `devnet substrate`, the local ledgers;
//! - [`supervise`]: `isthmus run`'s bootstrap, named tasks and shutdown;
//! - [`pipeline`]: the delivery pipeline, one module per step (observe, claim,
//!   triage, verify, attest, submit, record, watch);
//! - [`ledger`]: the [`ledger::Source`], [`ledger::Destination`] and
//!   [`ledger::DeliveryFeed`] roles, implemented for EVM and Substrate ledgers;
//! - [`verified`]: [`verified::VerifiedCheckpoint`], only buildable from a light
//!   client's output;
//! - [`attest`]: this member's signing key, the consortium, the peers' endpoints;
//! - [`signers`], [`routes`]: the consortium's governance of each destination: signer
//!   sets, route pause and resume;
//! - [`holds`]: held messages, and the members' signed decisions on them;
//!   [`screening`]: the payment screening hook asked before an approval;
//! - [`http`]: health, readiness, metrics and `/v1/attest` on narrow handles;
//! - [`metrics`]: the Prometheus metrics.

pub mod attest;
pub mod cli;
pub mod commands;
pub mod devnet;
mod error;
pub mod holds;
pub mod http;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod mtls;
pub mod operate;
pub mod payments;
pub mod peer_endpoint;
pub mod pipeline;
pub mod routes;
pub mod screening;
pub mod signers;
pub mod supervise;
pub mod verified;

use std::io::Write;

pub use error::RelayerError;

use crate::cli::{
    AuditCommand, Cli, Command, ConfigCommand, DbCommand, DevnetCommand, LightClientCommand,
    RouteCommand, SignersCommand,
};
use crate::commands::Outcome;

/// Runs the parsed command line, writing the report to `out` and logs to stderr.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, RelayerError> {
    let cli_format = cli.log_format.map(Into::into);
    match cli.command {
        Command::Config(ConfigCommand::Validate(args)) => {
            logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
            commands::config_validate(&args.config, out)
        }
        Command::Db(DbCommand::Migrate(args)) => {
            let url = match &args.database_url {
                Some(url) => {
                    logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
                    isthmus_config::DatabaseUrl::new(url.clone())
                }
                None => {
                    let path = args.config_path();
                    let Some(config) = commands::load(&path, out)? else {
                        return Ok(Outcome::Problems);
                    };
                    logging::init(cli_format, config.log.format, &config.log.level)?;
                    config.database.url
                }
            };
            commands::db_migrate(&url, out).await?;
            Ok(Outcome::Success)
        }
        Command::Devnet(DevnetCommand::Evm(args)) => {
            logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
            devnet::evm(&args, out).await
        }
        Command::Devnet(DevnetCommand::Certificates(args)) => {
            logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
            devnet::certificates(&args, out)
        }
        Command::Devnet(DevnetCommand::Pay(args)) => {
            logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
            devnet::pay(&args, out).await
        }
        Command::Devnet(DevnetCommand::Substrate(args)) => {
            logging::init(cli_format, None, isthmus_config::DEFAULT_LOG_LEVEL)?;
            devnet::substrate(&args, out).await
        }
        Command::Run(args) => {
            let Some(settings) = operate::load_valid(&args.config, out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            operate::run(settings).await
        }
        Command::Send(args) => {
            let Some(settings) = operate::load_valid(&args.config.config, out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            operate::send(settings, &args, out).await
        }
        Command::Status(args) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(operate::status(c, &args, out))
            })
            .await
        }
        Command::Messages(args) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(operate::messages(c, &args, out))
            })
            .await
        }
        Command::Retry(args) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(operate::retry(c, &args, out))
            })
            .await
        }
        Command::Audit(AuditCommand::Export(args)) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(operate::audit_export(c, &args, out))
            })
            .await
        }
        Command::LightClient(LightClientCommand::Status(args)) => {
            with_config(&args.config, cli_format, out, |c, out| {
                Box::pin(operate::light_client_status(c, out))
            })
            .await
        }
        Command::LightClient(LightClientCommand::Reset(args)) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(operate::light_client_reset(c, &args, out))
            })
            .await
        }
        Command::Signers(command) => {
            let Some(settings) = operate::load_valid(command.config(), out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            match &command {
                SignersCommand::Show(a) => signers::show(settings, a, out).await,
                SignersCommand::Propose(a) => signers::propose(settings, a, out).await,
                SignersCommand::Sign(a) => signers::sign(settings, a, out).await,
                SignersCommand::Submit(a) => signers::submit(settings, a, out).await,
            }
        }
        Command::Route(command) => {
            let Some(settings) = operate::load_valid(command.config(), out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            match &command {
                RouteCommand::Show(a) => routes::show(settings, a, out).await,
                RouteCommand::Pause(a) => routes::pause(settings, a, out).await,
                RouteCommand::SignResume(a) => routes::sign_resume(settings, a, out).await,
                RouteCommand::Resume(a) => routes::resume(settings, a, out).await,
            }
        }
        Command::Holds(args) => {
            with_config(&args.config.config, cli_format, out, |c, out| {
                Box::pin(holds::list(c, &args, out))
            })
            .await
        }
        Command::Approve(args) => {
            let Some(settings) = operate::load_valid(&args.config.config, out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            holds::decide(settings, &args, isthmus_protocol::HoldAction::Release, out).await
        }
        Command::Reject(args) => {
            let Some(settings) = operate::load_valid(&args.config.config, out)? else {
                return Ok(Outcome::Problems);
            };
            logging::init(cli_format, settings.log.format, &settings.log.level)?;
            holds::decide(settings, &args, isthmus_protocol::HoldAction::Reject, out).await
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            with_config(&args.config, cli_format, out, |c, out| {
                Box::pin(operate::audit_verify(c, out))
            })
            .await
        }
    }
}

type CommandFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, RelayerError>> + 'a>>;

/// Loads the configuration (printing parse problems), starts logging, runs `f`.
async fn with_config<'a, F>(
    path: &std::path::Path,
    cli_format: Option<isthmus_config::LogFormat>,
    out: &'a mut dyn Write,
    f: F,
) -> Result<Outcome, RelayerError>
where
    F: FnOnce(isthmus_config::Config, &'a mut dyn Write) -> CommandFuture<'a>,
{
    let Some(config) = commands::load(path, out)? else {
        return Ok(Outcome::Problems);
    };
    logging::init(cli_format, config.log.format, &config.log.level)?;
    f(config, out).await
}
