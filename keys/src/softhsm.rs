//! Throwaway SoftHSM2 tokens for tests (feature `softhsm`).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`, and this process initialises
//! the module once ([`crate::pkcs11`]). So every token of a test process lives in one
//! directory: the first [`ThrowawayToken`] creates it (under the system temp dir, named by
//! the process id), writes its `softhsm2.conf`, points `SOFTHSM2_CONF` at it and only
//! then loads the module. Later tokens are initialised in the same module, in process,
//! on its free slot. Directories left by processes that have exited are removed when the
//! next test process starts.
//!
//! Missing SoftHSM2 is a failure, never a skip: a test that silently does nothing would
//! hide that the HSM path is untested.

use crate::pkcs11::{context, find_slot, login, Pkcs11Spec, SECP256K1_EC_PARAMS};
use crate::{address_of, pkcs11};
use cryptoki::context::Pkcs11;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// Debian's SoftHSM2 module.
pub const DEBIAN_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// DER of the P-256 OID 1.2.840.10045.3.1.7, for wrong-curve tests.
pub const P256_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// A freshly initialised SoftHSM2 token with a user PIN, in this process's token directory.
///
/// Labels must be unique within the process (all tokens share one directory); use a
/// label per test.
pub struct ThrowawayToken {
    label: String,
    pin: Zeroizing<String>,
    module: PathBuf,
    context: Pkcs11,
}

/// The process-wide SoftHSM2 configuration: its directory and file.
struct Conf {
    path: PathBuf,
}

impl ThrowawayToken {
    /// Initialises a token labelled `label` with the SO PIN and user PIN.
    ///
    /// # Panics
    /// If the SoftHSM2 module is missing ("install Debian's softhsm2 (make test does)"),
    /// if a token with this label exists in the process, or if SoftHSM2 refuses.
    pub fn new(label: &str, so_pin: &str, pin: &str) -> Self {
        Self::init(label, so_pin, Some(pin))
    }

    /// Initialises a token whose security officer never set a user PIN, to test that
    /// opening a key on it says so. `pin()` is empty.
    ///
    /// # Panics
    /// As [`ThrowawayToken::new`].
    pub fn without_user_pin(label: &str, so_pin: &str) -> Self {
        Self::init(label, so_pin, None)
    }

    fn init(label: &str, so_pin: &str, pin: Option<&str>) -> Self {
        let module = module_path_from_env();
        if !module.exists() {
            panic!(
                "SoftHSM2's PKCS#11 module {} is missing: install Debian's softhsm2 \
                 (make test does), or set ISTHMUS_PKCS11_MODULE to a SoftHSM2 module",
                module.display()
            );
        }
        // The configuration must be in the environment before the module's C_Initialize.
        let _ = conf(&module);
        let context = context(&module).unwrap_or_else(|e| panic!("loading SoftHSM2: {e}"));

        // Two tests picking the same free slot at once would both initialise it, and a
        // listing while a token is initialised races inside SoftHSM2 (`slot_listing`).
        let _listing = pkcs11::slot_listing();
        let mut free = None;
        for slot in context.get_all_slots().expect("C_GetSlotList") {
            let info = context.get_token_info(slot).expect("C_GetTokenInfo");
            if info.token_initialized() {
                assert_ne!(
                    info.label().trim_end(),
                    label,
                    "a SoftHSM2 token labelled `{label}` exists in this test process already: \
                     give each ThrowawayToken its own label"
                );
            } else if free.is_none() {
                free = Some(slot);
            }
        }
        let slot = free.expect("SoftHSM2 always offers one uninitialised slot");
        context
            .init_token(slot, &AuthPin::from(so_pin), label)
            .unwrap_or_else(|e| panic!("C_InitToken `{label}`: {e}"));
        if let Some(pin) = pin {
            let session = context
                .open_rw_session(slot)
                .unwrap_or_else(|e| panic!("C_OpenSession on new token `{label}`: {e}"));
            session
                .login(UserType::So, Some(&AuthPin::from(so_pin)))
                .unwrap_or_else(|e| panic!("C_Login as SO on new token `{label}`: {e}"));
            session
                .init_pin(&AuthPin::from(pin))
                .unwrap_or_else(|e| panic!("C_InitPIN on new token `{label}`: {e}"));
        }
        Self {
            label: label.to_owned(),
            pin: Zeroizing::new(pin.unwrap_or_default().to_owned()),
            module,
            context,
        }
    }

    /// The PKCS#11 module the token is in.
    pub fn module_path(&self) -> &Path {
        &self.module
    }

