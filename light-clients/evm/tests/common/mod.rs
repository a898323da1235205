//! Shared test helpers: fixture loading and self-signed headers.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod chain;

use std::path::PathBuf;

pub use chain::{key, sign, template};
use isthmus_light_client_evm::B256;

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
