//! Final deliveries on the destination: the delivery rows, the moves to
//! `delivered` and their log rows, per delivery transaction.

use sqlx::PgConnection;

use super::transitions::cas_status_each;
use super::{to_i64, with_from, Result, Store};
use crate::error::StoreError;
use crate::evidence::{self, DeliveryLog};
use crate::types::{MessageStatus, NewDelivery};

impl Store {
    /// Records the final delivery of the messages of one delivery transaction, all
    /// in `from` (usually `submitted`; also `attested` or `failed` when the
    /// destination had already processed them, or `observed` / `verified` when
    /// another member's delivery was seen first): the delivery rows, the moves to
    /// `delivered` and their log rows. Every row and log entry commits together, or
    /// none does.
    pub async fn record_deliveries(
        &self,
        deliveries: &[NewDelivery],
        from: MessageStatus,
        actor: &str,
    ) -> Result<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        insert_deliveries(&mut tx, deliveries, from, actor).await?;
        tx.commit().await.map_err(StoreError::db("commit delivery"))
    }
}

/// The delivery rows, the moves to `delivered` and their log rows (inside the
/// caller's transaction), one statement per table whatever the count.
async fn insert_deliveries(
    conn: &mut PgConnection,
    deliveries: &[NewDelivery],
    from: MessageStatus,
    actor: &str,
) -> Result<()> {
    let n = deliveries.len();
    let mut ids = Vec::with_capacity(n);
    let mut evidences = Vec::with_capacity(n);
    let mut raw_ids = Vec::with_capacity(n);
    let mut destinations = Vec::with_capacity(n);
    let mut tx_hashes = Vec::with_capacity(n);
    let mut block_numbers = Vec::with_capacity(n);
    let mut block_hashes = Vec::with_capacity(n);
    let mut gas = Vec::with_capacity(n);
    let mut digests = Vec::with_capacity(n);
    let mut indexes = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    for delivery in deliveries {
        if delivery.batch_size == 0 || delivery.batch_index >= delivery.batch_size {
            return Err(StoreError::InvalidInput(format!(
                "batch position {} of {} is impossible",
                delivery.batch_index, delivery.batch_size
            )));
        }
        ids.push(delivery.message_id);
        evidences.push(
            with_from(
                from,
                &evidence::json(&DeliveryLog {
                    tx_hash: hex::encode(delivery.tx_hash),
                    destination: delivery.destination,
                    block_number: delivery.block_number,
                    block_hash: delivery.block_hash.map(hex::encode),
                    gas_used: delivery.gas_used,
                    checkpoint_digest: delivery.checkpoint_digest.map(hex::encode),
                    batch_index: delivery.batch_index,
                    batch_size: delivery.batch_size,
                }),
            )
            .to_string(),
        );
        raw_ids.push(delivery.message_id.0.to_vec());
        destinations.push(i64::from(delivery.destination));
        tx_hashes.push(delivery.tx_hash.to_vec());
        block_numbers.push(to_i64(delivery.block_number, "delivery block number")?);
        block_hashes.push(delivery.block_hash.map(|h| h.to_vec()));
        gas.push(
            delivery
                .gas_used
                .map(|g| to_i64(g, "gas used"))
                .transpose()?,
        );
        digests.push(delivery.checkpoint_digest.map(|h| h.to_vec()));
        indexes.push(
            i32::try_from(delivery.batch_index)
                .map_err(|_| StoreError::InvalidInput("batch index too large".into()))?,
        );
        sizes.push(
            i32::try_from(delivery.batch_size)
                .map_err(|_| StoreError::InvalidInput("batch size too large".into()))?,
        );
    }
    let addressed = cas_status_each(
        conn,
        &ids,
        from,
        MessageStatus::Delivered,
        &evidences,
        actor,
    )
    .await?;
    if let Some((delivery, _)) = deliveries
        .iter()
        .zip(&addressed)
        .find(|(d, to)| d.destination != **to)
    {
        return Err(StoreError::InvalidInput(format!(
            "message {} is not addressed to ledger {}",
            delivery.message_id, delivery.destination
        )));
    }
    sqlx::query(
        "INSERT INTO deliveries (message_id, destination, tx_hash, block_number, block_hash, \
             gas_used, checkpoint_digest, batch_index, batch_size) \
         SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[], $4::int8[], $5::bytea[], \
                              $6::int8[], $7::bytea[], $8::int4[], $9::int4[])",
    )
    .bind(&raw_ids)
    .bind(&destinations)
    .bind(&tx_hashes)
    .bind(&block_numbers)
    .bind(&block_hashes)
    .bind(&gas)
    .bind(&digests)
    .bind(&indexes)
    .bind(&sizes)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("insert deliveries"))?;
    Ok(())
}
