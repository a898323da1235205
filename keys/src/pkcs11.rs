//! [`Pkcs11Key`]: a secp256k1 key that lives in a PKCS#11 token and never leaves it.
//!
//! The token signs with `CKM_ECDSA` over the 32-byte digest and returns a bare (r, s);
//! this module normalises s to the low half and finds the recovery id by recovering
//! against the public key read from the token at open. The private key is only ever
//! referred to by handle: no attribute of it other than its label, type, id and curve
//! is read, and `CKA_VALUE` never is.
//!
//! A module is loaded and `C_Initialize`d once per process and path (`context`): a
//! second `C_Initialize` fails with `CKR_CRYPTOKI_ALREADY_INITIALIZED`, and every key on
//! the module's tokens shares the one library state.

use crate::error::RvError;
use crate::local::hex;
use crate::Unrecoverable;
use crate::{address_of, recoverable_from_raw, EcdsaKey, KeyError, RecoverableSignature};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use k256::ecdsa::VerifyingKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use zeroize::Zeroizing;

/// DER of the secp256k1 curve's OID 1.3.132.0.10, as CKA_EC_PARAMS holds it.
pub const SECP256K1_EC_PARAMS: [u8; 7] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];

/// Where a key is: module, token and key labels, and the user PIN that unlocks it.
#[derive(Clone)]
pub struct Pkcs11Spec {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (CKA token info label, without padding).
    pub token: String,
    /// The private key's CKA_LABEL.
    pub key: String,
    /// The user PIN. Zeroised on drop; never printed by `Debug` or any error.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Spec")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("key", &self.key)
            .field("pin", &"<redacted>")
            .finish()
    }
}

/// A secp256k1 key in a PKCS#11 token, reached through one logged-in session.
///
/// The session is behind a mutex because PKCS#11 sessions must not be used by two
/// threads at once; signing is serialised per key (open several keys on the same token
/// for parallel signing). A session found closed or logged out is reopened once per
/// signature.
pub struct Pkcs11Key {
    spec: Pkcs11Spec,
    context: Pkcs11,
    verifying_key: VerifyingKey,
    public_key: k256::PublicKey,
    address: [u8; 20],
    session: Mutex<Open>,
}

/// A logged-in session and the private key's handle in it.
struct Open {
    session: Session,
    private_key: ObjectHandle,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("module", &self.spec.module)
            .field("token", &self.spec.token)
            .field("key", &self.spec.key)
            .field("address", &format_args!("0x{}", hex(&self.address)))
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Loads the module (once per process), finds the token by label, logs in with the
    /// PIN and finds the secp256k1 key pair under the key label.
    pub fn open(spec: &Pkcs11Spec) -> Result<Self, KeyError> {
        let context = context(&spec.module)?;
        let (open, public_key) = open_session(&context, spec)?;
        let verifying_key = VerifyingKey::from(&public_key);
        Ok(Self {
            spec: spec.clone(),
            context,
            verifying_key,
            address: address_of(&public_key),
            public_key,
            session: Mutex::new(open),
        })
    }

    /// One `C_Sign` with the current session; the raw (r, s) on success.
    fn sign_raw(&self, open: &Open, digest: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        open.session
            .sign(&Mechanism::Ecdsa, open.private_key, digest)
            .map_err(|e| call_error(&self.spec, e))
    }
}

impl EcdsaKey for Pkcs11Key {
    fn address(&self) -> [u8; 20] {
        self.address
    }

    fn public_key(&self) -> k256::PublicKey {
        self.public_key
    }

