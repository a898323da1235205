//! Where signing keys come from, and how they are read without ever being shown.

use std::fmt;
use std::path::PathBuf;

use figment::value::magic::RelativePathBuf;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::address::EvmAddress;
use crate::error::ConfigError;
use crate::secret::Secret;
use isthmus_keys::EcdsaKey;

/// Where a signing key is read from.
///
/// Keys are never written into the configuration file: a file is copied, shared and
/// committed far more often than a secret should be. The accepted forms are
/// `key = { env = "VAR" }` (the variable holds the key), `key = { file = "path" }`
/// (the file holds it; a relative path is resolved against the directory of the
/// configuration file that names it) and, for secp256k1 keys that must never leave an
/// HSM, `key = { pkcs11 = { module = "...", token = "...", key = "...", pin = { env =
/// "VAR" } } }`.
#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
    /// The named environment variable holds the key.
    Env(String),
    /// The file holds the key.
    File(RelativePathBuf),
    /// The key lives in a PKCS#11 token (an HSM) and never leaves it: the relayer asks
    /// the token to sign.
    Pkcs11(Pkcs11Source),
    /// The key was written into the configuration itself. The value is dropped while
    /// parsing; [`crate::Config::validate`] reports this as a problem, so every other
    /// mistake in the file is reported in the same run.
    Inline,
}

impl KeySource {
    /// A human description of the source that never contains key material, e.g.
    /// ``environment variable `BANK_A_KEY` ``.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env(var) => format!("environment variable `{var}`"),
            KeySource::File(path) => format!("file `{}`", path.relative().display()),
            KeySource::Pkcs11(p) => format!(
                "PKCS#11 key `{}` in token `{}` (module `{}`)",
                p.key,
                p.token,
                p.module.relative().display()
            ),
            KeySource::Inline => "an inline value".to_owned(),
        }
    }

    /// Opens a secp256k1 signing key: read into memory from an environment variable
    /// or a file, or found in its PKCS#11 token (logged in with its PIN), where it
    /// stays. The error names the source and never quotes a key or a PIN.
    pub fn open_secp256k1(&self) -> Result<std::sync::Arc<dyn EcdsaKey>, ConfigError> {
        match self {
            KeySource::Pkcs11(p) => {
                let pin = p.pin.read()?;
                let spec = isthmus_keys::pkcs11::Pkcs11Spec {
                    module: p.module.relative(),
                    token: p.token.clone(),
                    key: p.key.clone(),
                    pin: zeroize::Zeroizing::new(pin.expose().clone()),
                };
                let key = isthmus_keys::pkcs11::Pkcs11Key::open(&spec).map_err(|e| {
                    ConfigError::KeyToken {
                        source_desc: self.describe(),
                        reason: e.to_string(),
                        retryable: e.is_retryable(),
                    }
                })?;
                Ok(std::sync::Arc::new(key))
            }
            _ => {
                let key = self.load_secp256k1()?;
                Ok(std::sync::Arc::new(isthmus_keys::LocalKey::new(
                    key.expose(),
                )))
            }
        }
    }

    /// Reads the raw key text (trimmed) from its source.
    pub fn read(&self) -> Result<Secret<String>, ConfigError> {
        match self {
            KeySource::Env(var) => match std::env::var(var) {
                Ok(value) => Ok(Secret::new(value.trim().to_owned())),
                Err(std::env::VarError::NotPresent) => {
                    Err(ConfigError::KeyEnvMissing { var: var.clone() })
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::KeyFormat {
                    source_desc: self.describe(),
                    reason: "is not valid UTF-8".to_owned(),
                }),
            },
            KeySource::File(path) => {
                let path: PathBuf = path.relative();
                match std::fs::read_to_string(&path) {
                    Ok(text) => Ok(Secret::new(text.trim().to_owned())),
                    Err(source) => Err(ConfigError::KeyFile { path, source }),
                }
            }
            KeySource::Pkcs11(_) => Err(ConfigError::KeyFormat {
                source_desc: self.describe(),
                reason: "never leaves its token: this use needs a key from a file or an \
                         environment variable"
                    .to_owned(),
            }),
            KeySource::Inline => Err(ConfigError::KeyInline),
        }
    }

    /// Reads a secp256k1 secret key: 32 bytes as 64 hex digits, `0x` prefix optional.
    /// The key is checked to be a valid scalar (non-zero, below the curve order).
    pub fn load_secp256k1(&self) -> Result<Secp256k1Key, ConfigError> {
        let text = self.read()?;
        let digits = text.expose().strip_prefix("0x").unwrap_or(text.expose());
        let format_err = |reason: &str| ConfigError::KeyFormat {
            source_desc: self.describe(),
            reason: reason.to_owned(),
        };
        if digits.len() != 64 {
            return Err(format_err(&format!(
                "does not hold a 32-byte hex key (found {} hex digits, expected 64)",
                digits.len()
            )));
        }
        let mut bytes = [0u8; 32];
        // The decoder's own error message quotes the offending character; ours does not.
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|_| format_err("holds characters that are not hex digits"))?;
        let secret = k256::SecretKey::from_slice(&bytes)
            .map_err(|_| format_err("holds a value that is not a valid secp256k1 secret key"))?;
        Ok(Secp256k1Key {
            secret: Secret::new(secret),
        })
    }

    /// Reads a Substrate sr25519 secret: a 32-byte hex seed (`0x` + 64 hex digits) or a
    /// secret URI: a development URI such as `//Alice`, or a 12/15/18/21/24-word
    /// mnemonic optionally followed by a derivation path.
    pub fn load_substrate_secret(&self) -> Result<Secret<String>, ConfigError> {
        let text = self.read()?;
        check_substrate_secret(text.expose()).map_err(|reason| ConfigError::KeyFormat {
            source_desc: self.describe(),
            reason: reason.to_owned(),
        })?;
        Ok(text)
    }
}

