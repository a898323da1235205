//! Source role: what a relayer reads from a Substrate ledger whose outbox it watches.
//!
//! Nothing here is trusted by itself. Events give the messages (their ids are checked
//! against the encodings); the header bytes, a GRANDPA justification and a read proof
//! go through `isthmus-light-client-grandpa`, and only a [`VerifiedOutbox`] (built
//! from a finalized header) yields a checkpoint to attest.

use isthmus_light_client_grandpa::{DigestItem, FinalizedHeader, ReadProof};
use isthmus_protocol::{Address32, Checkpoint, Message, MessageId};
use scale_decode::DecodeAsType;

use crate::client::{BlockHash, SubstrateClient};
use crate::keys;
use crate::Error;

/// A message the outbox emitted in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchedMessage {
    /// The block that emitted it.
    pub block_number: u32,
    /// Its hash.
    pub block_hash: [u8; 32],
    /// The message id (keccak256 of the encoding, recomputed here).
    pub id: MessageId,
    /// The decoded message.
    pub message: Message,
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
struct DispatchEvent {
    id: [u8; 32],
    #[allow(
        dead_code,
        reason = "decoded for completeness; the message carries it too"
    )]
    destination: u32,
    nonce: u64,
    message: Vec<u8>,
}

/// A read proof of the outbox's root and count at one block (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxProof {
    /// The block the proof is for.
    pub block_hash: [u8; 32],
    /// The trie nodes.
    pub proof: ReadProof,
}

/// The outbox's root and count, proved against a GRANDPA-finalized header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedOutbox {
    root: [u8; 32],
    count: u32,
    block_number: u32,
    block_hash: [u8; 32],
}

impl VerifiedOutbox {
    /// Reads the outbox's commitment from `finalized`'s digest: the pallet deposits
    /// `Consensus(ISTH, root ‖ count)` in every block, and the header's hash (which the
    /// justification finalized) covers the digest, so no state proof is needed. Exactly
    /// one commitment item must be present.
    pub fn from_digest(finalized: &FinalizedHeader) -> Result<Self, Error> {
        let mut items = finalized
            .header()
            .digest
            .logs
            .iter()
            .filter_map(|item| match item {
                DigestItem::Consensus(engine, data) if *engine == keys::COMMITMENT_ENGINE_ID => {
                    Some(data)
                }
                _ => None,
            });
        let (Some(data), None) = (items.next(), items.next()) else {
            return Err(Error::Malformed {
                what: "outbox commitment",
                reason: format!(
                    "block {} must carry exactly one `ISTH` digest item",
                    finalized.number()
                ),
            });
        };
        let bytes = <[u8; 36]>::try_from(data.as_slice()).map_err(|_| Error::Malformed {
            what: "outbox commitment",
            reason: format!("{} bytes, 36 expected", data.len()),
        })?;
        let mut root = [0u8; 32];
        root.copy_from_slice(&bytes[..32]);
        let count = u32::from_le_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]);
        Ok(Self {
            root,
            count,
            block_number: finalized.number(),
            block_hash: finalized.hash().0,
        })
    }

    /// Checks `proof` against `finalized`'s state root. Absent values mean an untouched
    /// outbox (empty root, count 0), as the pallet's defaults say.
    pub fn verify(finalized: &FinalizedHeader, proof: &OutboxProof) -> Result<Self, Error> {
        if finalized.hash().0 != proof.block_hash {
            return Err(Error::Malformed {
                what: "outbox proof",
                reason: "proof is for another block than the finalized header".into(),
            });
        }
        let root = match finalized
            .read_storage(&proof.proof, &keys::outbox_root_key())?
            .value()
        {
            Some(bytes) => <[u8; 32]>::try_from(bytes).map_err(|_| Error::Malformed {
                what: "outbox root",
                reason: format!("{} bytes, 32 expected", bytes.len()),
            })?,
            None => isthmus_protocol::MerkleTree::from_leaves(Vec::new())
                .map_err(|e| Error::Malformed {
                    what: "outbox root",
                    reason: e.to_string(),
                })?
                .root(),
        };
        let count = match finalized
            .read_storage(&proof.proof, &keys::outbox_count_key())?
            .value()
        {
            Some(bytes) => {
                u32::from_le_bytes(<[u8; 4]>::try_from(bytes).map_err(|_| Error::Malformed {
                    what: "outbox count",
                    reason: format!("{} bytes, 4 expected", bytes.len()),
                })?)
            }
            None => 0,
        };
        Ok(Self {
            root,
            count,
            block_number: finalized.number(),
            block_hash: proof.block_hash,
        })
    }

    /// The Merkle root of the outbox.
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The number of messages in the outbox.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The checkpoint members attest to, for a ledger whose id is `origin`.
    pub fn checkpoint(&self, origin: u32) -> Checkpoint {
        Checkpoint {
            origin,
            outbox: Address32(keys::OUTBOX_ID),
            root: self.root,
            count: self.count,
            block_number: u64::from(self.block_number),
            block_hash: self.block_hash,
        }
    }
}

