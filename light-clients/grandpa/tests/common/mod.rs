//! Shared helpers for the integration tests.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use std::path::PathBuf;

/// Root of the shared real-chain fixtures: `ISTHMUS_FIXTURES` when set, else
/// `shared/fixtures` beside the repository clone.
pub(crate) fn fixtures_dir() -> PathBuf {
    std::env::var_os("ISTHMUS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/fixtures"
            ))
        })
}

/// Bytes of a fixture file under `substrate/`.
pub(crate) fn substrate_fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join("substrate").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// Decodes `0x`-prefixed hex.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).expect("fixture hex is valid")
}
