//! Destination role: deliver attested messages to the pallet's inbox.
//!
//! One [`Destination`] per signing account: it serializes its submissions and keeps the
//! account's next nonce locally (fetched from the chain on first use and after a
//! dropped transaction), so a relayer can submit back to back without waiting for the
//! node's pool to catch up. Submissions wait for a finalized block.

use isthmus_protocol::{Attestation, Batch, Branch, Checkpoint, MessageId, MessageOutcome};
use scale_decode::DecodeAsType;
use scale_encode::EncodeAsType;
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::dynamic::At;
use subxt::transactions::Payload;
use subxt_signer::sr25519::Keypair;
use tokio::sync::Mutex;

use crate::client::{BlockHash, ChainConfig, SubstrateClient};
use crate::keys;
use crate::Error;

/// The pallet's `CheckpointArg`, encoded by field name against the metadata.
#[derive(EncodeAsType)]
#[encode_as_type(crate_path = "scale_encode")]
struct CheckpointArg {
    origin: u32,
    outbox: [u8; 32],
    root: [u8; 32],
    count: u32,
    block_number: u64,
    block_hash: [u8; 32],
}

impl From<&Checkpoint> for CheckpointArg {
    fn from(c: &Checkpoint) -> Self {
        Self {
            origin: c.origin,
            outbox: c.outbox.0,
            root: c.root,
            count: c.count,
            block_number: c.block_number,
            block_hash: c.block_hash,
        }
    }
}

/// A finalized delivery transaction and the outcome of each message in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The finalized block that includes the transaction.
    pub block_hash: [u8; 32],
    /// Its number.
    pub block_number: u32,
    /// The transaction hash.
    pub tx_hash: [u8; 32],
    /// `(message id, outcome)` in event order.
    pub outcomes: Vec<(MessageId, MessageOutcome)>,
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
struct IdOnly {
    id: [u8; 32],
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
struct HeldFields {
    id: [u8; 32],
    reason: [u8; 32],
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
struct RefusedFields {
    id: [u8; 32],
    code: [u8; 32],
}

/// How the inbox ended a message, from one of its events in a block: `MessageProcessed`,
/// `MessageRefused` or `MessageExpired`; None for the pallet's other events.
fn ending(
    event: &subxt::events::Event<ChainConfig>,
) -> Result<Option<(MessageId, MessageOutcome)>, Error> {
    if event.pallet_name() != keys::PALLET {
        return Ok(None);
    }
    Ok(match event.event_name() {
        "MessageProcessed" => {
            let f = event.decode_fields_unchecked_as::<IdOnly>()?;
            Some((MessageId(f.id), MessageOutcome::Delivered))
        }
        "MessageRefused" => {
            let f = event.decode_fields_unchecked_as::<RefusedFields>()?;
            Some((
                MessageId(f.id),
                MessageOutcome::Refused(isthmus_protocol::result_text(&f.code)),
            ))
        }
        "MessageExpired" => {
            let f = event.decode_fields_unchecked_as::<IdOnly>()?;
            Some((MessageId(f.id), MessageOutcome::Expired))
        }
        _ => None,
    })
}

/// The key a [`Destination`] signs its transactions with.
pub enum SubmitKey {
    /// An sr25519 key held in process (a secret URI, mnemonic or seed).
    Sr25519(Box<Keypair>),
    /// A secp256k1 key (in a PKCS#11 token): the account is the blake2-256 of its
    /// compressed public key, as for `MultiSignature::Ecdsa`.
    Ecdsa(std::sync::Arc<dyn isthmus_keys::EcdsaKey>),
}

impl SubmitKey {
    /// The account the key signs for.
    pub fn account(&self) -> [u8; 32] {
        match self {
            SubmitKey::Sr25519(pair) => pair.public_key().0,
            SubmitKey::Ecdsa(key) => ecdsa_account(&key.public_key()),
        }
    }
}

/// The Substrate account of a secp256k1 key: blake2-256 of the compressed public key.
pub fn ecdsa_account(public_key: &k256::PublicKey) -> [u8; 32] {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    sp_crypto_hashing::blake2_256(public_key.to_encoded_point(true).as_bytes())
}

/// How long one signature by a token may take.
const SIGN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Submits to the inbox as one account.
pub struct Destination {
    client: SubstrateClient,
    signer: SubmitKey,
    next_nonce: Mutex<Option<u64>>,
}

impl Destination {
    /// A destination submitting as `signer` through `client`.
    pub fn new(client: SubstrateClient, signer: Keypair) -> Self {
        Self::with_key(client, SubmitKey::Sr25519(Box::new(signer)))
    }

