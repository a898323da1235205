//! Attestations: this member's signature over verified checkpoints, and the
//! collection of the other members' signatures over HTTP.
//!
//! A member never signs what it did not verify itself: the HTTP endpoint takes only
//! a block reference, verifies the checkpoint at that block with its own light
//! client and signs the result ([`crate::http`]). The requester then checks every
//! returned signature against the member's configured signer and its own digest, so
//! a member that signs a different root is refused and recorded by name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use isthmus_config::ConsortiumSettings;
use isthmus_keys::EcdsaKey;
use isthmus_protocol::{Attestation, Checkpoint, EvmAddress, Network, SignerSet};
use serde::{Deserialize, Serialize};

use crate::ledger::Source;
use crate::verified::VerifiedCheckpoint;

/// This member's attestation key: in process or in a PKCS#11 token.
pub struct Attester {
    key: Arc<dyn EcdsaKey>,
    address: EvmAddress,
    member: String,
    network: Network,
}

/// Why this member could not sign a checkpoint. Always worth another round: a token
/// that is busy, re-inserted or logged out comes back, and nothing is lost meanwhile
/// (the messages wait for their next round).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key (its token) refused or failed.
    #[error("signing with {key}: {source}")]
    Key {
        /// The key, described without secrets.
        key: String,
        /// What the key said.
        #[source]
        source: isthmus_keys::KeyError,
    },
    /// The signature does not recover to this member's signer: a token that answers
    /// with another key's signature, or a corrupt one. Never sent anywhere.
    #[error(
        "signing with {key}: the signature recovers to {recovered}, not to this member's signer"
    )]
    WrongSigner {
        /// The key, described without secrets.
        key: String,
        /// What it recovered to.
        recovered: String,
    },
    /// The key (its token) did not answer in time; the round goes on without it.
    #[error("signing with {key}: no answer within {seconds} s")]
    Timeout {
        /// The key, described without secrets.
        key: String,
        /// The bound.
        seconds: u64,
    },
    /// The blocking signing task did not complete.
    #[error("signing task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// How long a signature may take: a network HSM answers in milliseconds; one that
/// hangs must not hold the round.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never prints.
        f.debug_struct("Attester")
            .field("member", &self.member)
            .field("address", &hex::encode(self.address))
            .field("network", &self.network)
            .finish()
    }
}

impl Attester {
    /// The attester for `member` of `network` signing with `key`.
    pub fn new(member: String, key: Arc<dyn EcdsaKey>, network: Network) -> Self {
        let address = key.address();
        Self {
            key,
            address,
            member,
            network,
        }
    }

    /// The network this member signs for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The digest of `checkpoint` on this member's network: what it signs, and what
    /// the other members' signatures must recover from.
    pub fn digest(&self, checkpoint: &Checkpoint) -> [u8; 32] {
        checkpoint.digest(&self.network)
    }

    /// The member name.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The signer address.
    pub fn address(&self) -> EvmAddress {
        self.address
    }

    /// Signs a checkpoint. Only a [`VerifiedCheckpoint`] can be signed. One key (token)
    /// call per checkpoint, whatever the number of messages it covers; the signature
    /// is checked to recover to this member's signer before it is used.
    pub async fn sign(&self, checkpoint: &VerifiedCheckpoint) -> Result<Attestation, SignError> {
        let digest = self.digest(checkpoint.checkpoint());
        let key = self.key.clone();
        let signing = tokio::task::spawn_blocking(move || key.sign_prehash(&digest));
        let signed = tokio::time::timeout(SIGN_TIMEOUT, signing)
            .await
            .map_err(|_| SignError::Timeout {
                key: self.key.describe(),
                seconds: SIGN_TIMEOUT.as_secs(),
            })??;
        let signature = signed.map_err(|source| SignError::Key {
            key: self.key.describe(),
            source,
        })?;
        let attestation = Attestation(signature.to_rsv27());
        match crate::verified::recover_signer(&attestation, &digest) {
            Ok(signer) if signer == self.address => Ok(attestation),
            Ok(other) => Err(SignError::WrongSigner {
                key: self.key.describe(),
                recovered: format!("0x{}", hex::encode(other)),
            }),
            Err(e) => Err(SignError::WrongSigner {
                key: self.key.describe(),
                recovered: format!("nothing ({e})"),
            }),
        }
    }
}

