//! The `development` genesis preset.
//!
//! Dev accounts are the well-known sr25519 keys of the `//Alice` … `//Ferdie` dev
//! seeds (subxt-signer's `dev::alice()` and friends), hard-coded as public keys so the
//! wasm need not carry key derivation. Alice is the sudo key and the Aura author.
//!
//! GRANDPA authorities are three ed25519 keys whose 32-byte secret seeds are
//! `keccak256("isthmus devnet grandpa authority i")` for i = 0, 1, 2, each of weight 1.
//! The dev chain has no voters; the devnet signs justifications with these seeds
//! (test keys only, never for a real ledger).

use crate::{AccountId, Balance, RuntimeGenesisConfig, UNIT};
use isthmus_protocol::hex32;
use alloc::{vec, vec::Vec};
use serde_json::Value;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_core::crypto::UncheckedFrom;

/// sr25519 public keys of `//Alice`, `//Bob`, `//Charlie`, `//Dave`, `//Eve`, `//Ferdie`.
pub const DEV_ACCOUNTS: [[u8; 32]; 6] = [
    hex32("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"),
    hex32("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48"),
    hex32("90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22"),
    hex32("306721211d5404bd9da88e0204360a1a9ab8b87c66c1bc2fcdd37f3c2222cc20"),
    hex32("e659a7a1628cdd93febc04a4e0646ea20e9f5f0ce097d9a05290d4a9e054df4e"),
    hex32("1cbd2d43530a44705ad088af313e18f80b53ef16b36177cd4b77b846f2a5f07c"),
];

/// ed25519 public keys of the GRANDPA authorities (seeds in the module docs).
pub const GRANDPA_AUTHORITIES: [[u8; 32]; 3] = [
    hex32("0d4e8ed700fad8a5e3bf363d5a8aabee6c4eff9ef1b67d2d945f5a06cf81c5d9"),
    hex32("25c9bfdb97866f6a29532f90127e3411b77a05e5cce93e817cbac83e1a7e9e1a"),
    hex32("5c62afc5cd59d4db2ab463a3e0e38f583c9f69d7bdb3d568196b790d06a80773"),
];

/// Opening balances of the example clearing app's banks `[0x0a; 32]` and `[0x0b; 32]`.
pub const DEV_BANKS: [([u8; 32], u128); 2] = [([0x0a; 32], 1_000_000), ([0x0b; 32], 1_000_000)];

fn development() -> Value {
    let endowment: Balance = 1_000_000 * UNIT;
    let accounts: Vec<(AccountId, Balance)> = DEV_ACCOUNTS
        .iter()
        .map(|k| (AccountId::from(*k), endowment))
        .collect();
    let aura: Vec<AuraId> = vec![AuraId::unchecked_from(DEV_ACCOUNTS[0])];
    let grandpa: Vec<(GrandpaId, u64)> = GRANDPA_AUTHORITIES
        .iter()
        .map(|k| (GrandpaId::unchecked_from(*k), 1))
        .collect();
    let config = RuntimeGenesisConfig {
        balances: pallet_balances::GenesisConfig {
            balances: accounts,
            ..Default::default()
        },
        aura: pallet_aura::GenesisConfig { authorities: aura },
        grandpa: pallet_grandpa::GenesisConfig {
            authorities: grandpa,
            ..Default::default()
        },
        sudo: pallet_sudo::GenesisConfig {
            key: Some(AccountId::from(DEV_ACCOUNTS[0])),
        },
        clearing: pallet_isthmus_clearing::GenesisConfig {
            banks: DEV_BANKS.to_vec(),
            ..Default::default()
        },
        ..Default::default()
    };
    serde_json::to_value(config).expect("the dev genesis config serializes")
}

/// The JSON of preset `id`, or `None` for an unknown preset.
pub fn get_preset(id: &sp_genesis_builder::PresetId) -> Option<Vec<u8>> {
    let value = match id.as_ref() {
        sp_genesis_builder::DEV_RUNTIME_PRESET => development(),
        _ => return None,
    };
    Some(
        serde_json::to_string(&value)
            .expect("the dev genesis serializes")
            .into_bytes(),
    )
}
