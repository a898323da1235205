//! [`KeyWallet`]: an ethers [`Signer`] over any [`EcdsaKey`], so that transactions are
//! signed by the same key source the relayer is configured with (in process or in a
//! PKCS#11 token).
//!
//! It mirrors `ethers_signers::Wallet` (2.0.14) step for step: the transaction gets the
//! wallet's chain id when it has none, the signature is over its sighash with
//! `v = to_eip155_v(recovery_id, chain_id)`; messages are signed over their EIP-191 hash
//! and typed data over its EIP-712 hash, both with `v = 27 + recovery_id`. With a
//! [`isthmus_keys::LocalKey`] its signatures equal a `LocalWallet`'s for the same key.
//! A token call blocks, so each signature runs in `spawn_blocking`.

use async_trait::async_trait;
use ethers::signers::{to_eip155_v, Signer};
use ethers::types::transaction::eip2718::TypedTransaction;
use ethers::types::transaction::eip712::Eip712;
use ethers::types::{Address, Signature, H256, U256};
use ethers::utils::hash_message;
use isthmus_keys::{EcdsaKey, KeyError, RecoverableSignature};
use std::sync::Arc;

/// How long one signature may take: a hung token must not hold a delivery.
pub const SIGN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An ethers signer backed by an [`EcdsaKey`].
#[derive(Clone)]
pub struct KeyWallet {
    key: Arc<dyn EcdsaKey>,
    address: Address,
    chain_id: u64,
}

/// Why a [`KeyWallet`] could not sign.
#[derive(Debug, thiserror::Error)]
pub enum KeyWalletError {
    /// The key could not sign; its own error says whether to retry.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The EIP-712 payload could not be encoded. Fatal: the payload is malformed.
    #[error("EIP-712 payload could not be encoded: {reason}")]
    Eip712 {
        /// The encoder's message.
        reason: String,
    },
    /// The key (its token) did not answer in time. Retryable: the transaction is
    /// signed again on the next attempt.
    #[error("the submitter key did not answer within {seconds} s")]
    Timeout {
        /// The bound.
        seconds: u64,
    },
    /// The blocking signing task panicked or was cancelled by a runtime shutdown.
    #[error("the signing task did not complete: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl KeyWalletError {
    /// Whether signing again later may succeed. A key error answers for itself; a
    /// malformed payload stays malformed; a panicked signing task is a bug and a
    /// cancelled one means the runtime is shutting down.
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyWalletError::Key(e) => e.is_retryable(),
            KeyWalletError::Timeout { .. } => true,
            KeyWalletError::Eip712 { .. } | KeyWalletError::Join(_) => false,
        }
    }
}

impl KeyWallet {
    /// A wallet signing with `key` for the chain `chain_id` (EIP-155).
    pub fn new(key: Arc<dyn EcdsaKey>, chain_id: u64) -> Self {
        let address = Address::from(key.address());
        Self {
            key,
            address,
            chain_id,
        }
    }

    /// The key this wallet signs with.
    pub fn key(&self) -> &Arc<dyn EcdsaKey> {
        &self.key
    }

    /// Signs a 32-byte hash off the async runtime's worker threads, with `v = 27 + recovery_id`.
    pub async fn sign_hash(&self, hash: H256) -> Result<Signature, KeyWalletError> {
        let signature = self.sign_prehash(hash).await?;
        Ok(ethers_signature(
            &signature,
            27 + u64::from(signature.recovery_id),
        ))
    }

    async fn sign_prehash(&self, hash: H256) -> Result<RecoverableSignature, KeyWalletError> {
        let key = Arc::clone(&self.key);
        let signing = tokio::task::spawn_blocking(move || key.sign_prehash(&hash.0));
        Ok(tokio::time::timeout(SIGN_TIMEOUT, signing)
            .await
            .map_err(|_| KeyWalletError::Timeout {
                seconds: SIGN_TIMEOUT.as_secs(),
            })???)
    }