/// A peer's request: "attest the outbox of `origin` at this block".
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttestRequest {
    /// The network the asking member signs for, `0x` hex: a member of another
    /// network is refused before anything is verified.
    pub network: String,
    /// Source ledger id.
    pub origin: u32,
    /// Final block number.
    pub block_number: u64,
    /// Its hash, `0x` hex.
    pub block_hash: String,
}

/// The checkpoint as carried over HTTP.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckpointJson {
    /// Source ledger id.
    pub origin: u32,
    /// Outbox, `0x` hex of 32 bytes.
    pub outbox: String,
    /// Root, `0x` hex.
    pub root: String,
    /// Message count.
    pub count: u32,
    /// Block number.
    pub block_number: u64,
    /// Block hash, `0x` hex.
    pub block_hash: String,
}

impl From<&Checkpoint> for CheckpointJson {
    fn from(c: &Checkpoint) -> Self {
        Self {
            origin: c.origin,
            outbox: format!("0x{}", hex::encode(c.outbox.0)),
            root: format!("0x{}", hex::encode(c.root)),
            count: c.count,
            block_number: c.block_number,
            block_hash: format!("0x{}", hex::encode(c.block_hash)),
        }
    }
}

/// A member's answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttestResponse {
    /// The answering member.
    pub member: String,
    /// Its signer address, `0x` hex.
    pub signer: String,
    /// What it verified and signed.
    pub checkpoint: CheckpointJson,
    /// The signature, `0x` hex of 65 bytes.
    pub signature: String,
}

/// Another member, as configured.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Member name.
    pub name: String,
    /// Its signer.
    pub signer: EvmAddress,
    /// Base URL of its attestation endpoint.
    pub url: String,
}

/// The consortium as this relayer knows it.
#[derive(Clone, Debug)]
pub struct Consortium {
    /// The network every member signs for.
    pub network: Network,
    /// Every member, this one included.
    pub members: Vec<Peer>,
    /// Signer set and threshold.
    pub signers: SignerSet,
}

impl Consortium {
    /// The signer of the member whose turn it is to submit the message with `nonce`:
    /// members take turns by nonce, in the configuration's order.
    pub fn turn_of(&self, nonce: u64) -> Option<[u8; 20]> {
        let n = u64::try_from(self.members.len()).ok().filter(|n| *n > 0)?;
        let index = usize::try_from(nonce % n).ok()?;
        self.members.get(index).map(|m| m.signer)
    }

    /// The turns of the member signing with `signer`, for claims that take its own
    /// turns first; `None` for a signer outside the consortium.
    pub fn turns_of(&self, signer: [u8; 20]) -> Option<isthmus_schema::Turn> {
        let index = self.members.iter().position(|m| m.signer == signer)?;
        Some(isthmus_schema::Turn {
            members: u32::try_from(self.members.len()).ok()?,
            index: u32::try_from(index).ok()?,
        })
    }

    /// From the validated consortium settings.
    pub fn from_settings(settings: &ConsortiumSettings) -> Result<Self, String> {
        let members: Vec<Peer> = settings
            .members
            .iter()
            .map(|m| Peer {
                name: m.name.clone(),
                signer: *m.signer.as_bytes(),
                url: m.attestation_url.clone(),
            })
            .collect();
        let signers = SignerSet::new(
            members.iter().map(|m| m.signer).collect(),
            settings.threshold as usize,
        )
        .map_err(|e| format!("[consortium]: {e}"))?;
        Ok(Self {
            network: Network(settings.network),
            members,
            signers,
        })
    }

    /// The member with `signer`, if any.
    pub fn member_of(&self, signer: &EvmAddress) -> Option<&Peer> {
        self.members.iter().find(|m| m.signer == *signer)
    }
}

