//! The crate's error type.

use std::path::PathBuf;

use crate::problem::Problem;

/// Why a configuration or a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration could not be parsed into its typed form (syntax errors,
    /// unknown or missing keys, wrong types). Each problem names key, file and fix.
    #[error("{}", render_problems(.0))]
    Parse(Vec<Problem>),
    /// A key source names an environment variable that is not set.
    #[error("environment variable `{var}` (named as a key source) is not set")]
    KeyEnvMissing {
        /// The variable's name.
        var: String,
    },
    /// A key file could not be read.
    #[error("cannot read key file `{}`", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A key was written inline in the configuration.
    #[error("keys may not be written into the configuration; use {{ env = \"VAR\" }} or {{ file = \"path\" }}")]
    KeyInline,
    /// A key in a PKCS#11 token could not be opened (module, token, PIN or key); the
    /// reason names which and never quotes the PIN.
    #[error("{source_desc}: {reason}")]
    KeyToken {
        /// Which key.
        source_desc: String,
        /// What the token said.
        reason: String,
        /// Whether the token may answer later (a busy or re-inserted device).
        retryable: bool,
    },
    /// The key source holds something that is not a key of the expected form. The
    /// reason never quotes the key material.
    #[error("{source_desc} {reason}")]
    KeyFormat {
        /// Which source, e.g. ``environment variable `X` ``.
        source_desc: String,
        /// What is wrong with its content.
        reason: String,
    },
}

impl ConfigError {
    /// Whether trying again unchanged may succeed. Only transient IO failures qualify;
    /// a wrong file stays wrong until an operator edits it.
    pub fn is_retryable(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            ConfigError::Read { source, .. } | ConfigError::KeyFile { source, .. } => matches!(
                source.kind(),
                ErrorKind::Interrupted | ErrorKind::TimedOut | ErrorKind::WouldBlock
            ),
            ConfigError::Parse(_)
            | ConfigError::KeyEnvMissing { .. }
            | ConfigError::KeyInline
            | ConfigError::KeyFormat { .. } => false,
            ConfigError::KeyToken { retryable, .. } => *retryable,
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = format!("{} configuration problem(s):", problems.len());
    for problem in problems {
        out.push_str("\n- ");
        out.push_str(&problem.to_string());
    }
    out
}
