//! [`KeyError`]: why a key could not be opened or could not sign, and whether to retry.
//!
//! Messages name the source (module path, token label, key label) and the fix, so an
//! operator can act on the log line alone. No message ever contains a PIN: the variants
//! that concern the PIN do not carry it.

use std::path::PathBuf;

pub use cryptoki::context::Function;
pub use cryptoki::error::RvError;

/// Why a key could not be opened or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PKCS#11 module file does not exist. Fatal: configuration or installation.
    #[error(
        "PKCS#11 module {} does not exist: install the token's PKCS#11 library \
         (for SoftHSM2: apt-get install softhsm2) or fix the configured module path",
        module.display()
    )]
    ModuleMissing {
        /// The configured module path.
        module: PathBuf,
    },
    /// The module exists but could not be loaded as a PKCS#11 library, or its
    /// `C_Initialize` failed. Fatal: the file is not a usable PKCS#11 module here.
    #[error(
        "PKCS#11 module {} could not be loaded ({source}): check that it is a PKCS#11 \
         library for this machine's architecture and that its own configuration is readable",
        module.display()
    )]
    ModuleLoad {
        /// The configured module path.
        module: PathBuf,
        /// What the loader or `C_Initialize` said.
        source: cryptoki::error::Error,
    },
    /// No token carries the configured label. Fatal until the token is inserted or the
    /// configuration names one of the labels present.
    #[error(
        "no token labelled `{token}` in PKCS#11 module {}; tokens present: {}: insert or \
         initialise the token, or configure one of the labels present",
        module.display(),
        list(present)
    )]
    TokenNotFound {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The labels of the initialised tokens the module shows.
        present: Vec<String>,
    },
    /// Several tokens carry the configured label, so the key's location is ambiguous.
    #[error(
        "{count} tokens are labelled `{token}` in PKCS#11 module {}: relabel them so that \
         the configured label names exactly one",
        module.display()
    )]
    DuplicateToken {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// How many tokens carry it.
        count: usize,
    },
    /// The token disappeared while the key was in use (unplugged, removed, its slot
    /// gone) and is not back yet. Retryable: signing resumes once it is reinserted.
    #[error(
        "token `{token}` (PKCS#11 module {}) holding key `{key}` is no longer present: \
         reinsert or reconnect it; signing resumes by itself",
        module.display()
    )]
    TokenGone {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
    },
    /// The token with the label is present but was never initialised.
    #[error(
        "token `{token}` in PKCS#11 module {} is not initialised: initialise it \
         (softhsm2-util --init-token, or the HSM's tools) and create the key",
        module.display()
    )]
    TokenNotInitialized {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
    },
    /// The token has no user PIN yet (`CKR_USER_PIN_NOT_INITIALIZED`).
    #[error(
        "token `{token}` in PKCS#11 module {} has no user PIN: have its security officer \
         set one (softhsm2-util --init-token sets both; C_InitPIN otherwise)",
        module.display()
    )]
    UserPinNotInitialized {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
    },
    /// The token refused the configured user PIN (`CKR_PIN_INCORRECT`, `CKR_PIN_INVALID`
    /// or `CKR_PIN_LEN_RANGE`). Fatal: retrying a wrong PIN only brings the lockout closer.
    #[error(
        "token `{token}` in PKCS#11 module {} refused the PIN ({rv:?}): fix the configured \
         user PIN (it is not shown here); repeated attempts may lock the token",
        module.display()
    )]
    PinIncorrect {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The exact refusal.
        rv: RvError,
    },
    /// The user PIN is locked after too many wrong attempts (`CKR_PIN_LOCKED`).
    #[error(
        "the user PIN of token `{token}` in PKCS#11 module {} is locked: its security \
         officer must unlock or reset it before the key can sign",
        module.display()
    )]
    PinLocked {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
    },
    /// No EC private key with the configured label is on the token.
    #[error(
        "no EC private key labelled `{key}` on token `{token}` (PKCS#11 module {}): \
         generate or import a secp256k1 key with that CKA_LABEL, or fix the configured key label",
        module.display()
    )]
    KeyNotFound {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
    },
    /// Several EC private keys carry the configured label.
    #[error(
        "{count} EC private keys are labelled `{key}` on token `{token}` (PKCS#11 module {}): \
         relabel or delete them so that the label names exactly one key",
        module.display()
    )]
    DuplicateKey {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
        /// How many private keys carry it.
        count: usize,
    },
    /// The private key has no matching public key object, so its address is unknown.
    #[error(
        "EC private key `{key}` on token `{token}` (PKCS#11 module {}) has no public key \
         object with the same CKA_LABEL or CKA_ID: import the public key next to it",
        module.display()
    )]
    PublicKeyNotFound {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
    },
    /// The key is on another curve than secp256k1.
    #[error(
        "key `{key}` on token `{token}` (PKCS#11 module {}) is on curve {curve}, not secp256k1 \
         (1.3.132.0.10): generate a secp256k1 key under this label",
        module.display()
    )]
    WrongCurve {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
        /// The curve found: its OID (and common name), or the raw parameters in hex.
        curve: String,
    },
    /// The public key's CKA_EC_POINT is not a secp256k1 point.
    #[error(
        "the public key of `{key}` on token `{token}` (PKCS#11 module {}) is malformed: \
         {reason}; re-import the public key",
        module.display()
    )]
    MalformedPublicKey {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// After the session was reopened the label names a different key than at start.
    /// Fatal: the address this process announced no longer matches the key.
    #[error(
        "key `{key}` on token `{token}` (PKCS#11 module {}) changed while the relayer ran \
         (its public key differs from the one read at start): restart to adopt the new key",
        module.display()
    )]
    KeyChanged {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
    },
    /// A PKCS#11 call failed. Retryable unless the return value says the request itself
    /// is wrong (see [`KeyError::is_retryable`]).
    #[error(
        "C_{function:?} failed with {rv:?} for key `{key}` on token `{token}` (PKCS#11 module {}): \
         {}",
        module.display(),
        hint(*rv)
    )]
    Token {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
        /// The PKCS#11 function that failed.
        function: Function,
        /// Its return value.
        rv: RvError,
    },
    /// A PKCS#11 call failed in the wrapper (conversion, missing function), not in the
    /// token. Fatal: the module does not behave as PKCS#11 says.
    #[error(
        "PKCS#11 module {} misbehaved for key `{key}` on token `{token}` ({source}): use a \
         conforming module version",
        module.display()
    )]
    Module {
        /// The configured module path.
        module: PathBuf,
        /// The configured token label.
        token: String,
        /// The configured key label.
        key: String,
        /// The wrapper's error.
        source: cryptoki::error::Error,
    },
    /// The signer returned a signature that is malformed or does not verify under its
    /// public key. Fatal: the private and public objects under the label disagree.
    #[error(
        "{source_name} returned an unusable signature ({reason}): check that the private and \
         public key objects under the label belong to one key pair"
    )]
    BadSignature {
        /// [`crate::EcdsaKey::describe`] of the key.
        source_name: String,
        /// What is wrong with the signature.
        reason: &'static str,
    },
}