    /// A destination submitting as `key` through `client`.
    pub fn with_key(client: SubstrateClient, key: SubmitKey) -> Self {
        Self {
            client,
            signer: key,
            next_nonce: Mutex::new(None),
        }
    }

    /// A destination signing with the sr25519 key `secret`: a secret URI such as
    /// `//Alice`, a mnemonic with an optional derivation path, or a `0x` hex seed. The
    /// error never repeats the secret.
    pub fn from_secret(client: SubstrateClient, secret: &str) -> Result<Self, Error> {
        let refused = || Error::Malformed {
            what: "sr25519 secret",
            reason: "not a secret URI, mnemonic or 0x hex seed".into(),
        };
        let uri: subxt_signer::SecretUri = secret.parse().map_err(|_| refused())?;
        let signer = Keypair::from_uri(&uri).map_err(|_| refused())?;
        Ok(Self::new(client, signer))
    }

    /// The chain client.
    pub fn client(&self) -> &SubstrateClient {
        &self.client
    }

    /// The signing account (an sr25519 public key, or the hash of an ECDSA one).
    pub fn account(&self) -> [u8; 32] {
        self.signer.account()
    }

    /// The signing account's free balance (`System.Account`), in the chain's smallest
    /// unit, at the finalized head; 0 for an account the chain does not hold.
    pub async fn free_balance(&self) -> Result<u128, Error> {
        let (_, head) = self.client.finalized_head().await?;
        let Some(raw) = self
            .client
            .storage(&keys::system_account_key(&self.account()), Some(head))
            .await?
        else {
            return Ok(0);
        };
        keys::free_balance(&raw)
    }

    /// Dispatches a message from the signing account through the pallet's outbox and
    /// waits for finality; returns the receipt and the message's id from the
    /// `Dispatch` event.
    pub async fn dispatch(
        &self,
        destination: u32,
        recipient: [u8; 32],
        deadline: u64,
        body: Vec<u8>,
    ) -> Result<(Receipt, MessageId), Error> {
        let payload = subxt::dynamic::transaction(
            keys::PALLET,
            "dispatch",
            (destination, recipient, deadline, body),
        );
        let receipt = self.submit(&payload).await?;
        let (number, hash) = (receipt.block_number, receipt.block_hash);
        let found = self.client.dispatched_in(number, hash).await?;
        let sender = isthmus_protocol::Address32(self.account());
        let mine = found
            .into_iter()
            .rev()
            .find(|m| m.message.sender == sender && m.message.destination == destination)
            .ok_or_else(|| Error::Malformed {
                what: "Dispatch event",
                reason: format!("block {number} has no dispatch from the signing account"),
            })?;
        Ok((receipt, mine.id))
    }

    /// Delivers one message. Refusals (`AlreadyProcessed`, `Expired`, `InvalidBranch`,
    /// `QuorumNotReached`, …) come back as [`Error::Refused`].
    pub async fn process(
        &self,
        checkpoint: &Checkpoint,
        attestations: &[Attestation],
        message: &[u8],
        branch: &Branch,
    ) -> Result<Receipt, Error> {
        let payload = subxt::dynamic::transaction(
            keys::PALLET,
            "process",
            (
                CheckpointArg::from(checkpoint),
                attestations.iter().map(|a| a.0).collect::<Vec<[u8; 65]>>(),
                message.to_vec(),
                branch.siblings,
            ),
        );
        self.submit(&payload).await
    }

    /// Delivers a batch (many messages of one checkpoint) in one transaction.
    pub async fn deliver(&self, batch: &Batch) -> Result<Receipt, Error> {
        let items: Vec<(Vec<u8>, [[u8; 32]; 32])> = batch
            .messages
            .iter()
            .map(|(m, b)| (m.encode(), b.siblings))
            .collect();
        let payload = subxt::dynamic::transaction(
            keys::PALLET,
            "process_batch",
            (
                CheckpointArg::from(&batch.checkpoint),
                batch
                    .attestations
                    .iter()
                    .map(|a| a.0)
                    .collect::<Vec<[u8; 65]>>(),
                items,
            ),
        );
        self.submit(&payload).await
    }

