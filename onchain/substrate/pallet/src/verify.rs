//! The pallet's cryptography on the runtime's host functions.
//!
//! Attestations are checked with `sp_io::crypto::secp256k1_ecdsa_recover` and
//! `sp_io::hashing::keccak_256` (native speed inside the wasm runtime) under the
//! protocol's strict rules: `v ∈ {27, 28}`, `0 < r < n`, `0 < s ≤ n/2`. The outbox's
//! incremental tree uses the protocol crate's node hash and zero hashes, so the root
//! is bit-for-bit the one every other implementation computes. The tree's hashes use
//! the keccak host function too, and the empty subtrees' roots are a constant table
//! ([`ZERO_HASHES`], checked against the protocol crate's in the tests).

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use isthmus_protocol::{hex32, TREE_DEPTH};
use scale_info::TypeInfo;

/// An EVM-style signer address: the last 20 bytes of keccak256 of the public key.
pub type SignerAddress = [u8; 20];

/// The secp256k1 group order `n`, big-endian.
const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `n / 2` rounded down, big-endian: the largest `s` a low-s signature may carry.
const SECP256K1_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// Why an attestation is not a valid signature under the protocol's strict rules.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum InvalidSignature {
    /// `v` is neither 27 nor 28.
    BadV,
    /// `r` is zero or not below the group order.
    BadR,
    /// `s` is zero or not below the group order.
    BadS,
    /// `s` is above `n/2` (a malleated copy of a low-s signature).
    HighS,
    /// No public key recovers from the signature.
    Unrecoverable,
}

/// What happened to one attestation of a checkpoint (the protocol's quorum outcomes).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Debug,
    Encode,
    Decode,
    DecodeWithMemTracking,
    TypeInfo,
    MaxEncodedLen,
)]
pub enum AttestationOutcome {
    /// A valid signature of a set member, counted.
    Accepted(SignerAddress),
    /// A valid signature of a member already counted; not counted again.
    Duplicate(SignerAddress),
    /// A valid signature of a key outside the set; not counted.
    UnknownSigner(SignerAddress),
    /// Not a valid signature; not counted.
    Invalid(InvalidSignature),
}

fn is_zero(bytes: &[u8; 32]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// Recovers the signer of `signature` (`r ‖ s ‖ v`) over `digest` (no prefix).
pub fn recover_signer(
    digest: &[u8; 32],
    signature: &[u8; 65],
) -> Result<SignerAddress, InvalidSignature> {
    let v = signature[64];
    if v != 27 && v != 28 {
        return Err(InvalidSignature::BadV);
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..64]);
    // Big-endian byte arrays of equal length compare like the integers they encode.
    if is_zero(&r) || r >= SECP256K1_N {
        return Err(InvalidSignature::BadR);
    }
    if is_zero(&s) || s >= SECP256K1_N {
        return Err(InvalidSignature::BadS);
    }
    if s > SECP256K1_HALF_N {
        return Err(InvalidSignature::HighS);
    }
    let mut host_sig = *signature;
    host_sig[64] = v - 27;
    let public = sp_io::crypto::secp256k1_ecdsa_recover(&host_sig, digest)
        .map_err(|_| InvalidSignature::Unrecoverable)?;
    let hash = sp_io::hashing::keccak_256(&public);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    Ok(address)
}

/// Counts distinct valid member signatures; returns how many and every outcome.
pub fn check_quorum(
    digest: &[u8; 32],
    signers: &[SignerAddress],
    attestations: &[[u8; 65]],
) -> (u32, alloc::vec::Vec<AttestationOutcome>) {
    let mut outcomes = alloc::vec::Vec::with_capacity(attestations.len());
    let mut counted: alloc::vec::Vec<SignerAddress> = alloc::vec::Vec::new();
    for att in attestations {
        let outcome = match recover_signer(digest, att) {
            Err(e) => AttestationOutcome::Invalid(e),
            Ok(a) if !signers.contains(&a) => AttestationOutcome::UnknownSigner(a),
            Ok(a) if counted.contains(&a) => AttestationOutcome::Duplicate(a),
            Ok(a) => {
                counted.push(a);
                AttestationOutcome::Accepted(a)
            }
        };
        outcomes.push(outcome);
    }
    let have = u32::try_from(counted.len()).unwrap_or(u32::MAX);
    (have, outcomes)
}

/// The left frontier of the outbox's incremental tree, as stored.
pub type Frontier = [[u8; 32]; TREE_DEPTH];

/// keccak256(left ‖ right) with the host function: a node of the outbox's tree.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(left);
    pair[32..].copy_from_slice(right);
    sp_io::hashing::keccak_256(&pair)
}