/// One peer's contribution, as judged by the requester.
#[derive(Clone, Debug)]
pub struct PeerVerdict {
    /// The peer.
    pub member: String,
    /// Its signer: the configured one, or the key it announces and signed with
    /// (after a rotation), which counts only if the destination's signer set holds it.
    pub signer: EvmAddress,
    /// The signature, when one came back.
    pub attestation: Option<Attestation>,
    /// Ok, or why it does not count.
    pub verdict: Result<(), String>,
}

/// The other members, as the attestation step asks them.
#[async_trait]
pub trait Peers: Send + Sync {
    /// Asks every other member to attest `checkpoint`; one verdict per member.
    async fn attest(&self, checkpoint: &Checkpoint) -> Vec<PeerVerdict>;
}

/// The other members' attestation endpoints over HTTP.
pub struct HttpPeers {
    http: reqwest::Client,
    peers: Vec<Peer>,
    network: Network,
    timeout: Duration,
}

impl HttpPeers {
    /// The members of `consortium` other than `me`, asked through `http` (the
    /// mutual-TLS client, [`crate::mtls::peer_client`]), each with `timeout`.
    pub fn new(
        consortium: &Consortium,
        me: EvmAddress,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            peers: consortium
                .members
                .iter()
                .filter(|m| m.signer != me)
                .cloned()
                .collect(),
            network: consortium.network,
            timeout,
        }
    }
}

#[async_trait]
impl Peers for HttpPeers {
    async fn attest(&self, checkpoint: &Checkpoint) -> Vec<PeerVerdict> {
        futures::future::join_all(
            self.peers
                .iter()
                .map(|p| request(&self.http, p, checkpoint, &self.network, self.timeout)),
        )
        .await
    }
}

/// This member's side of the exchange: verifies a checkpoint a peer asks for with its
/// own light client and signs it (served on `POST /v1/attest`).
#[derive(Clone)]
pub struct Endpoint {
    sources: BTreeMap<u32, Arc<dyn Source>>,
    attester: Arc<Attester>,
}

impl Endpoint {
    /// Attests the outboxes of `sources` (by ledger id) with `attester`.
    pub fn new(sources: BTreeMap<u32, Arc<dyn Source>>, attester: Arc<Attester>) -> Self {
        Self { sources, attester }
    }

    /// Refuses a request from a member of another network (a staging relayer that
    /// was given a production member's address, or the reverse).
    pub fn check_network(&self, request: &AttestRequest) -> Result<(), String> {
        let ours = self.attester.network();
        match request.network.parse::<Network>() {
            Ok(theirs) if theirs == ours => Ok(()),
            Ok(theirs) => Err(format!(
                "this member signs for network {ours}, not {theirs}: check consortium.network"
            )),
            Err(e) => Err(format!("network `{}`: {e}", request.network)),
        }
    }

    /// Verifies and signs the checkpoint `request` names; the error says why not.
    pub async fn attest(&self, request: &AttestRequest) -> Result<AttestResponse, String> {
        self.check_network(request)?;
        let source = self
            .sources
            .get(&request.origin)
            .ok_or_else(|| format!("ledger {} is not followed here", request.origin))?;
        let hash = request
            .block_hash
            .strip_prefix("0x")
            .and_then(parse_hex32)
            .ok_or_else(|| "block_hash is not 0x and 32 bytes of hex".to_owned())?;
        let verified = source
            .verify_checkpoint(isthmus_schema::BlockRef {
                number: request.block_number,
                hash,
            })
            .await
            .map_err(|e| e.to_string())?;
        let signature = self.attester.sign(&verified).await.map_err(|e| {
            tracing::warn!(error = %e, "could not sign a checkpoint a peer asked for");
            format!("this member cannot sign right now: {e}")
        })?;
        tracing::info!(
            origin = request.origin,
            block = request.block_number,
            count = verified.checkpoint().count,
            "attested a checkpoint for a peer"
        );
        Ok(AttestResponse {
            member: self.attester.member().to_owned(),
            signer: format!("0x{}", hex::encode(self.attester.address())),
            checkpoint: verified.checkpoint().into(),
            signature: format!("0x{}", hex::encode(signature.0)),
        })
    }
}

/// 32 bytes from 64 hex digits, with or without `0x`.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .ok()
        .and_then(|b| b.try_into().ok())
}

