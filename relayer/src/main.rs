//! `isthmus`: the Isthmus relayer's command line. See `isthmus --help`.
//!
//! Exit status: 0 success, 1 problems found (invalid configuration) or a failure
//! (printed as `error: ...` with its causes), 2 a command-line usage error.

use std::process::ExitCode;

use clap::Parser;
use isthmus_relayer::cli::Cli;
use isthmus_relayer::commands::Outcome;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    let result: anyhow::Result<Outcome> = isthmus_relayer::run(cli, &mut stdout)
        .await
        .map_err(anyhow::Error::from);
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(error) => {
            // `{:#}` prints the cause chain on one line, without a backtrace dump.
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