    /// Signs `tx` for its own chain id, or this wallet's when it has none, with an
    /// EIP-155 `v` (as `Wallet::sign_transaction_sync`).
    async fn sign_transaction_for_chain(
        &self,
        tx: &TypedTransaction,
    ) -> Result<Signature, KeyWalletError> {
        // The sighash must commit to the same chain id as v.
        let chain_id = tx.chain_id().map(|id| id.as_u64()).unwrap_or(self.chain_id);
        let mut tx = tx.clone();
        tx.set_chain_id(chain_id);
        let signature = self.sign_prehash(tx.sighash()).await?;
        Ok(ethers_signature(
            &signature,
            to_eip155_v(signature.recovery_id, chain_id),
        ))
    }
}

fn ethers_signature(signature: &RecoverableSignature, v: u64) -> Signature {
    Signature {
        r: U256::from_big_endian(&signature.r),
        s: U256::from_big_endian(&signature.s),
        v,
    }
}

impl std::fmt::Debug for KeyWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWallet")
            .field("key", &self.key.describe())
            .field("address", &self.address)
            .field("chain_id", &self.chain_id)
            .finish()
    }
}

#[async_trait]
impl Signer for KeyWallet {
    type Error = KeyWalletError;

    async fn sign_message<S: Send + Sync + AsRef<[u8]>>(
        &self,
        message: S,
    ) -> Result<Signature, Self::Error> {
        self.sign_hash(hash_message(message.as_ref())).await
    }

    async fn sign_transaction(&self, tx: &TypedTransaction) -> Result<Signature, Self::Error> {
        let mut tx_with_chain = tx.clone();
        if tx_with_chain.chain_id().is_none() {
            tx_with_chain.set_chain_id(self.chain_id);
        }
        self.sign_transaction_for_chain(&tx_with_chain).await
    }

    async fn sign_typed_data<T: Eip712 + Send + Sync>(
        &self,
        payload: &T,
    ) -> Result<Signature, Self::Error> {
        let encoded = payload
            .encode_eip712()
            .map_err(|e| KeyWalletError::Eip712 {
                reason: e.to_string(),
            })?;
        self.sign_hash(H256::from(encoded)).await
    }

