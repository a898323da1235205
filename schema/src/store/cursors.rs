//! Progress cursors: where each pipeline stage has got to on a ledger.
//!
//! A cursor moves only inside the transaction that writes the rows it covers (see
//! [`Store::record_observed`]); this file reads it and holds the forward-only move.

use sqlx::PgConnection;

use super::{arr, get, to_i64, to_u64, Result, Store};
use crate::error::StoreError;
use crate::types::{BlockRef, Cursor, CursorKey};

impl Store {
    /// The stored cursor, or `None` if the stage never recorded progress.
    pub async fn load_cursor(&self, key: CursorKey) -> Result<Option<Cursor>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db("acquire connection"))?;
        load_cursor(&mut conn, key).await
    }
}

pub(super) async fn load_cursor(conn: &mut PgConnection, key: CursorKey) -> Result<Option<Cursor>> {
    let row = sqlx::query(
        "SELECT block_number, block_hash, updated_at FROM progress_cursors \
         WHERE ledger_id = $1 AND destination_id IS NOT DISTINCT FROM $2 AND stage = $3",
    )
    .bind(i64::from(key.ledger))
    .bind(key.destination.map(i64::from))
    .bind(key.stage.as_str())
    .fetch_optional(conn)
    .await
    .map_err(StoreError::db("load cursor"))?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = get(&row, "block_hash")?;
    Ok(Some(Cursor {
        block: BlockRef {
            number: to_u64(get(&row, "block_number")?, "block_number")?,
            hash: arr(&hash, "block_hash")?,
        },
        updated_at: get(&row, "updated_at")?,
    }))
}

/// Moves the cursor `key` to `block` inside the caller's transaction and returns
/// whether it moved. The same block again is accepted without a move (a replayed
/// range); an older block is refused with [`StoreError::CursorBackwards`], the same
/// number with another hash with [`StoreError::CursorConflict`].
pub(super) async fn advance_cursor(
    conn: &mut PgConnection,
    key: CursorKey,
    block: BlockRef,
) -> Result<bool> {
    let block_number = to_i64(block.number, "cursor block number")?;
    let advanced = sqlx::query(
        "INSERT INTO progress_cursors (ledger_id, destination_id, stage, block_number, block_hash) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT ON CONSTRAINT progress_cursors_key DO UPDATE \
             SET block_number = EXCLUDED.block_number, block_hash = EXCLUDED.block_hash, \
                 updated_at = now() \
             WHERE progress_cursors.block_number < EXCLUDED.block_number \
         RETURNING block_number",
    )
    .bind(i64::from(key.ledger))
    .bind(key.destination.map(i64::from))
    .bind(key.stage.as_str())
    .bind(block_number)
    .bind(block.hash.to_vec())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("advance cursor"))?
    .is_some();

    if !advanced {
        let current = load_cursor(conn, key)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "cursor",
                key: key.to_string(),
            })?;
        if current.block.number > block.number {
            return Err(StoreError::CursorBackwards {
                key,
                current: current.block,
                proposed: block,
            });
        }
        if current.block.hash != block.hash {
            return Err(StoreError::CursorConflict {
                key,
                current: current.block,
                proposed: block,
            });
        }
    }
    Ok(advanced)
}
