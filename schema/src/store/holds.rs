//! Held messages and the members' signed decisions on them (docs/protocol.md,
//! "Holds"; docs/schema.md, `hold_decisions`, `holds_v`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{append_log, get, Result, Store};
use crate::error::StoreError;
use crate::types::{LogEvent, MessageId, MessageStatus};

/// A decision on a held message: release or reject. PERSISTED in
/// `hold_decisions.decision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldVerdict {
    /// Execute it past the controls that held it.
    Release,
    /// End it refused.
    Reject,
}

impl HoldVerdict {
    /// `release` or `reject`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Reject => "reject",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "release" => Ok(Self::Release),
            "reject" => Ok(Self::Reject),
            other => Err(StoreError::InvalidInput(format!(
                "hold decision {other:?}: expected release or reject"
            ))),
        }
    }
}

/// One member's signed decision on one held message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldDecisionRecord {
    /// The held message.
    pub message_id: MessageId,
    /// Release or reject.
    pub verdict: HoldVerdict,
    /// The signing member's attestation address.
    pub signer: [u8; 20],
    /// Its name in the consortium.
    pub member: String,
    /// The destination's decision digest.
    pub digest: [u8; 32],
    /// The signature over `digest`.
    pub signature: [u8; 65],
    /// Why.
    pub reason: String,
    /// When it was recorded here.
    pub decided_at: Option<DateTime<Utc>>,
}

/// A held message as `holds_v` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldMessage {
    /// The message.
    pub id: MessageId,
    /// Origin ledger id.
    pub origin: u32,
    /// Destination ledger id.
    pub destination: u32,
    /// Its status now (`held`, or how it ended).
    pub status: MessageStatus,
    /// The app's reason, as last seen.
    pub reason: Option<String>,
    /// When it was first seen held.
    pub first_held_at: DateTime<Utc>,
    /// A payment's amount, as a decimal string (None for other messages).
    pub amount: Option<String>,
    /// A payment's debtor bank, hex.
    pub debtor: Option<String>,
    /// A payment's creditor bank, hex.
    pub creditor: Option<String>,
    /// Release signatures recorded here.
    pub releases: i64,
    /// Rejection signatures recorded here.
    pub rejections: i64,
}

impl Store {
    /// Records a signed decision once, with its `hold_decision` log row (`evidence`),
    /// in one transaction. Returns false (and writes nothing) if this signer's same
    /// decision on this message is recorded already.
    pub async fn record_hold_decision(
        &self,
        d: &HoldDecisionRecord,
        evidence: &Value,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO hold_decisions \
                 (message_id, decision, signer, member, digest, signature, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(d.message_id.0.to_vec())
        .bind(d.verdict.as_str())
        .bind(d.signer.to_vec())
        .bind(&d.member)
        .bind(d.digest.to_vec())
        .bind(d.signature.to_vec())
        .bind(&d.reason)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("record hold decision"))?
        .rows_affected()
            == 1;
        if inserted {
            append_log(
                &mut tx,
                Some(&d.message_id),
                LogEvent::HoldDecision,
                evidence,
                actor,
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit hold decision"))?;
        Ok(inserted)
    }

    /// Logs a quorum's decision submitted to the destination (`evidence`: the
    /// transaction, the signers), and makes the held message due now, so that its
    /// next submission executes or ends it.
    pub async fn hold_decided(&self, id: MessageId, evidence: &Value, actor: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        append_log(&mut tx, Some(&id), LogEvent::HoldDecision, evidence, actor).await?;
        sqlx::query(
            "UPDATE messages SET next_attempt_at = now() WHERE id = $1 AND status = 'held'",
        )
        .bind(id.0.to_vec())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("make held message due"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit hold decision"))
    }

    /// Logs a step on held message `id` that decides nothing on its own (this
    /// member's screening of it: `evidence` holds the verdict and why).
    pub async fn log_hold_step(&self, id: MessageId, evidence: &Value, actor: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        append_log(&mut tx, Some(&id), LogEvent::HoldDecision, evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit hold step"))
    }

    /// The decisions recorded here on message `id`, oldest first.
    pub async fn hold_decisions(&self, id: MessageId) -> Result<Vec<HoldDecisionRecord>> {
        let rows = sqlx::query(
            "SELECT decision, signer, member, digest, signature, reason, decided_at \
             FROM hold_decisions WHERE message_id = $1 ORDER BY decided_at, signer",
        )
        .bind(id.0.to_vec())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read hold decisions"))?;
        rows.iter()
            .map(|row| {
                let verdict: String = get(row, "decision")?;
                Ok(HoldDecisionRecord {
                    message_id: id,
                    verdict: HoldVerdict::parse(&verdict)?,
                    signer: fixed(get::<Vec<u8>>(row, "signer")?, "signer")?,
                    member: get(row, "member")?,
                    digest: fixed(get::<Vec<u8>>(row, "digest")?, "digest")?,
                    signature: fixed(get::<Vec<u8>>(row, "signature")?, "signature")?,
                    reason: get(row, "reason")?,
                    decided_at: Some(get(row, "decided_at")?),
                })
            })
            .collect()
    }

    /// Messages seen held, newest first: those still `held`, or all of them
    /// (`all`), at most `limit`.
    pub async fn held_messages(&self, all: bool, limit: i64) -> Result<Vec<HeldMessage>> {
        let rows = sqlx::query(
            "SELECT message_id, origin, destination, status, reason, first_held_at, \
                    amount::text AS amount, debtor_hex, creditor_hex, \
                    releases_signed, rejections_signed \
             FROM holds_v WHERE $1 OR status = 'held' \
             ORDER BY first_held_at DESC LIMIT $2",
        )
        .bind(all)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("read held messages"))?;
        rows.iter()
            .map(|row| {
                let id: Vec<u8> = get(row, "message_id")?;
                let status: String = get(row, "status")?;
                Ok(HeldMessage {
                    id: MessageId(fixed(id, "message_id")?),
                    origin: super::to_u32(get::<i64>(row, "origin")?, "origin")?,
                    destination: super::to_u32(get::<i64>(row, "destination")?, "destination")?,
                    status: status.parse()?,
                    reason: get(row, "reason")?,
                    first_held_at: get(row, "first_held_at")?,
                    amount: get(row, "amount")?,
                    debtor: get(row, "debtor_hex")?,
                    creditor: get(row, "creditor_hex")?,
                    releases: get(row, "releases_signed")?,
                    rejections: get(row, "rejections_signed")?,
                })
            })
            .collect()
    }
}

fn fixed<const N: usize>(bytes: Vec<u8>, column: &'static str) -> Result<[u8; N]> {
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        StoreError::InvalidInput(format!("{column}: {} bytes, expected {N}", bytes.len()))
    })
}
