//! Storage keys and constants of `pallet-isthmus` as the dev runtime lays them out
//! (`docs/substrate.md`). The adapter computes keys itself so that it can ask for
//! read proofs of exactly these entries and verify them with the light client.

use sp_crypto_hashing::{blake2_128, twox_128, twox_64};

/// The pallet's name in the runtime's `construct_runtime!`: the storage prefix.
pub const PALLET: &str = "Isthmus";

/// The pallet's outbox id in checkpoints: `keccak256("isthmus pallet outbox")`.
pub const OUTBOX_ID: [u8; 32] = [
    0xe3, 0xaa, 0x7d, 0x24, 0xf5, 0x76, 0x97, 0x7d, 0xa1, 0xda, 0x14, 0x01, 0xb3, 0x05, 0xd8, 0x11,
    0x2b, 0x56, 0x8c, 0x22, 0x5a, 0x55, 0x43, 0xb4, 0x37, 0xb0, 0x0c, 0xc2, 0x7c, 0x87, 0x37, 0x6e,
];

/// The pallet inbox's own `Address32`, which sends and takes receipt batches:
/// `keccak256("isthmus pallet inbox")` (`pallet_isthmus::INBOX_ID`).
pub const INBOX_ID: [u8; 32] = [
    0x39, 0x13, 0xda, 0xe7, 0x84, 0x29, 0xb6, 0x11, 0x3d, 0xcf, 0x79, 0x53, 0x2b, 0x15, 0xc4, 0xd7,
    0x2c, 0xb2, 0x04, 0xaf, 0x1c, 0x84, 0xf4, 0xfb, 0x46, 0xa4, 0x1d, 0xd9, 0x5a, 0xe0, 0x53, 0xca,
];

/// The dev runtime's clearing app's `Address32`: `keccak256("isthmus clearing app")`
/// (`pallet_isthmus_clearing::APP_ADDRESS`). Its payments leave with it as sender.
pub const CLEARING_APP: [u8; 32] = [
    0x50, 0x3f, 0x51, 0x4c, 0x7a, 0xac, 0x78, 0x2a, 0x47, 0x44, 0xbe, 0xab, 0x84, 0x03, 0x1b, 0x19,
    0xa1, 0x7b, 0xfd, 0x1f, 0x1a, 0x6d, 0x20, 0x03, 0x52, 0x88, 0xf1, 0x11, 0x74, 0xec, 0x8f, 0xb0,
];

/// Engine id of the digest item in which the pallet commits the outbox's root and
/// count in every block header (`pallet_isthmus::COMMITMENT_ENGINE_ID`).
pub const COMMITMENT_ENGINE_ID: [u8; 4] = *b"ISTH";

fn value_key(pallet: &str, entry: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&twox_128(pallet.as_bytes()));
    key.extend_from_slice(&twox_128(entry.as_bytes()));
    key
}

/// Key of `Isthmus::OutboxRoot` (`[u8; 32]`).
pub fn outbox_root_key() -> Vec<u8> {
    value_key(PALLET, "OutboxRoot")
}

/// Key of `Isthmus::OutboxCount` (`u32`, SCALE little-endian).
pub fn outbox_count_key() -> Vec<u8> {
    value_key(PALLET, "OutboxCount")
}

/// Key of `Isthmus::Processed[id]` (`Blake2_128Concat` of the id).
pub fn processed_key(id: &[u8; 32]) -> Vec<u8> {
    let mut key = value_key(PALLET, "Processed");
    key.extend_from_slice(&blake2_128(id));
    key.extend_from_slice(id);
    key
}

/// Key of `Isthmus::Origins[origin]` (`Twox64Concat` of the ledger id).
pub fn origin_key(origin: u32) -> Vec<u8> {
    by_origin("Origins", origin)
}

/// Key of `Isthmus::LowWater[origin]` (`Twox64Concat` of the ledger id; the value is
/// a `u64`, absent for 0): every nonce of the origin below it ended and its entries
/// were pruned.
pub fn low_water_key(origin: u32) -> Vec<u8> {
    by_origin("LowWater", origin)
}

/// Key of the pallet's map `item` at `origin` (`Twox64Concat` of the ledger id).
fn by_origin(item: &str, origin: u32) -> Vec<u8> {
    let mut key = value_key(PALLET, item);
    key.extend_from_slice(&twox_64(&origin.to_le_bytes()));
    key.extend_from_slice(&origin.to_le_bytes());
    key
}

/// Key of `Isthmus::RouteStates[origin]` (`Twox64Concat` of the ledger id; the value
/// is `(paused: bool, epoch: u64)`, absent for an open route at epoch 0).
pub fn route_state_key(origin: u32) -> Vec<u8> {
    by_origin("RouteStates", origin)
}

/// Key of `Isthmus::Holds[id]` (`Identity` of the message id; the value is a
/// `Hold`, absent when the message is not held).
pub fn hold_key(id: &[u8; 32]) -> Vec<u8> {
    let mut key = value_key(PALLET, "Holds");
    key.extend_from_slice(id);
    key
}

/// Key of `System::BlockHash[number]` (`Twox64Concat` of the block number).
pub fn block_hash_key(number: u32) -> Vec<u8> {
    let mut key = value_key("System", "BlockHash");
    key.extend_from_slice(&twox_64(&number.to_le_bytes()));
    key.extend_from_slice(&number.to_le_bytes());
    key
}

/// Key of `System::Account[account]` (`Blake2_128Concat` of the account id).
pub fn system_account_key(account: &[u8; 32]) -> Vec<u8> {
    let mut key = value_key("System", "Account");
    key.extend_from_slice(&blake2_128(account));
    key.extend_from_slice(account);
    key
}

/// The free balance in a SCALE `AccountInfo<u32, AccountData<u128>>`: four `u32`
/// counters (nonce, consumers, providers, sufficients), then `free: u128`.
pub fn free_balance(account_info: &[u8]) -> Result<u128, crate::Error> {
    account_info
        .get(16..32)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(u128::from_le_bytes)
        .ok_or_else(|| crate::Error::Malformed {
            what: "System.Account",
            reason: format!("{} bytes, at least 32 expected", account_info.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_balance_follows_the_counters() {
        let mut info = Vec::new();
        for counter in [7u32, 1, 1, 0] {
            info.extend_from_slice(&counter.to_le_bytes());
        }
        info.extend_from_slice(&(5_000_000_000_000u128).to_le_bytes());
        info.extend_from_slice(&[0; 48]);
        assert_eq!(
            free_balance(&info).expect("32 bytes or more"),
            5_000_000_000_000
        );
        assert!(matches!(
            free_balance(&info[..20]),
            Err(crate::Error::Malformed { .. })
        ));
    }

    #[test]
    fn outbox_id_is_the_documented_hash() {
        assert_eq!(
            OUTBOX_ID,
            isthmus_protocol::keccak256(b"isthmus pallet outbox")
        );
        assert_eq!(
            INBOX_ID,
            isthmus_protocol::keccak256(b"isthmus pallet inbox")
        );
        assert_eq!(
            CLEARING_APP,
            isthmus_protocol::keccak256(b"isthmus clearing app")
        );
    }

    #[test]
    fn keys_have_the_frame_layout() {
        // twox128("System") ‖ twox128("Number") is the well-known block number key.
        assert_eq!(
            hex::encode(value_key("System", "Number")),
            "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
        );
        assert_eq!(outbox_root_key().len(), 32);
        assert_eq!(processed_key(&[7; 32]).len(), 32 + 16 + 32);
        assert_ne!(outbox_root_key(), outbox_count_key());
    }
}
