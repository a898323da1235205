//! Keys in a real PKCS#11 token: Debian's SoftHSM2, one throwaway token per test.

use isthmus_keys::pkcs11::{Pkcs11Key, Pkcs11Spec};
use isthmus_keys::softhsm::ThrowawayToken;
use isthmus_keys::{EcdsaKey, KeyError, RecoverableSignature};
use k256::ecdsa::VerifyingKey;
use std::sync::Arc;
use tiny_keccak::{Hasher, Keccak};
use zeroize::Zeroizing;

const SO_PIN: &str = "so-pin-1234";
const PIN: &str = "user-pin-5678";

/// Digests that differ from run to run, reproducible from the printed seed.
fn digests(count: usize) -> Vec<[u8; 32]> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    println!("digest seed {seed}");
    (0..count)
        .map(|i| {
            let mut hasher = Keccak::v256();
            hasher.update(&seed.to_le_bytes());
            hasher.update(&i.to_le_bytes());
            let mut digest = [0u8; 32];
            hasher.finalize(&mut digest);
            digest
        })
        .collect()
}

/// Checks everything a verifier relies on: low s, recovery to the key, the 27/28 byte.
fn check(key: &dyn EcdsaKey, digest: &[u8; 32], sig: &RecoverableSignature) {
    let signature = sig.signature().expect("r and s in range");
    assert!(
        signature.normalize_s().is_none(),
        "s is high for digest {digest:02x?}"
    );
    assert!(sig.recovery_id <= 1);
    let recovered = VerifyingKey::recover_from_prehash(digest, &signature, sig.k256_recovery_id())
        .expect("recovers");
    assert_eq!(k256::PublicKey::from(&recovered), key.public_key());
    assert_eq!(isthmus_keys::address_of(&recovered.into()), key.address());
    let rsv = sig.to_rsv27();
    assert!(rsv[64] == 27 || rsv[64] == 28);
    assert_eq!(&rsv[..32], &sig.r);
    assert_eq!(&rsv[32..64], &sig.s);
}

fn open_err(spec: &Pkcs11Spec) -> KeyError {
    Pkcs11Key::open(spec).expect_err("open must fail")
}

#[test]
fn a_generated_key_signs_200_digests_that_recover_to_its_address() {
    let token = ThrowawayToken::new("sign-200", SO_PIN, PIN);
    let address = token.generate_secp256k1("attestation");
    let key = Pkcs11Key::open(&token.spec("attestation")).expect("opens");
    assert_eq!(key.address(), address);
    assert_eq!(isthmus_keys::address_of(&key.public_key()), address);
    assert_eq!(
        key.describe(),
        format!(
            "pkcs11 token `sign-200` key `attestation` ({})",
            token.module_path().display()
        )
    );
    let mut parities = [0usize; 2];
    for digest in digests(200) {
        let sig = key.sign_prehash(&digest).expect("signs");
        check(&key, &digest, &sig);
        parities[usize::from(sig.recovery_id)] += 1;
    }
    // Both recovery ids occur (each with probability 1/2): the derivation is exercised.
    assert!(parities[0] > 0 && parities[1] > 0, "{parities:?}");
}

#[test]
fn local_key_is_anvils_first_account_and_signs_like_k256() {
    let secret = hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
        .expect("hex");
    let secret = k256::SecretKey::from_slice(&secret).expect("valid scalar");
    let key = isthmus_keys::LocalKey::new(&secret);
    assert_eq!(
        hex::encode(key.address()),
        "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266".to_lowercase()
    );
    assert!(!format!("{key:?}").contains("ac0974be"));
    assert!(key.describe().contains("f39fd6e5"));
    let signing_key = k256::ecdsa::SigningKey::from(&secret);
    for digest in digests(50) {
        let sig = key.sign_prehash(&digest).expect("signs");
        check(&key, &digest, &sig);
        let (expected, id) = signing_key
            .sign_prehash_recoverable(&digest)
            .expect("k256 signs");
        let expected = expected.normalize_s().unwrap_or(expected);
        assert_eq!(sig.signature().expect("valid"), expected);
        assert_eq!(sig.recovery_id, id.to_byte());
    }
}