fn check_substrate_secret(text: &str) -> Result<(), &'static str> {
    if let Some(hex_seed) = text.strip_prefix("0x") {
        return if hex_seed.len() == 64 && hex_seed.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err("holds a 0x value that is not a 32-byte hex seed (64 hex digits)")
        };
    }
    let phrase = text.split('/').next().unwrap_or_default();
    let path = &text[phrase.len()..];
    let words: Vec<&str> = phrase.split_whitespace().collect();
    if words.is_empty() {
        return if path.starts_with("//") && path.len() > 2 {
            Ok(())
        } else {
            Err("is empty or not a secret URI (expected a hex seed, a mnemonic or a dev URI like //Alice)")
        };
    }
    if ![12, 15, 18, 21, 24].contains(&words.len()) {
        return Err("holds a phrase that is not a 12, 15, 18, 21 or 24-word mnemonic");
    }
    if !words
        .iter()
        .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err("holds a mnemonic with words that are not lowercase letters");
    }
    Ok(())
}

impl<'de> Deserialize<'de> for KeySource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeySourceVisitor)
    }
}

struct KeySourceVisitor;

const KEY_SOURCE_FIELDS: &[&str] = &["env", "file", "pkcs11"];

impl<'de> Visitor<'de> for KeySourceVisitor {
    type Value = KeySource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a key source: { env = \"VAR\" }, { file = \"path\" } or { pkcs11 = { module, token, key, pin } }",
        )
    }

    // An inline key: keep nothing of it, not even its length.
    fn visit_str<E: de::Error>(self, _value: &str) -> Result<KeySource, E> {
        Ok(KeySource::Inline)
    }

    fn visit_bytes<E: de::Error>(self, _value: &[u8]) -> Result<KeySource, E> {
        Ok(KeySource::Inline)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeySource, A::Error> {
        let mut found: Option<KeySource> = None;
        while let Some(field) = map.next_key::<String>()? {
            let source = match field.as_str() {
                "env" => KeySource::Env(map.next_value::<String>()?),
                "file" => KeySource::File(map.next_value::<RelativePathBuf>()?),
                "pkcs11" => KeySource::Pkcs11(map.next_value::<Pkcs11Source>()?),
                _ => return Err(de::Error::unknown_field(&field, KEY_SOURCE_FIELDS)),
            };
            if found.is_some() {
                return Err(de::Error::custom(
                    "a key source names more than one of `env`, `file` and `pkcs11`; keep exactly one",
                ));
            }
            found = Some(source);
        }
        found.ok_or_else(|| {
            de::Error::custom("a key source needs `env = \"VAR\"` or `file = \"path\"`")
        })
    }
}

/// A key in a PKCS#11 token: `{ module = "path", token = "label", key = "label", pin =
/// { env = "VAR" } }` (or `pin = { file = "path" }`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Source {
    /// The token's PKCS#11 module (a shared library), e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so` or the HSM vendor's.
    pub module: RelativePathBuf,
    /// The token's label.
    pub token: String,
    /// The private key's label (`CKA_LABEL`); its public key carries the same label.
    pub key: String,
    /// Where the user PIN is read from: `{ env = "VAR" }` or `{ file = "path" }`.
    pub pin: Box<KeySource>,
}

/// A secp256k1 secret key read from a [`KeySource`]. Prints as `[redacted]`.
#[derive(Clone, Debug)]
pub struct Secp256k1Key {
    secret: Secret<k256::SecretKey>,
}

impl Secp256k1Key {
    /// The secret key, for the signer only.
    pub fn expose(&self) -> &k256::SecretKey {
        self.secret.expose()
    }

    /// The Ethereum-style address of this key: the last 20 bytes of the keccak-256 of
    /// the uncompressed public key (without its 0x04 tag). This is the address the
    /// consortium configuration and the inbox contracts list as a signer.
    pub fn address(&self) -> EvmAddress {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let point = self.secret.expose().public_key().to_encoded_point(false);
        let hash = crate::address::keccak256(&point.as_bytes()[1..]);
        let mut bytes = [0u8; 20];
        bytes.copy_from_slice(&hash[12..]);
        EvmAddress::from_bytes(bytes)
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error"
)]
mod tests {
    use super::*;

    #[test]
    fn substrate_secrets() {
        assert!(check_substrate_secret("//Alice").is_ok());
        assert!(check_substrate_secret(&format!("0x{}", "ab".repeat(32))).is_ok());
        let phrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";
        assert!(check_substrate_secret(phrase).is_ok());
        assert!(check_substrate_secret(&format!("{phrase}//Alice")).is_ok());
        assert!(check_substrate_secret("").is_err());
        assert!(check_substrate_secret("//").is_err());
        assert!(check_substrate_secret("0x1234").is_err());
        assert!(check_substrate_secret("two words").is_err());
    }

    #[test]
    fn anvil_key_has_its_known_address() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "TEST_ANVIL_KEY",
                "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            );
            let key = KeySource::Env("TEST_ANVIL_KEY".into())
                .load_secp256k1()
                .map_err(|e| e.to_string())?;
            assert_eq!(
                key.address().to_string(),
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
            );
            assert_eq!(format!("{key:?}"), "Secp256k1Key { secret: [redacted] }");
            Ok(())
        });
    }
}
