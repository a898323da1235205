//! The contract bindings (`src/contracts.rs`) are generated from the committed
//! artifacts at compile time: rebuild them whenever an artifact changes.
fn main() {
    println!("cargo:rerun-if-changed=../../onchain/evm/artifacts");
    println!("cargo:rerun-if-changed=build.rs");
}