    fn describe(&self) -> String {
        format!(
            "pkcs11 token `{}` key `{}` ({})",
            self.spec.token,
            self.spec.key,
            self.spec.module.display()
        )
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RecoverableSignature, KeyError> {
        let mut open = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let raw = match self.sign_raw(&open, digest) {
            Err(KeyError::Token { rv, .. }) if session_lost(rv) => {
                // Token reinserted, session closed or logged out elsewhere: start over once.
                let (reopened, public_key) =
                    open_session(&self.context, &self.spec).map_err(|e| match e {
                        // Not back yet: the next signature tries again.
                        KeyError::TokenNotFound { module, token, .. } => KeyError::TokenGone {
                            module,
                            token,
                            key: self.spec.key.clone(),
                        },
                        other => other,
                    })?;
                if public_key != self.public_key {
                    return Err(KeyError::KeyChanged {
                        module: self.spec.module.clone(),
                        token: self.spec.token.clone(),
                        key: self.spec.key.clone(),
                    });
                }
                *open = reopened;
                self.sign_raw(&open, digest)?
            }
            other => other?,
        };
        drop(open);
        if raw.len() != 64 {
            return Err(KeyError::BadSignature {
                source_name: self.describe(),
                reason: "CKM_ECDSA returned a signature that is not 64 bytes (r ‖ s)",
            });
        }
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&raw[..32]);
        s.copy_from_slice(&raw[32..]);
        recoverable_from_raw(r, s, digest, &self.verifying_key).map_err(|e| {
            KeyError::BadSignature {
                source_name: self.describe(),
                reason: match e {
                    Unrecoverable::OutOfRange => "r or s is zero or not below the group order",
                    Unrecoverable::OtherKey => {
                        "it does not recover to the token's public key under either recovery id"
                    }
                },
            }
        })
    }
}

/// Return values after which the session is gone but a new one may work.
fn session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::UserNotLoggedIn
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::CryptokiNotInitialized
    )
}

/// The module's process-wide context: loaded and initialised on first use, shared after.
///
/// Keyed by the canonical path so that two spellings of one file share one context.
pub(crate) fn context(module: &Path) -> Result<Pkcs11, KeyError> {
    let canonical = std::fs::canonicalize(module).map_err(|_| KeyError::ModuleMissing {
        module: module.to_path_buf(),
    })?;
    let mut modules = modules().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(context) = modules.get(&canonical) {
        return Ok(context.clone());
    }
    let load_error = |source| KeyError::ModuleLoad {
        module: module.to_path_buf(),
        source,
    };
    let context = Pkcs11::new(&canonical).map_err(load_error)?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another component of this process initialised it first: its state is ours too.
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_error(e)),
    }
    modules.insert(canonical, context.clone());
    Ok(context)
}

/// Whether the module at `module` has been loaded and initialised in this process.
#[cfg(feature = "softhsm")]
pub(crate) fn is_loaded(module: &Path) -> bool {
    let Ok(canonical) = std::fs::canonicalize(module) else {
        return false;
    };
    modules()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(&canonical)
}

/// The process-wide registry of initialised modules, by canonical path.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(Default::default)
}

/// Held around every slot listing of this process, and around initialising a token.
///
/// SoftHSM2 (2.6) keeps one uninitialised slot on offer by adding a slot inside
/// `C_GetSlotList`, without a lock, under the id "number of tokens". Two threads
/// listing at once after a token was initialised both add that id, and the module
/// aborts the process (`SlotManager::insertToken: Assertion 'result.second'`).
/// Listing slots is rare (opening a key), so every module is serialised here.
pub(crate) fn slot_listing() -> std::sync::MutexGuard<'static, ()> {
    static LISTING: Mutex<()> = Mutex::new(());
    LISTING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The slot whose token carries `label`.
pub(crate) fn find_slot(context: &Pkcs11, spec: &Pkcs11Spec) -> Result<Slot, KeyError> {
    let module_error = |e| call_error(spec, e);
    let mut present = Vec::new();
    let mut matching = Vec::new();
    let slots = {
        let _listing = slot_listing();
        context.get_slots_with_token().map_err(module_error)?
    };
    for slot in slots {
        let info = match context.get_token_info(slot) {
            Ok(info) => info,
            // Removed between the listing and now: it is not there.
            Err(cryptoki::error::Error::Pkcs11(
                RvError::TokenNotPresent | RvError::DeviceRemoved | RvError::SlotIdInvalid,
                _,
            )) => continue,
            Err(e) => return Err(module_error(e)),
        };
        let label = info.label().trim_end().to_owned();
        if label == spec.token {
            matching.push((slot, info.token_initialized()));
        }
        if info.token_initialized() {
            present.push(label);
        }
    }
    match matching.as_slice() {
        [] => Err(KeyError::TokenNotFound {
            module: spec.module.clone(),
            token: spec.token.clone(),
            present,
        }),
        [(_, false)] => Err(KeyError::TokenNotInitialized {
            module: spec.module.clone(),
            token: spec.token.clone(),
        }),
        [(slot, true)] => Ok(*slot),
        several => Err(KeyError::DuplicateToken {
            module: spec.module.clone(),
            token: spec.token.clone(),
            count: several.len(),
        }),
    }
}