    /// Whether the inbox recorded `id` as ended (delivered, refused or expired:
    /// `Processed`) at the node's finalized head.
    pub async fn is_delivered(&self, id: &MessageId) -> Result<bool, Error> {
        let (_, head) = self.client.finalized_head().await?;
        Ok(self
            .client
            .storage(&keys::processed_key(&id.0), Some(head))
            .await?
            .is_some())
    }

    /// The low-water mark of `origin` at the node's finalized head: every nonce below
    /// it ended, and its `Processed` entry may be pruned.
    pub async fn low_water(&self, origin: u32) -> Result<u64, Error> {
        let (_, head) = self.client.finalized_head().await?;
        match self
            .client
            .storage(&keys::low_water_key(origin), Some(head))
            .await?
        {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_le_bytes)
                .map_err(|_| Error::Malformed {
                    what: "LowWater entry",
                    reason: format!("{} bytes, 8 expected", bytes.len()),
                }),
        }
    }

    /// Where and how the inbox ended `id`, from `Processed[id]` (the block number) and
    /// that block's `MessageProcessed`, `MessageRefused` or `MessageExpired` event:
    /// `(block number, block hash, extrinsic hash, outcome)`. None when the id has
    /// not ended at the finalized head.
    pub async fn find_ending(
        &self,
        id: &MessageId,
    ) -> Result<Option<(u32, [u8; 32], [u8; 32], MessageOutcome)>, Error> {
        use parity_scale_codec::Decode;
        let (_, head) = self.client.finalized_head().await?;
        let Some(raw) = self
            .client
            .storage(&keys::processed_key(&id.0), Some(head))
            .await?
        else {
            return Ok(None);
        };
        let number = u32::decode(&mut raw.as_slice()).map_err(|e| Error::Malformed {
            what: "Processed entry",
            reason: e.to_string(),
        })?;
        let hash = self
            .client
            .block_hash(number)
            .await?
            .ok_or_else(|| Error::UnknownBlock(number.to_string()))?;
        let at = self
            .client
            .api
            .at_block_hash_and_number(BlockHash::from(hash), u64::from(number))
            .await?;
        let events = at.events().fetch().await?;
        let mut found = None;
        for event in events.iter() {
            let event = event?;
            if let Some((ended, outcome)) = ending(&event)? {
                if ended == *id {
                    if let subxt::events::Phase::ApplyExtrinsic(i) = event.phase() {
                        found = Some((i as usize, outcome));
                    }
                }
            }
        }
        let Some((index, outcome)) = found else {
            return Err(Error::Malformed {
                what: "Processed entry",
                reason: format!("block {number} has no event ending the id"),
            });
        };
        let extrinsics = at.extrinsics().fetch().await?;
        let tx = extrinsics
            .iter()
            .nth(index)
            .ok_or_else(|| Error::Malformed {
                what: "block body",
                reason: format!("block {number} has no extrinsic {index}"),
            })?
            .map_err(|e| Error::Malformed {
                what: "extrinsic",
                reason: e.to_string(),
            })?
            .hash()
            .0;
        Ok(Some((number, hash, tx, outcome)))
    }