/// Asks `peer` to attest `checkpoint` and judges the answer against our digest on
/// `network`.
pub async fn request(
    http: &reqwest::Client,
    peer: &Peer,
    checkpoint: &Checkpoint,
    network: &Network,
    timeout: Duration,
) -> PeerVerdict {
    let mut verdict = PeerVerdict {
        member: peer.name.clone(),
        signer: peer.signer,
        attestation: None,
        verdict: Ok(()),
    };
    let body = AttestRequest {
        network: network.to_string(),
        origin: checkpoint.origin,
        block_number: checkpoint.block_number,
        block_hash: format!("0x{}", hex::encode(checkpoint.block_hash)),
    };
    let url = format!("{}/v1/attest", peer.url.trim_end_matches('/'));
    let answer = async {
        let response = http
            .post(&url)
            .json(&body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!(
                "answered {status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        response
            .json::<AttestResponse>()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))
    }
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            verdict.verdict = Err(e);
            return verdict;
        }
    };
    let signature = match hex::decode(answer.signature.trim_start_matches("0x"))
        .ok()
        .and_then(|b| <[u8; 65]>::try_from(b).ok())
    {
        Some(s) => Attestation(s),
        None => {
            verdict.verdict = Err("signature is not 65 bytes of hex".into());
            return verdict;
        }
    };
    verdict.attestation = Some(signature);
    let ours = CheckpointJson::from(checkpoint);
    let announced = answer.signer.to_ascii_lowercase();
    verdict.verdict = match crate::verified::recover_signer(&signature, &checkpoint.digest(network))
    {
        Err(e) => Err(format!("invalid signature: {e}")),
        Ok(signer) if signer == peer.signer => Ok(()),
        Ok(_) if answer.checkpoint != ours => Err(format!(
            "signed a different checkpoint (root {}, count {}) than ours (root {}, count {})",
            answer.checkpoint.root, answer.checkpoint.count, ours.root, ours.count
        )),
        // The member signs with a key it announces but this configuration does not
        // name (it rotated its key): the signature is judged by the destination's
        // signer sets, which hold the key only if a quorum installed it.
        Ok(other) if announced == format!("0x{}", hex::encode(other)) => {
            verdict.signer = other;
            Ok(())
        }
        Ok(other) => Err(format!(
            "not signed by the member's key (recovered 0x{})",
            hex::encode(other)
        )),
    };
    verdict
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;

    fn consortium(n: u8) -> Consortium {
        let members: Vec<Peer> = (0..n)
            .map(|i| Peer {
                name: format!("bank-{i}"),
                signer: [i + 1; 20],
                url: format!("http://127.0.0.1:{}", 7100 + u16::from(i)),
            })
            .collect();
        let signers = SignerSet::new(members.iter().map(|m| m.signer).collect(), 1).unwrap();
        Consortium {
            network: Network::named("isthmus test"),
            members,
            signers,
        }
    }

    #[test]
    fn submission_turns_go_round_the_members_by_nonce() {
        let c = consortium(3);
        let turns: Vec<_> = (0..7).map(|n| c.turn_of(n).unwrap()[0]).collect();
        assert_eq!(turns, vec![1, 2, 3, 1, 2, 3, 1]);
        // Every member gets a third of a run of nonces; u64::MAX is someone's too.
        assert_eq!(c.turn_of(u64::MAX).unwrap()[0], (u64::MAX % 3) as u8 + 1);
        let empty = Consortium {
            network: Network::named("isthmus test"),
            members: Vec::new(),
            signers: consortium(1).signers,
        };
        assert_eq!(empty.turn_of(5), None);
    }

    #[test]
    fn a_members_turns_match_turn_of() {
        let c = consortium(3);
        for member in &c.members {
            let turn = c.turns_of(member.signer).unwrap();
            assert_eq!(turn.members, 3);
            for nonce in 0..9u64 {
                let mine = nonce % u64::from(turn.members) == u64::from(turn.index);
                assert_eq!(c.turn_of(nonce) == Some(member.signer), mine);
            }
        }
        assert_eq!(c.turns_of([0xee; 20]), None);
    }
}