impl SubstrateClient {
    /// The messages `Isthmus.Dispatch` emitted in blocks `from..=to`, in order. The
    /// caller scans finalized blocks only.
    pub async fn dispatched(&self, from: u32, to: u32) -> Result<Vec<DispatchedMessage>, Error> {
        let mut out = Vec::new();
        for number in from..=to {
            let hash = self
                .block_hash(number)
                .await?
                .ok_or_else(|| Error::UnknownBlock(number.to_string()))?;
            out.extend(self.dispatched_in(number, hash).await?);
        }
        Ok(out)
    }

    /// The messages dispatched in block `hash` (number `number`).
    pub async fn dispatched_in(
        &self,
        number: u32,
        hash: [u8; 32],
    ) -> Result<Vec<DispatchedMessage>, Error> {
        let at = self
            .api
            .at_block_hash_and_number(BlockHash::from(hash), u64::from(number))
            .await?;
        let events = at.events().fetch().await?;
        let mut out = Vec::new();
        for event in events.iter() {
            let event = event?;
            if event.pallet_name() != keys::PALLET || event.event_name() != "Dispatch" {
                continue;
            }
            let fields = event.decode_fields_unchecked_as::<DispatchEvent>()?;
            let message = Message::decode(&fields.message).map_err(|e| Error::Malformed {
                what: "dispatched message",
                reason: e.to_string(),
            })?;
            let id = message.id();
            if id.0 != fields.id || message.nonce != fields.nonce {
                return Err(Error::Malformed {
                    what: "Dispatch event",
                    reason: "the id or nonce does not match the encoded message".into(),
                });
            }
            out.push(DispatchedMessage {
                block_number: number,
                block_hash: hash,
                id,
                message,
            });
        }
        Ok(out)
    }