    /// The `softhsm2.conf` naming the token directory; pass it as `SOFTHSM2_CONF` to
    /// child processes that should see this token.
    pub fn conf_path(&self) -> &Path {
        &conf(&self.module).path
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The token's user PIN.
    pub fn pin(&self) -> &str {
        &self.pin
    }

    /// The spec that opens the key labelled `key` on this token.
    pub fn spec(&self, key: &str) -> Pkcs11Spec {
        Pkcs11Spec {
            module: self.module.clone(),
            token: self.label.clone(),
            key: key.to_owned(),
            pin: self.pin.clone(),
        }
    }

    /// Generates a secp256k1 key pair inside the token under `key_label` (private key
    /// sensitive and not extractable) and returns its address.
    pub fn generate_secp256k1(&self, key_label: &str) -> [u8; 20] {
        let (session, public) = self.generate(key_label, &SECP256K1_EC_PARAMS);
        let point = session
            .get_attributes(public, &[AttributeType::EcPoint])
            .expect("C_GetAttributeValue CKA_EC_POINT")
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            })
            .expect("a public key has CKA_EC_POINT");
        let public_key =
            pkcs11::parse_ec_point(&point).unwrap_or_else(|e| panic!("SoftHSM2's point: {e}"));
        address_of(&public_key)
    }

    /// Imports the secp256k1 secret `secret` into the token under `key_label` (private
    /// key sensitive and not extractable from then on, with its public key beside it)
    /// and returns its address: for tests whose ledgers already trust a known key (a
    /// funded development account, a member the contracts list), as an operator imports
    /// an existing key into an HSM in a key ceremony.
    pub fn import_secp256k1(&self, key_label: &str, secret: &[u8; 32]) -> [u8; 20] {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        let secret = k256::SecretKey::from_slice(secret)
            .unwrap_or_else(|e| panic!("importing `{key_label}`: not a secp256k1 secret: {e}"));
        let public_key = secret.public_key();
        let point = public_key.to_encoded_point(false);
        // CKA_EC_POINT holds the point as a DER OCTET STRING.
        let mut ec_point = vec![0x04, 0x41];
        ec_point.extend_from_slice(point.as_bytes());
        let session = self.session(key_label);
        let label = Attribute::Label(key_label.as_bytes().to_vec());
        let id = Attribute::Id(key_label.as_bytes().to_vec());
        let value = Zeroizing::new(secret.to_bytes().to_vec());
        session
            .create_object(&[
                Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::EC),
                Attribute::EcParams(SECP256K1_EC_PARAMS.to_vec()),
                Attribute::Value(value.to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                label.clone(),
                id.clone(),
            ])
            .unwrap_or_else(|e| {
                panic!(
                    "C_CreateObject private `{key_label}` on `{}`: {e}",
                    self.label
                )
            });
        session
            .create_object(&[
                Attribute::Class(cryptoki::object::ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(cryptoki::object::KeyType::EC),
                Attribute::EcParams(SECP256K1_EC_PARAMS.to_vec()),
                Attribute::EcPoint(ec_point),
                Attribute::Token(true),
                Attribute::Verify(true),
                label,
                id,
            ])
            .unwrap_or_else(|e| {
                panic!(
                    "C_CreateObject public `{key_label}` on `{}`: {e}",
                    self.label
                )
            });
        address_of(&public_key)
    }

    /// Generates a P-256 key pair under `key_label`, to test that other curves are refused.
    pub fn generate_p256(&self, key_label: &str) {
        self.generate(key_label, &P256_EC_PARAMS);
    }

    /// A read-write session on the token, logged in as the user.
    fn session(&self, key_label: &str) -> Session {
        let spec = self.spec(key_label);
        let slot = find_slot(&self.context, &spec).unwrap_or_else(|e| panic!("{e}"));
        let session = self
            .context
            .open_rw_session(slot)
            .unwrap_or_else(|e| panic!("C_OpenSession on `{}`: {e}", self.label));
        login(&session, &spec).unwrap_or_else(|e| panic!("{e}"));
        session
    }

    /// Generates an EC key pair on the curve `ec_params`; the session used and the
    /// public key's handle in it.
    fn generate(&self, key_label: &str, ec_params: &[u8]) -> (Session, ObjectHandle) {
        let session = self.session(key_label);
        let label = Attribute::Label(key_label.as_bytes().to_vec());
        let id = Attribute::Id(key_label.as_bytes().to_vec());
        let public = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(ec_params.to_vec()),
            label.clone(),
            id.clone(),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            label,
            id,
        ];
        let (public, _private) = session
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .unwrap_or_else(|e| panic!("C_GenerateKeyPair `{key_label}` on `{}`: {e}", self.label));
        (session, public)
    }
}

impl std::fmt::Debug for ThrowawayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrowawayToken")
            .field("label", &self.label)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

/// `ISTHMUS_PKCS11_MODULE`, or Debian's SoftHSM2 module.
pub fn module_path_from_env() -> PathBuf {
    std::env::var_os("ISTHMUS_PKCS11_MODULE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEBIAN_MODULE))
}

/// The process's SoftHSM2 configuration, created (and put in the environment) once.
fn conf(module: &Path) -> &'static Conf {
    static CONF: OnceLock<Conf> = OnceLock::new();
    CONF.get_or_init(|| {
        // Initialised already, the module read another SOFTHSM2_CONF (or none): tokens
        // made now would go to that directory, possibly the machine's own.
        assert!(
            !pkcs11::is_loaded(module),
            "SoftHSM2 ({}) was initialised in this process before the first ThrowawayToken: \
             create a ThrowawayToken before opening any SoftHSM2 key",
            module.display()
        );
        let parent = std::env::temp_dir().join("isthmus-softhsm");
        remove_stale(&parent);
        let dir = parent.join(std::process::id().to_string());
        let tokens = dir.join("tokens");
        // A previous process with this pid left it: its tokens are not ours.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&tokens)
            .unwrap_or_else(|e| panic!("creating {}: {e}", tokens.display()));
        let path = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        // Edition 2021: set_var is safe. Set once, before the module is initialised.
        std::env::set_var("SOFTHSM2_CONF", &path);
        Conf { path }
    })
}

/// Removes token directories of test processes that are no longer running.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