impl KeyError {
    /// Whether signing again later may succeed without anyone changing anything.
    ///
    /// Configuration and provisioning problems (missing module, token, key, wrong curve,
    /// refused PIN) are not retryable: they need an operator, and retrying a refused PIN
    /// would count towards the token's lockout. Token call failures are retryable unless
    /// their return value says the request can never succeed as made.
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyError::Token { rv, .. } => rv_is_transient(*rv),
            KeyError::TokenGone { .. } => true,
            KeyError::ModuleMissing { .. }
            | KeyError::ModuleLoad { .. }
            | KeyError::TokenNotFound { .. }
            | KeyError::DuplicateToken { .. }
            | KeyError::TokenNotInitialized { .. }
            | KeyError::UserPinNotInitialized { .. }
            | KeyError::PinIncorrect { .. }
            | KeyError::PinLocked { .. }
            | KeyError::KeyNotFound { .. }
            | KeyError::DuplicateKey { .. }
            | KeyError::PublicKeyNotFound { .. }
            | KeyError::WrongCurve { .. }
            | KeyError::MalformedPublicKey { .. }
            | KeyError::KeyChanged { .. }
            | KeyError::Module { .. }
            | KeyError::BadSignature { .. } => false,
        }
    }
}

/// Whether a failed token call may succeed when made again unchanged. The permanent ones
/// say the key, mechanism or arguments are wrong; everything else (device errors, lost
/// sessions, memory, busy) can clear up.
fn rv_is_transient(rv: RvError) -> bool {
    !matches!(
        rv,
        RvError::ArgumentsBad
            | RvError::AttributeTypeInvalid
            | RvError::AttributeValueInvalid
            | RvError::DataInvalid
            | RvError::DataLenRange
            | RvError::FunctionNotSupported
            | RvError::KeyFunctionNotPermitted
            | RvError::KeyTypeInconsistent
            | RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinLocked
            | RvError::PinExpired
            | RvError::UserPinNotInitialized
            | RvError::TokenNotRecognized
            | RvError::CurveNotSupported
    )
}

/// The operator's next step for a failed token call.
fn hint(rv: RvError) -> &'static str {
    match rv {
        RvError::DeviceRemoved | RvError::TokenNotPresent => {
            "reinsert or reconnect the token; signing resumes by itself"
        }
        RvError::SessionHandleInvalid | RvError::SessionClosed | RvError::UserNotLoggedIn => {
            "the session was lost and reopening it failed; it is retried"
        }
        RvError::KeyFunctionNotPermitted => "the key lacks CKA_SIGN=true: recreate it with it",
        RvError::MechanismInvalid | RvError::FunctionNotSupported => {
            "the token does not offer CKM_ECDSA on secp256k1: use a token that does"
        }
        _ if rv_is_transient(rv) => "it is retried; if it persists, check the token's health",
        _ => "the request cannot succeed as made: check the key's attributes",
    }
}

/// Labels as a human-readable list.
fn list(labels: &[String]) -> String {
    if labels.is_empty() {
        "none".to_owned()
    } else {
        labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