    fn address(&self) -> Address {
        self.address
    }

    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn with_chain_id<T: Into<u64>>(mut self, chain_id: T) -> Self {
        self.chain_id = chain_id.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethers::signers::LocalWallet;
    use ethers::types::transaction::eip712::TypedData;
    use ethers::types::{Eip1559TransactionRequest, TransactionRequest};
    use isthmus_keys::LocalKey;

    const ANVIL_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const CHAIN_ID: u64 = 31337;

    fn wallets() -> (KeyWallet, LocalWallet) {
        let secret = hex::decode(ANVIL_KEY).expect("hex");
        let secret = k256::SecretKey::from_slice(&secret).expect("valid scalar");
        let key_wallet = KeyWallet::new(Arc::new(LocalKey::new(&secret)), CHAIN_ID);
        let local_wallet = ANVIL_KEY
            .parse::<LocalWallet>()
            .expect("key")
            .with_chain_id(CHAIN_ID);
        assert_eq!(key_wallet.address(), local_wallet.address());
        assert_eq!(
            key_wallet.address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .expect("address")
        );
        (key_wallet, local_wallet)
    }

    fn recipient() -> Address {
        Address::from([0x42; 20])
    }

    #[tokio::test]
    async fn legacy_transaction_signature_equals_local_wallets() {
        let (key_wallet, local_wallet) = wallets();
        let tx: TypedTransaction = TransactionRequest::new()
            .to(recipient())
            .value(1_000u64)
            .gas(21_000u64)
            .gas_price(1_000_000_000u64)
            .nonce(7u64)
            .into();
        let ours = key_wallet.sign_transaction(&tx).await.expect("signs");
        let theirs = local_wallet.sign_transaction(&tx).await.expect("signs");
        assert_eq!(ours, theirs);
        assert!(
            ours.v == 35 + 2 * CHAIN_ID || ours.v == 36 + 2 * CHAIN_ID,
            "v {}",
            ours.v
        );
        let mut with_chain = tx.clone();
        with_chain.set_chain_id(CHAIN_ID);
        ours.verify(with_chain.sighash(), key_wallet.address())
            .expect("recovers");

        // A transaction's own chain id wins over the wallet's, as in ethers' Wallet.
        let mut other_chain = tx.clone();
        other_chain.set_chain_id(5u64);
        let ours = key_wallet
            .sign_transaction(&other_chain)
            .await
            .expect("signs");
        assert_eq!(
            ours,
            local_wallet
                .sign_transaction(&other_chain)
                .await
                .expect("signs")
        );
        assert!(ours.v == 45 || ours.v == 46, "v {}", ours.v);

        // with_chain_id changes the chain a chain-less transaction is signed for.
        let moved = key_wallet.clone().with_chain_id(10u64);
        assert_eq!(moved.chain_id(), 10);
        let ours = moved.sign_transaction(&tx).await.expect("signs");
        let theirs = local_wallet
            .clone()
            .with_chain_id(10u64)
            .sign_transaction(&tx)
            .await
            .expect("signs");
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn eip1559_transaction_signature_equals_local_wallets() {
        let (key_wallet, local_wallet) = wallets();
        let tx: TypedTransaction = Eip1559TransactionRequest::new()
            .to(recipient())
            .value(5u64)
            .gas(60_000u64)
            .max_fee_per_gas(30_000_000_000u64)
            .max_priority_fee_per_gas(1_000_000_000u64)
            .nonce(3u64)
            .data(vec![0xde, 0xad, 0xbe, 0xef])
            .chain_id(CHAIN_ID)
            .into();
        let ours = key_wallet.sign_transaction(&tx).await.expect("signs");
        let theirs = local_wallet.sign_transaction(&tx).await.expect("signs");
        assert_eq!(ours, theirs);
        ours.verify(tx.sighash(), key_wallet.address())
            .expect("recovers");
        // The signed encoding ethers would broadcast is identical too.
        assert_eq!(tx.rlp_signed(&ours), tx.rlp_signed(&theirs));
    }

    #[tokio::test]
    async fn message_signature_equals_local_wallets() {
        let (key_wallet, local_wallet) = wallets();
        for message in [
            "hello isthmus",
            "",
            "a longer message that spans more than 32 bytes",
        ] {
            let ours = key_wallet.sign_message(message).await.expect("signs");
            let theirs = local_wallet.sign_message(message).await.expect("signs");
            assert_eq!(ours, theirs);
            assert!(ours.v == 27 || ours.v == 28);
            assert_eq!(
                ours.recover(message).expect("recovers"),
                key_wallet.address()
            );
        }
    }

    #[tokio::test]
    async fn typed_data_signature_equals_local_wallets() {
        let (key_wallet, local_wallet) = wallets();
        let typed: TypedData = serde_json::from_value(serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [
                    {"name": "name", "type": "string"},
                    {"name": "wallet", "type": "address"}
                ],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person"},
                    {"name": "contents", "type": "string"}
                ]
            },
            "primaryType": "Mail",
            "domain": {
                "name": "Ether Mail",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        }))
        .expect("typed data");
        let ours = key_wallet.sign_typed_data(&typed).await.expect("signs");
        let theirs = local_wallet.sign_typed_data(&typed).await.expect("signs");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn debug_names_the_key_not_its_secret() {
        let (key_wallet, _) = wallets();
        let debug = format!("{key_wallet:?}");
        assert!(debug.contains("in-process key 0xf39fd6e5"), "{debug}");
        assert!(!debug.contains("ac0974be"), "{debug}");
    }
}