/// Logs the session in as the user. Being logged in already (login state is per token
/// and application, so another session of this process may have done it) is success.
///
/// A consequence of that PKCS#11 rule: while one key of this process is logged in to a
/// token, opening another key on the same token succeeds whatever PIN its spec holds,
/// because the token does not check a PIN for a login it already has.
pub(crate) fn login(session: &Session, spec: &Pkcs11Spec) -> Result<(), KeyError> {
    let pin = AuthPin::from(spec.pin.as_str());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(cryptoki::error::Error::Pkcs11(
            rv @ (RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange),
            _,
        )) => Err(KeyError::PinIncorrect {
            module: spec.module.clone(),
            token: spec.token.clone(),
            rv,
        }),
        Err(cryptoki::error::Error::Pkcs11(RvError::PinLocked, _)) => Err(KeyError::PinLocked {
            module: spec.module.clone(),
            token: spec.token.clone(),
        }),
        Err(cryptoki::error::Error::Pkcs11(RvError::UserPinNotInitialized, _)) => {
            Err(KeyError::UserPinNotInitialized {
                module: spec.module.clone(),
                token: spec.token.clone(),
            })
        }
        Err(e) => Err(call_error(spec, e)),
    }
}

/// Finds the token, opens a read-only session, logs in and finds the key pair.
fn open_session(context: &Pkcs11, spec: &Pkcs11Spec) -> Result<(Open, k256::PublicKey), KeyError> {
    let slot = find_slot(context, spec)?;
    let session = context
        .open_ro_session(slot)
        .map_err(|e| call_error(spec, e))?;
    login(&session, spec)?;
    let (private_key, public_key) = find_key_pair(&session, spec)?;
    Ok((
        Open {
            session,
            private_key,
        },
        public_key,
    ))
}

/// The private key under the label and the public key that goes with it.
fn find_key_pair(
    session: &Session,
    spec: &Pkcs11Spec,
) -> Result<(ObjectHandle, k256::PublicKey), KeyError> {
    let call = |e| call_error(spec, e);
    let label = Attribute::Label(spec.key.as_bytes().to_vec());
    let private_keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            label.clone(),
        ])
        .map_err(call)?;
    let private_key = match private_keys.as_slice() {
        [] => {
            return Err(KeyError::KeyNotFound {
                module: spec.module.clone(),
                token: spec.token.clone(),
                key: spec.key.clone(),
            })
        }
        [one] => *one,
        several => {
            return Err(KeyError::DuplicateKey {
                module: spec.module.clone(),
                token: spec.token.clone(),
                key: spec.key.clone(),
                count: several.len(),
            })
        }
    };
    // Only public, non-secret attributes of the private key: its curve and id.
    let private_attributes = session
        .get_attributes(private_key, &[AttributeType::EcParams, AttributeType::Id])
        .map_err(call)?;
    let mut id = None;
    for attribute in private_attributes {
        match attribute {
            Attribute::EcParams(params) => check_curve(&params, spec)?,
            Attribute::Id(value) if !value.is_empty() => id = Some(value),
            _ => {}
        }
    }

    let public_template = |by: Attribute| {
        vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            by,
        ]
    };
    let mut public_keys = session
        .find_objects(&public_template(label))
        .map_err(call)?;
    if public_keys.len() != 1 {
        public_keys = match id {
            Some(id) => session
                .find_objects(&public_template(Attribute::Id(id)))
                .map_err(call)?,
            None => Vec::new(),
        };
    }
    let [public_handle] = public_keys.as_slice() else {
        return Err(KeyError::PublicKeyNotFound {
            module: spec.module.clone(),
            token: spec.token.clone(),
            key: spec.key.clone(),
        });
    };
    let attributes = session
        .get_attributes(
            *public_handle,
            &[AttributeType::EcParams, AttributeType::EcPoint],
        )
        .map_err(call)?;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::EcParams(params) => check_curve(&params, spec)?,
            Attribute::EcPoint(value) => point = Some(value),
            _ => {}
        }
    }
    let malformed = |reason| KeyError::MalformedPublicKey {
        module: spec.module.clone(),
        token: spec.token.clone(),
        key: spec.key.clone(),
        reason,
    };
    let point = point.ok_or_else(|| malformed("it has no CKA_EC_POINT"))?;
    let public_key = parse_ec_point(&point).map_err(malformed)?;
    Ok((private_key, public_key))
}

