//! Signing one 32-byte digest: a key in process against a key in SoftHSM2, same run.
//!
//! The token path adds a PKCS#11 round trip, SoftHSM2's own (OpenSSL) ECDSA and the
//! recovery-id search (two public-key recoveries); the ratio is what moving the
//! attestation key into an HSM costs per signature.
#![expect(missing_docs, reason = "criterion generates the entry point")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use isthmus_keys::pkcs11::Pkcs11Key;
use isthmus_keys::softhsm::ThrowawayToken;
use isthmus_keys::{EcdsaKey, LocalKey};

fn benches(c: &mut Criterion) {
    let secret = k256::SecretKey::from_slice(&[0x11; 32]).expect("valid scalar");
    let local = LocalKey::new(&secret);
    let token = ThrowawayToken::new("bench", "so-pin-1234", "user-pin-5678");
    token.generate_secp256k1("attestation");
    let hsm = Pkcs11Key::open(&token.spec("attestation")).expect("opens");

    let digest = [0x5a; 32];
    let mut group = c.benchmark_group("sign_prehash");
    group.bench_function("local_key", |b| {
        b.iter(|| local.sign_prehash(black_box(&digest)).expect("signs"))
    });
    group.bench_function("pkcs11_softhsm", |b| {
        b.iter(|| hsm.sign_prehash(black_box(&digest)).expect("signs"))
    });
    group.finish();

    // The share of the token path spent deriving the recovery id: one recovery
    // (the token path does one or two, one and a half on average).
    let (signature, id) = k256::ecdsa::SigningKey::from(&secret)
        .sign_prehash_recoverable(&digest)
        .expect("signs");
    c.bench_function("k256_recover_from_prehash", |b| {
        b.iter(|| {
            k256::ecdsa::VerifyingKey::recover_from_prehash(black_box(&digest), &signature, id)
                .expect("recovers")
        })
    });
}

criterion_group!(sign, benches);
criterion_main!(sign);