#[test]
fn a_missing_module_is_named() {
    let spec = Pkcs11Spec {
        module: "/nonexistent/libpkcs11-nope.so".into(),
        token: "t".into(),
        key: "k".into(),
        pin: Zeroizing::new(PIN.into()),
    };
    let err = open_err(&spec);
    assert!(matches!(err, KeyError::ModuleMissing { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("/nonexistent/libpkcs11-nope.so"), "{text}");
    assert!(text.contains("install"), "{text}");
}

#[test]
fn a_file_that_is_not_a_module_is_named() {
    let dir = std::env::temp_dir().join(format!("isthmus-keys-notamodule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let module = dir.join("libnot-pkcs11.so");
    std::fs::write(&module, b"not an ELF file").expect("write");
    let spec = Pkcs11Spec {
        module: module.clone(),
        token: "t".into(),
        key: "k".into(),
        pin: Zeroizing::new(PIN.into()),
    };
    let err = open_err(&spec);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(err, KeyError::ModuleLoad { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains(&module.display().to_string()), "{text}");
    assert!(text.contains("could not be loaded"), "{text}");
}

#[test]
fn an_absent_token_lists_the_labels_present() {
    let token = ThrowawayToken::new("present-token", SO_PIN, PIN);
    token.generate_secp256k1("k");
    let mut spec = token.spec("k");
    spec.token = "absent-token".into();
    let err = open_err(&spec);
    assert!(matches!(err, KeyError::TokenNotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("no token labelled `absent-token`"), "{text}");
    assert!(text.contains("`present-token`"), "{text}");
    assert!(
        text.contains(&token.module_path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("initialise the token"), "{text}");
}

#[test]
fn a_wrong_pin_is_refused_without_showing_it() {
    let token = ThrowawayToken::new("wrong-pin", SO_PIN, PIN);
    token.generate_secp256k1("k");
    let mut spec = token.spec("k");
    spec.pin = Zeroizing::new("not-the-pin-24680".into());
    assert!(!format!("{spec:?}").contains("24680"));
    let err = open_err(&spec);
    assert!(matches!(err, KeyError::PinIncorrect { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("refused the PIN"), "{text}");
    assert!(text.contains("`wrong-pin`"), "{text}");
    assert!(text.contains("fix the configured user PIN"), "{text}");
    assert!(
        !text.contains("24680") && !format!("{err:?}").contains("24680"),
        "{text}"
    );
    assert!(!text.contains(PIN), "{text}");
    // The right PIN still works: the refusal did not lock the token.
    Pkcs11Key::open(&token.spec("k")).expect("opens with the right PIN");
}

#[test]
fn an_absent_key_is_named() {
    let token = ThrowawayToken::new("absent-key", SO_PIN, PIN);
    token.generate_secp256k1("present");
    let err = open_err(&token.spec("missing"));
    assert!(matches!(err, KeyError::KeyNotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(
        text.contains("no EC private key labelled `missing`"),
        "{text}"
    );
    assert!(text.contains("token `absent-key`"), "{text}");
    assert!(text.contains("generate or import"), "{text}");
}

#[test]
fn two_keys_under_one_label_are_refused() {
    let token = ThrowawayToken::new("dup-key", SO_PIN, PIN);
    token.generate_secp256k1("twice");
    token.generate_secp256k1("twice");
    let err = open_err(&token.spec("twice"));
    assert!(
        matches!(err, KeyError::DuplicateKey { count: 2, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    println!("{text}");
    assert!(
        text.contains("2 EC private keys are labelled `twice`"),
        "{text}"
    );
}

#[test]
fn a_p256_key_is_refused_naming_its_curve() {
    let token = ThrowawayToken::new("p256", SO_PIN, PIN);
    token.generate_p256("attestation");
    let err = open_err(&token.spec("attestation"));
    assert!(matches!(err, KeyError::WrongCurve { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("1.2.840.10045.3.1.7 (P-256)"), "{text}");
    assert!(text.contains("not secp256k1"), "{text}");
    assert!(text.contains("key `attestation` on token `p256`"), "{text}");
}

#[test]
fn four_threads_sign_through_one_key() {
    let token = ThrowawayToken::new("threads", SO_PIN, PIN);
    token.generate_secp256k1("shared");
    let key = Arc::new(Pkcs11Key::open(&token.spec("shared")).expect("opens"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for digest in digests(50) {
                    let sig = key.sign_prehash(&digest).expect("signs");
                    check(key.as_ref(), &digest, &sig);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("signing thread");
    }
}

/// SoftHSM2 adds a slot inside `C_GetSlotList` without a lock: threads that set up
/// tokens while others open keys can make the module abort the whole test process
/// (`SlotManager::insertToken`, seen once in CI) unless every listing goes through
/// one lock.
#[test]
fn tokens_set_up_while_other_threads_open_keys_keep_the_module_alive() {
    let threads: Vec<_> = (0..6)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..4 {
                    let token = ThrowawayToken::new(&format!("race-{t}-{i}"), SO_PIN, PIN);
                    let address = token.generate_secp256k1("k");
                    for _ in 0..3 {
                        let key = Pkcs11Key::open(&token.spec("k")).expect("opens");
                        assert_eq!(key.address(), address);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("token thread");
    }
}

#[test]
fn two_keys_on_one_token_and_debug_without_pin() {
    let token = ThrowawayToken::new("two-keys", SO_PIN, PIN);
    let a = token.generate_secp256k1("a");
    let b = token.generate_secp256k1("b");
    assert_ne!(a, b);
    let key_a = Pkcs11Key::open(&token.spec("a")).expect("opens a");
    // The second login on the token finds the user logged in already: that is fine.
    let key_b = Pkcs11Key::open(&token.spec("b")).expect("opens b");
    assert_eq!((key_a.address(), key_b.address()), (a, b));
    let digest = [9u8; 32];
    check(
        &key_a,
        &digest,
        &key_a.sign_prehash(&digest).expect("a signs"),
    );
    drop(key_a);
    // Closing a's session leaves b's logged in.
    check(
        &key_b,
        &digest,
        &key_b.sign_prehash(&digest).expect("b signs"),
    );
    let debug = format!("{key_b:?} {:?}", token.spec("b"));
    assert!(!debug.contains(PIN), "{debug}");
    assert!(debug.contains("two-keys"), "{debug}");
    let dyn_key: Arc<dyn EcdsaKey> = Arc::new(key_b);
    assert!(dyn_key.describe().contains("key `b`"));
}

#[test]
fn a_token_without_user_pin_says_so() {
    let token = ThrowawayToken::without_user_pin("no-user-pin", SO_PIN);
    let mut spec = token.spec("k");
    spec.pin = Zeroizing::new("some-pin-13579".into());
    let err = open_err(&spec);
    assert!(
        matches!(err, KeyError::UserPinNotInitialized { .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    println!("{text}");
    assert!(text.contains("token `no-user-pin`"), "{text}");
    assert!(text.contains("has no user PIN"), "{text}");
    assert!(!text.contains("13579"), "{text}");
}

#[test]
fn an_imported_key_signs_as_its_known_address() {
    let token = ThrowawayToken::new("import", SO_PIN, PIN);
    // anvil's first development account.
    let secret: [u8; 32] =
        hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
            .expect("hex")
            .try_into()
            .expect("32 bytes");
    let address = token.import_secp256k1("submitter", &secret);
    assert_eq!(
        hex::encode(address),
        "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    );
    let key = Pkcs11Key::open(&token.spec("submitter")).expect("opens");
    assert_eq!(key.address(), address);
    for digest in digests(20) {
        let sig = key.sign_prehash(&digest).expect("signs");
        check(&key, &digest, &sig);
    }
}