/// Refuses CKA_EC_PARAMS other than the secp256k1 named curve.
fn check_curve(params: &[u8], spec: &Pkcs11Spec) -> Result<(), KeyError> {
    if params == SECP256K1_EC_PARAMS {
        return Ok(());
    }
    Err(KeyError::WrongCurve {
        module: spec.module.clone(),
        token: spec.token.clone(),
        key: spec.key.clone(),
        curve: describe_curve(params),
    })
}

/// A curve's parameters for an error message: its OID and common name when it is a
/// named curve, its hex otherwise.
pub(crate) fn describe_curve(params: &[u8]) -> String {
    match decode_oid(params) {
        Some(oid) => match curve_name(&oid) {
            Some(name) => format!("{oid} ({name})"),
            None => oid,
        },
        None => format!("with explicit or unknown parameters 0x{}", hex(params)),
    }
}

fn curve_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.3.132.0.10" => "secp256k1",
        "1.3.101.112" => "Ed25519",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        _ => return None,
    })
}

/// The dotted form of a DER OBJECT IDENTIFIER, or `None` if `der` is not exactly one.
pub(crate) fn decode_oid(der: &[u8]) -> Option<String> {
    let [0x06, len, body @ ..] = der else {
        return None;
    };
    if usize::from(*len) != body.len() || body.is_empty() || *len >= 0x80 {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in body.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - 40 * first);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == body.len() {
            return None;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A secp256k1 public key from CKA_EC_POINT: a DER OCTET STRING wrapping the SEC1 point,
/// as PKCS#11 specifies, or the bare point, as some tokens return.
pub(crate) fn parse_ec_point(bytes: &[u8]) -> Result<k256::PublicKey, &'static str> {
    let point = unwrap_octet_string(bytes).unwrap_or(bytes);
    k256::PublicKey::from_sec1_bytes(point)
        .map_err(|_| "CKA_EC_POINT is not a SEC1 point on secp256k1")
}

/// The content of a DER OCTET STRING that spans all of `bytes`, if it is one.
fn unwrap_octet_string(bytes: &[u8]) -> Option<&[u8]> {
    let (len, content) = match bytes {
        [0x04, len @ 0..=0x7f, rest @ ..] => (usize::from(*len), rest),
        [0x04, 0x81, len @ 0x80..=0xff, rest @ ..] => (usize::from(*len), rest),
        _ => return None,
    };
    (len == content.len()).then_some(content)
}

/// A failed PKCS#11 call as a [`KeyError`] naming where it happened.
fn call_error(spec: &Pkcs11Spec, error: cryptoki::error::Error) -> KeyError {
    match error {
        cryptoki::error::Error::Pkcs11(rv, function) => KeyError::Token {
            module: spec.module.clone(),
            token: spec.token.clone(),
            key: spec.key.clone(),
            function,
            rv,
        },
        other => KeyError::Module {
            module: spec.module.clone(),
            token: spec.token.clone(),
            key: spec.key.clone(),
            source: other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::sec1::ToEncodedPoint;

    fn point() -> Vec<u8> {
        let secret = k256::SecretKey::from_bytes(&[3u8; 32].into()).expect("valid scalar");
        secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn ec_point_wrapped_raw_and_compressed() {
        let raw = point();
        let expected = k256::PublicKey::from_sec1_bytes(&raw).expect("valid");
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&raw);
        let mut long_form = vec![0x04, 0x81, 0x41];
        long_form.extend_from_slice(&raw);
        assert_eq!(parse_ec_point(&raw), Ok(expected));
        assert_eq!(parse_ec_point(&wrapped), Ok(expected));
        // 0x81 with a length below 0x80 is not DER; it is not unwrapped (and not a point).
        assert!(parse_ec_point(&long_form).is_err());
        let compressed = expected.to_encoded_point(true);
        let mut wrapped_compressed = vec![0x04, 0x21];
        wrapped_compressed.extend_from_slice(compressed.as_bytes());
        assert_eq!(parse_ec_point(&wrapped_compressed), Ok(expected));
        assert!(parse_ec_point(&wrapped[..40]).is_err());
        assert!(parse_ec_point(&[]).is_err());
    }

    #[test]
    fn oids_decode() {
        assert_eq!(
            decode_oid(&SECP256K1_EC_PARAMS).as_deref(),
            Some("1.3.132.0.10")
        );
        let p256 = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
        assert_eq!(decode_oid(&p256).as_deref(), Some("1.2.840.10045.3.1.7"));
        assert_eq!(describe_curve(&p256), "1.2.840.10045.3.1.7 (P-256)");
        assert_eq!(decode_oid(&[0x06, 0x02, 0x2B, 0x81]), None);
        assert_eq!(decode_oid(&[0x13, 0x01, 0x41]), None);
        assert!(describe_curve(&[0x30, 0x00]).contains("0x3000"));
    }

    /// Untrusted token bytes never panic the decoders, whatever they are.
    #[test]
    fn decoders_take_any_bytes() {
        let mut state = [0u8; 32];
        for round in 0..20_000u32 {
            let mut hasher = tiny_keccak::Keccak::v256();
            tiny_keccak::Hasher::update(&mut hasher, &state);
            tiny_keccak::Hasher::update(&mut hasher, &round.to_le_bytes());
            tiny_keccak::Hasher::finalize(hasher, &mut state);
            let len = usize::from(state[0]) % 80;
            let mut bytes: Vec<u8> = state.iter().cycle().take(len).copied().collect();
            // Bias towards the shapes the decoders look for.
            match state[1] % 4 {
                0 if len > 2 => {
                    bytes[0] = 0x04;
                    bytes[1] = u8::try_from(len - 2).unwrap_or(0);
                }
                1 if len > 2 => {
                    bytes[0] = 0x06;
                    bytes[1] = u8::try_from(len - 2).unwrap_or(0);
                }
                _ => {}
            }
            let _ = parse_ec_point(&bytes);
            let _ = decode_oid(&bytes);
            let _ = describe_curve(&bytes);
        }
    }

    /// A session logged out behind the key's back (another session of the process
    /// logging out, a token reinserted) is reopened once and the signature succeeds.
    #[cfg(feature = "softhsm")]
    #[test]
    fn a_logged_out_session_is_reopened() {
        let token = crate::softhsm::ThrowawayToken::new("reopen", "so-1234", "user-1234");
        token.generate_secp256k1("k");
        let key = Pkcs11Key::open(&token.spec("k")).expect("opens");
        let digest = [5u8; 32];
        key.sign_prehash(&digest).expect("signs");
        let slot = find_slot(&key.context, &key.spec).expect("slot");
        let before = key.session.lock().expect("lock").session.handle();
        // Login state is per token: this logs the key's session out too.
        let other = key.context.open_ro_session(slot).expect("session");
        other.logout().expect("logout");
        drop(other);
        let sig = key.sign_prehash(&digest).expect("signs after reopening");
        let signature = sig.signature().expect("in range");
        let recovered =
            VerifyingKey::recover_from_prehash(&digest, &signature, sig.k256_recovery_id())
                .expect("recovers");
        assert_eq!(address_of(&recovered.into()), key.address());
        let after = key.session.lock().expect("lock").session.handle();
        assert_ne!(before, after, "the session was replaced");
    }
}