/// The roots of the empty subtrees of heights 0 to 31 (`zero_hashes()` of the
/// protocol crate, `protocol/vectors/v2.json`), so that no call recomputes them.
pub const ZERO_HASHES: [[u8; 32]; TREE_DEPTH] = [
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5"),
    hex32("b4c11951957c6f8f642c4af61cd6b24640fec6dc7fc607ee8206a99e92410d30"),
    hex32("21ddb9a356815c3fac1026b6dec5df3124afbadb485c9ba5a3e3398a04b7ba85"),
    hex32("e58769b32a1beaf1ea27375a44095a0d1fb664ce2dd358e7fcbfb78c26a19344"),
    hex32("0eb01ebfc9ed27500cd4dfc979272d1f0913cc9f66540d7e8005811109e1cf2d"),
    hex32("887c22bd8750d34016ac3c66b5ff102dacdd73f6b014e710b51e8022af9a1968"),
    hex32("ffd70157e48063fc33c97a050f7f640233bf646cc98d9524c6b92bcf3ab56f83"),
    hex32("9867cc5f7f196b93bae1e27e6320742445d290f2263827498b54fec539f756af"),
    hex32("cefad4e508c098b9a7e1d8feb19955fb02ba9675585078710969d3440f5054e0"),
    hex32("f9dc3e7fe016e050eff260334f18a5d4fe391d82092319f5964f2e2eb7c1c3a5"),
    hex32("f8b13a49e282f609c317a833fb8d976d11517c571d1221a265d25af778ecf892"),
    hex32("3490c6ceeb450aecdc82e28293031d10c7d73bf85e57bf041a97360aa2c5d99c"),
    hex32("c1df82d9c4b87413eae2ef048f94b4d3554cea73d92b0f7af96e0271c691e2bb"),
    hex32("5c67add7c6caf302256adedf7ab114da0acfe870d449a3a489f781d659e8becc"),
    hex32("da7bce9f4e8618b6bd2f4132ce798cdc7a60e7e1460a7299e3c6342a579626d2"),
    hex32("2733e50f526ec2fa19a22b31e8ed50f23cd1fdf94c9154ed3a7609a2f1ff981f"),
    hex32("e1d3b5c807b281e4683cc6d6315cf95b9ade8641defcb32372f1c126e398ef7a"),
    hex32("5a2dce0a8a7f68bb74560f8f71837c2c2ebbcbf7fffb42ae1896f13f7c7479a0"),
    hex32("b46a28b6f55540f89444f63de0378e3d121be09e06cc9ded1c20e65876d36aa0"),
    hex32("c65e9645644786b620e2dd2ad648ddfcbf4a7e5b1a3a4ecfe7f64667a3f0b7e2"),
    hex32("f4418588ed35a2458cffeb39b93d26f18d2ab13bdce6aee58e7b99359ec2dfd9"),
    hex32("5a9c16dc00d6ef18b7933a6f8dc65ccb55667138776f7dea101070dc8796e377"),
    hex32("4df84f40ae0c8229d0d6069e5c8f39a7c299677a09d367fc7b05e3bc380ee652"),
    hex32("cdc72595f74c7b1043d0e1ffbab734648c838dfb0527d971b602bc216c9619ef"),
    hex32("0abf5ac974a1ed57f4050aa510dd9c74f508277b39d7973bb2dfccc5eeb0618d"),
    hex32("b8cd74046ff337f0a7bf2c8e03e10f642c1886798d71806ab1e888d9e5ee87d0"),
    hex32("838c5655cb21c6cb83313b5a631175dff4963772cce9108188b34ac87c81c41e"),
    hex32("662ee4dd2dd7b2bc707961b1e646c4047669dcb6584f0d8d770daf5d7e7deb2e"),
    hex32("388ab20e2573d171a88108e79d820e98f26c0b84aa8b2f4aa4968dbb818ea322"),
    hex32("93237c50ba75ee485f4c22adf2f741400bdf8d6a9cc7df7ecae576221665d735"),
    hex32("8448818bb4ae4562849e949e17ac16e0be16688e156b5cf15e098c627c0056a9"),
];

/// Appends `leaf` as leaf number `count` (the deposit contract's `deposit` loop).
/// The caller guarantees `count < 2^32 - 1`.
pub fn tree_insert(frontier: &mut Frontier, count: u32, leaf: [u8; 32]) {
    let mut size = u64::from(count) + 1;
    let mut node = leaf;
    for slot in frontier.iter_mut() {
        if size & 1 == 1 {
            *slot = node;
            return;
        }
        node = node_hash(slot, &node);
        size >>= 1;
    }
}

/// The root of a tree of `count` leaves with this frontier (`get_deposit_root`).
pub fn tree_root(frontier: &Frontier, count: u32) -> [u8; 32] {
    let mut node = [0u8; 32];
    for (h, (left, zero)) in frontier.iter().zip(ZERO_HASHES.iter()).enumerate() {
        node = if (count >> h) & 1 == 1 {
            node_hash(left, &node)
        } else {
            node_hash(&node, zero)
        };
    }
    node
}

/// Whether `leaf` is leaf number `index` of the tree with `root` and `count` leaves,
/// by its `siblings` from the leaf level up (the protocol's `Branch::verify`, with the
/// host's keccak). An index at or past `count` is refused: a branch into the zero
/// padding would otherwise prove a leaf that was never inserted.
pub fn branch_verifies(
    leaf: &[u8; 32],
    index: u64,
    siblings: &[[u8; 32]; TREE_DEPTH],
    root: &[u8; 32],
    count: u64,
) -> bool {
    if index >= count || index >= isthmus_protocol::merkle::MAX_LEAVES {
        return false;
    }
    let mut node = *leaf;
    for (h, sibling) in siblings.iter().enumerate() {
        node = if (index >> h) & 1 == 1 {
            node_hash(sibling, &node)
        } else {
            node_hash(&node, sibling)
        };
    }
    node == *root
}