    /// Signs and submits `payload` with the next nonce and waits until a finalized
    /// block includes it; the runtime's refusal becomes [`Error::Refused`].
    pub async fn submit<P: Payload>(&self, payload: &P) -> Result<Receipt, Error> {
        let mut next = self.next_nonce.lock().await;
        let at = self.client.api.at_current_block().await?;
        let mut transactions = at.transactions();
        let account = subxt::utils::AccountId32(self.signer.account());
        let nonce = match *next {
            Some(n) => n,
            None => transactions.account_nonce(&account).await?,
        };
        let params = DefaultExtrinsicParamsBuilder::<ChainConfig>::new()
            .nonce(nonce)
            .build();
        let submitted = match &self.signer {
            SubmitKey::Sr25519(pair) => {
                transactions
                    .sign_and_submit_then_watch(payload, pair.as_ref(), params)
                    .await
            }
            SubmitKey::Ecdsa(key) => {
                let mut signable = transactions
                    .create_signable(payload, &account, params)
                    .await?;
                // As sp_core's ECDSA pair: the signature is over blake2-256 of the
                // signer payload, with v in {0, 1}.
                let digest = sp_crypto_hashing::blake2_256(&signable.signer_payload()?);
                let key = key.clone();
                let signing = tokio::task::spawn_blocking(move || key.sign_prehash(&digest));
                let signature = tokio::time::timeout(SIGN_TIMEOUT, signing)
                    .await
                    .map_err(|_| {
                        Error::Signing(format!("no answer within {} s", SIGN_TIMEOUT.as_secs()))
                    })?
                    .map_err(|e| Error::Signing(e.to_string()))?
                    .map_err(|e| Error::Signing(e.to_string()))?;
                let mut bytes = [0u8; 65];
                bytes[..32].copy_from_slice(&signature.r);
                bytes[32..64].copy_from_slice(&signature.s);
                bytes[64] = signature.recovery_id;
                match signable.sign_with_account_and_signature(
                    &account,
                    &subxt::utils::MultiSignature::Ecdsa(bytes),
                ) {
                    Ok(submittable) => submittable.submit_and_watch().await,
                    Err(e) => Err(e),
                }
            }
        };
        let progress = match submitted {
            Ok(p) => p,
            Err(e) => {
                // The pool refused it (for example a stale nonce): ask the chain again.
                *next = None;
                return Err(e.into());
            }
        };
        *next = Some(nonce + 1);
        // The pool has it: later submissions need not wait for this one's finality.
        drop(next);
        let tx_hash = progress.extrinsic_hash().0;
        let in_block = match progress.wait_for_finalized().await {
            Ok(b) => b,
            Err(e) => {
                // Dropped or invalidated: the nonce may be unused, ask the chain again.
                *self.next_nonce.lock().await = None;
                return Err(match e {
                    subxt::error::TransactionProgressError::TransactionStatusError(s) => {
                        Error::Dropped(s.to_string())
                    }
                    other => other.into(),
                });
            }
        };
        let block_hash = in_block.block_hash().0;
        let block_number = self.client.block_number(block_hash).await?;
        let events = match in_block.wait_for_success().await {
            Ok(events) => events,
            Err(subxt::error::TransactionEventsError::ExtrinsicFailed(dispatch)) => {
                return Err(refusal(&dispatch));
            }
            Err(e) => return Err(e.into()),
        };
        let mut outcomes = Vec::new();
        for event in events.iter() {
            let event = event?;
            if let Some(ended) = ending(&event)? {
                outcomes.push(ended);
                continue;
            }
            if event.pallet_name() != keys::PALLET {
                continue;
            }
            match event.event_name() {
                "MessageHandlerFailed" => {
                    let f = event.decode_fields_unchecked_as::<IdOnly>()?;
                    let fields = event.decode_fields_unchecked_as::<subxt::dynamic::Value>()?;
                    let error = fields
                        .at("error")
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| fields.to_string());
                    outcomes.push((MessageId(f.id), MessageOutcome::HandlerFailed(error)));
                }
                "MessageHeld" => {
                    let f = event.decode_fields_unchecked_as::<HeldFields>()?;
                    let reason = isthmus_protocol::result_text(&f.reason);
                    outcomes.push((MessageId(f.id), MessageOutcome::Held(reason)));
                }
                "MessageSkipped" => {
                    // The pallet skips only a message that ended before.
                    let f = event.decode_fields_unchecked_as::<IdOnly>()?;
                    outcomes.push((MessageId(f.id), MessageOutcome::AlreadyDelivered));
                }
                _ => {}
            }
        }
        Ok(Receipt {
            block_hash,
            block_number,
            tx_hash,
            outcomes,
        })
    }
}

fn refusal(dispatch: &subxt::error::DispatchError) -> Error {
    match dispatch {
        subxt::error::DispatchError::Module(module) => match module.details() {
            Ok(details) => Error::Refused {
                pallet: details.pallet.name().to_string(),
                error: details.variant.name.clone(),
            },
            Err(_) => Error::Refused {
                pallet: "unknown".into(),
                error: module.details_string(),
            },
        },
        other => Error::Refused {
            pallet: "runtime".into(),
            error: other.to_string(),
        },
    }
}