    /// A read proof of the outbox's root and count at block `hash`.
    pub async fn outbox_proof(&self, hash: [u8; 32]) -> Result<OutboxProof, Error> {
        let root_key = keys::outbox_root_key();
        let count_key = keys::outbox_count_key();
        let proof = self
            .rpc
            .state_get_read_proof(
                [root_key.as_slice(), count_key.as_slice()],
                Some(BlockHash::from(hash)),
            )
            .await?;
        Ok(OutboxProof {
            block_hash: hash,
            proof: ReadProof::new(proof.proof.into_iter().map(|b| b.0)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use isthmus_light_client_grandpa::{blake2_256, Digest, GrandpaJustification, Header, H256};
    use parity_scale_codec::{Compact, Encode};

    fn nibbles(key: &[u8]) -> Vec<u8> {
        key.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
    }

    /// A node header: the 2-bit kind, then the nibble count with continuation bytes.
    fn node_header(kind: u8, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        if n < 63 {
            out.push(kind | u8::try_from(n).unwrap());
            return out;
        }
        out.push(kind | 63);
        let mut rest = n - 63;
        while rest >= 255 {
            out.push(255);
            rest -= 255;
        }
        out.push(u8::try_from(rest).unwrap());
        out
    }

    /// Packs nibbles, an odd count left-padded with a zero nibble.
    fn pack(nibs: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = nibs;
        if nibs.len() % 2 == 1 {
            out.push(nibs[0]);
            rest = &nibs[1..];
        }
        out.extend(rest.chunks(2).map(|p| (p[0] << 4) | p[1]));
        out
    }

    fn leaf(partial: &[u8], value: &[u8]) -> Vec<u8> {
        let mut out = node_header(0b0100_0000, partial.len());
        out.extend(pack(partial));
        out.extend(Compact(u32::try_from(value.len()).unwrap()).encode());
        out.extend_from_slice(value);
        out
    }

    /// A two-leaf trie of `(key, value)` pairs of equal key length, built as the
    /// ledger's `sp-trie` layout encodes it; returns the root hash and every node.
    fn two_leaf_trie(a: (&[u8], &[u8]), b: (&[u8], &[u8])) -> (H256, Vec<Vec<u8>>) {
        let (na, nb) = (nibbles(a.0), nibbles(b.0));
        let p = na.iter().zip(&nb).take_while(|(x, y)| x == y).count();
        let mut nodes = Vec::new();
        let mut child = |n: &[u8], value: &[u8]| {
            let encoded = leaf(&n[p + 1..], value);
            if encoded.len() < 32 {
                let mut out = Compact(u32::try_from(encoded.len()).unwrap()).encode();
                out.extend(encoded);
                out
            } else {
                let mut out = Compact(32u32).encode();
                out.extend(blake2_256(&encoded).0);
                nodes.push(encoded);
                out
            }
        };
        let mut children = [(na[p], child(&na, a.1)), (nb[p], child(&nb, b.1))];
        children.sort_by_key(|(i, _)| *i);
        let mut branch = node_header(0b1000_0000, p);
        branch.extend(pack(&na[..p]));
        let bitmap: u16 = children.iter().map(|(i, _)| 1u16 << i).sum();
        branch.extend(bitmap.to_le_bytes());
        for (_, c) in &children {
            branch.extend_from_slice(c);
        }
        let root = blake2_256(&branch);
        nodes.push(branch);
        (root, nodes)
    }

    /// `header`, finalized by a one-authority set.
    fn finalize(header: Header) -> FinalizedHeader {
        use isthmus_light_client_grandpa::justification::precommit_signing_payload;
        use isthmus_light_client_grandpa::{
            AuthorityId, AuthoritySet, Commit, Precommit, SignedPrecommit,
        };
        let key = ed25519_zebra::SigningKey::from([7; 32]);
        let id = AuthorityId(ed25519_zebra::VerificationKey::from(&key).into());
        let set = AuthoritySet::new(0, vec![(id, 1)]).unwrap();
        let precommit = Precommit {
            target_hash: header.hash(),
            target_number: header.number,
        };
        let payload = precommit_signing_payload(&precommit, 1, 0);
        let justification = GrandpaJustification {
            round: 1,
            commit: Commit {
                target_hash: precommit.target_hash,
                target_number: precommit.target_number,
                precommits: vec![SignedPrecommit {
                    precommit,
                    signature: key.sign(&payload).into(),
                    id,
                }],
            },
            votes_ancestries: vec![],
        };
        FinalizedHeader::new(header, justification.verify(&set).unwrap()).unwrap()
    }

    /// A header with `state_root`, finalized.
    fn finalized(state_root: H256) -> FinalizedHeader {
        let header = Header {
            parent_hash: H256([1; 32]),
            number: 7,
            state_root,
            extrinsics_root: H256([2; 32]),
            digest: Digest::default(),
        };
        finalize(header)
    }

    fn finalized_with_digest(logs: Vec<DigestItem>) -> FinalizedHeader {
        let header = Header {
            parent_hash: H256([1; 32]),
            number: 9,
            state_root: H256([0; 32]),
            extrinsics_root: H256([2; 32]),
            digest: Digest { logs },
        };
        finalize(header)
    }

    #[test]
    fn outbox_state_is_read_from_the_finalized_digest() {
        let mut data = [0x5a; 32].to_vec();
        data.extend(7u32.to_le_bytes());
        let aura = DigestItem::PreRuntime(*b"aura", vec![1, 2, 3]);
        let item = DigestItem::Consensus(keys::COMMITMENT_ENGINE_ID, data.clone());
        let header = finalized_with_digest(vec![aura.clone(), item.clone()]);
        let outbox = VerifiedOutbox::from_digest(&header).unwrap();
        assert_eq!((outbox.root(), outbox.count()), ([0x5a; 32], 7));
        assert_eq!(outbox.checkpoint(3).block_hash, header.hash().0);
        assert_eq!(outbox.checkpoint(3).block_number, 9);
        // Missing, doubled, or of the wrong size: refused.
        for logs in [
            vec![aura.clone()],
            vec![item.clone(), item.clone()],
            vec![DigestItem::Consensus(
                keys::COMMITMENT_ENGINE_ID,
                data[..35].to_vec(),
            )],
            vec![DigestItem::Consensus(*b"ISTX", data.clone())],
        ] {
            assert!(VerifiedOutbox::from_digest(&finalized_with_digest(logs)).is_err());
        }
    }

    #[test]
    fn outbox_state_is_read_through_a_verified_proof() {
        let root = [0xab; 32];
        let count = 5u32.to_le_bytes();
        let (state_root, nodes) = two_leaf_trie(
            (&keys::outbox_root_key(), &root),
            (&keys::outbox_count_key(), &count),
        );
        let header = finalized(state_root);
        let proof = OutboxProof {
            block_hash: header.hash().0,
            proof: ReadProof::new(nodes.clone()),
        };
        let outbox = VerifiedOutbox::verify(&header, &proof).unwrap();
        assert_eq!(outbox.root(), root);
        assert_eq!(outbox.count(), 5);
        let checkpoint = outbox.checkpoint(2);
        assert_eq!(checkpoint.outbox.0, keys::OUTBOX_ID);
        assert_eq!(checkpoint.block_number, 7);
        assert_eq!(checkpoint.block_hash, header.hash().0);

        // A proof for another block is refused before any lookup.
        let elsewhere = OutboxProof {
            block_hash: [9; 32],
            proof: ReadProof::new(nodes.clone()),
        };
        assert!(VerifiedOutbox::verify(&header, &elsewhere).is_err());
        // A proof missing the node that holds the root value is refused.
        let (_, partial) = nodes.split_first().unwrap();
        let missing = OutboxProof {
            block_hash: header.hash().0,
            proof: ReadProof::new(partial.to_vec()),
        };
        assert!(VerifiedOutbox::verify(&header, &missing).is_err());
        // A value of the wrong size is malformed, not silently truncated.
        let (state_root, nodes) = two_leaf_trie(
            (&keys::outbox_root_key(), &root[..31]),
            (&keys::outbox_count_key(), &count),
        );
        let header = finalized(state_root);
        let proof = OutboxProof {
            block_hash: header.hash().0,
            proof: ReadProof::new(nodes),
        };
        assert!(matches!(
            VerifiedOutbox::verify(&header, &proof),
            Err(Error::Malformed { .. })
        ));
    }
}
