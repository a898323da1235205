//! Shared test helpers: fixture loading and self-signed headers.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use isthmus_light_client_evm::{keccak256, public_key_address, Address, Header, B256, U256};
use k256::ecdsa::SigningKey;

/// The shared fixtures directory: `ISTHMUS_FIXTURES` if set, else `shared/fixtures`
/// beside the repository.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("ISTHMUS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        })
}

pub fn fixture(rel: &str) -> String {
    let path = fixtures_dir().join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} unreadable: {e}", path.display()))
}

pub fn testdata(rel: &str) -> String {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).join(rel);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("testdata {} unreadable: {e}", path.display()))
}

pub const CANCUN: &str = "ethereum/mainnet-block-21925176.json";
pub const PRE_LONDON: &str = "ethereum/mainnet-header-11408438.json";
pub const PROOF: &str = "ethereum/mainnet-block-21925176-proof-deposit-contract.json";

pub fn claimed_hash(json: &str) -> B256 {
    let v: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
    v["hash"]
        .as_str()
        .and_then(B256::from_hex)
        .expect("fixture has a hash")
}

/// A deterministic signing key and its address.
pub fn key(i: u8) -> (SigningKey, Address) {
    let mut secret = [0u8; 32];
    secret[31] = i;
    secret[0] = 0x42;
    let sk = SigningKey::from_bytes(&secret.into()).expect("valid secret");
    let addr = public_key_address(sk.verifying_key());
    (sk, addr)
}

/// r ‖ s ‖ v (v = 0/1) over a 32-byte digest.
pub fn sign(sk: &SigningKey, digest: &B256) -> [u8; 65] {
    let (sig, recid) = sk
        .sign_prehash_recoverable(&digest.0)
        .expect("signing succeeds");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = recid.to_byte();
    out
}

/// A plain pre-London header template (fields of no consensus meaning).
pub fn template(number: u64, parent: B256) -> Header {
    Header {
        parent_hash: parent,
        ommers_hash: keccak256(&[0xc0]),
        beneficiary: Address::ZERO,
        state_root: keccak256(b"state"),
        transactions_root: keccak256(&[0x80]),
        receipts_root: keccak256(&[0x80]),
        logs_bloom: Box::new([0u8; 256]),
        difficulty: U256::from(1),
        number,
        gas_limit: 30_000_000,
        gas_used: 0,
        timestamp: 1_700_000_000 + number * 2,
        extra_data: Vec::new(),
        mix_hash: B256::ZERO,
        nonce: [0u8; 8],
        base_fee_per_gas: None,
        withdrawals_root: None,
        blob_gas_used: None,
        excess_blob_gas: None,
        parent_beacon_block_root: None,
        requests_hash: None,
    }
}
