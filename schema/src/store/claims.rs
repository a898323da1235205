//! Delivery leases: claims of ready messages or of given ids, hold-backs for
//! another member's turn, and releases (by the holder, or of a dead process).

use std::time::Duration;

use sqlx::postgres::PgRow;

use super::{decode_message, message_columns, Result, Store};
use crate::error::StoreError;
use crate::types::{Claim, MessageId, MessageRecord, MessageStatus};

impl Store {
    /// Leases up to `request.limit` messages for `request.destination` in one of
    /// `request.statuses` (and from one of `request.origins`, if any are named: a
    /// relayer never leases messages of routes it does not serve) to
    /// `request.worker` for `request.lease`: first those never scheduled (no
    /// `next_attempt_at`), then retries and held-back messages; oldest nonce first
    /// per origin within each. With a [`Claim::turn`], a member that submits in turns
    /// gets, among the never-scheduled messages, those whose `nonce % members ==
    /// index` (its own turns) first, so a batch is not filled with messages it would
    /// only hold back. The records come back in (origin, nonce) order.
    ///
    /// Ready means: not leased (or lease expired) and past `next_attempt_at` if set
    /// (a failed message's back-off, or a message held back for another member's
    /// submission turn). The rows are selected `FOR UPDATE SKIP LOCKED` and marked in
    /// the same statement (one implicit transaction), so concurrent claimers never
    /// receive the same message. A status change out of the in-flight statuses ends
    /// the lease.
    pub async fn claim(&self, request: &Claim<'_>) -> Result<Vec<MessageRecord>> {
        let lease_micros = lease_micros(request.worker, request.lease)?;
        // The statuses go into the statement as literals (from the enum, never from
        // input), so that the planner can use the partial index of pending messages
        // (`messages_due_idx`): a claim then reads the messages that are due, not the
        // whole history nor the ones held back.
        if request.statuses.is_empty() {
            return Ok(Vec::new());
        }
        let statuses = status_literals(request.statuses);
        let sql = format!(
            "WITH ready AS ( \
                 SELECT id FROM messages \
                 WHERE destination = $1 AND status IN ({statuses}) \
                   AND (cardinality($5::bigint[]) = 0 OR origin = ANY($5::bigint[])) \
                   AND (next_attempt_at IS NULL OR next_attempt_at <= now()) \
                   AND (claimed_until IS NULL OR claimed_until <= now()) \
                 ORDER BY (next_attempt_at IS NOT NULL), \
                          ($6::bigint > 0 AND nonce % greatest($6::bigint, 1) <> $7::bigint), \
                          origin, nonce \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE messages m \
                SET claimed_by = $3, claimed_until = now() + $4::bigint * interval '1 microsecond' \
             FROM ready WHERE m.id = ready.id \
             RETURNING {}",
            message_columns("m.")
        );
        let turn = request.turn;
        let rows = sqlx::query(&sql)
            .bind(i64::from(request.destination))
            .bind(i64::from(request.limit))
            .bind(request.worker)
            .bind(lease_micros)
            .bind(
                request
                    .origins
                    .iter()
                    .map(|o| i64::from(*o))
                    .collect::<Vec<_>>(),
            )
            .bind(turn.map_or(0, |t| i64::from(t.members)))
            .bind(turn.map_or(0, |t| i64::from(t.index)))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claim ready messages"))?;
        claimed_in_order(&rows)
    }

    /// Claims those of `ids` that are in one of `statuses` and not leased (or whose
    /// lease expired), whatever their `next_attempt_at`: for a relayer that learned
    /// from the destination that these messages were delivered and records it. Rows
    /// are locked `FOR UPDATE SKIP LOCKED` and marked in one statement, like
    /// [`Store::claim`], so a delivery lane and this claimer never share one.
    pub async fn claim_ids(
        &self,
        ids: &[MessageId],
        statuses: &[MessageStatus],
        worker: &str,
        lease: Duration,
    ) -> Result<Vec<MessageRecord>> {
        let lease_micros = lease_micros(worker, lease)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let sql = format!(
            "WITH ready AS ( \
                 SELECT id FROM messages \
                 WHERE id = ANY($1::bytea[]) AND status = ANY($2::text[]) \
                   AND (claimed_until IS NULL OR claimed_until <= now()) \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE messages m \
                SET claimed_by = $3, claimed_until = now() + $4::bigint * interval '1 microsecond' \
             FROM ready WHERE m.id = ready.id \
             RETURNING {}",
            message_columns("m.")
        );
        let rows = sqlx::query(&sql)
            .bind(&raw)
            .bind(&statuses)
            .bind(worker)
            .bind(lease_micros)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claim messages by id"))?;
        claimed_in_order(&rows)
    }

    /// Frees the unexpired leases held by workers whose id starts with `prefix` and
    /// that have no database session left (a killed or crashed process of this
    /// member: relayer processes name their sessions after their worker id, see
    /// [`super::connect_as`]). Their messages resume at once instead of after the
    /// lease. Returns how many leases were freed.
    pub async fn release_orphaned_leases(&self, prefix: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by IS NOT NULL AND starts_with(claimed_by, $1) \
               AND claimed_until > now() \
               AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
                               WHERE a.application_name = messages.claimed_by)",
        )
        .bind(prefix)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release orphaned leases"))?;
        Ok(done.rows_affected())
    }

    /// Frees the leases `worker` holds on messages other than `in_use` that it took
    /// more than `grace` ago (a lease runs `lease` from its claim). A live process
    /// leaves such leases behind when the answer to its claim, or its release, was
    /// lost to a database fault: without this they would hold their messages until
    /// the lease runs out. Returns how many were freed.
    pub async fn release_stray_leases(
        &self,
        worker: &str,
        in_use: &[MessageId],
        lease: Duration,
        grace: Duration,
    ) -> Result<u64> {
        let micros = |d: Duration| {
            i64::try_from(d.as_micros())
                .map_err(|_| StoreError::InvalidInput("lease too long".into()))
        };
        let raw: Vec<Vec<u8>> = in_use.iter().map(|id| id.0.to_vec()).collect();
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by = $1 AND claimed_until > now() \
               AND claimed_until < now() + ($3::bigint - $4::bigint) * interval '1 microsecond' \
               AND NOT (id = ANY($2::bytea[]))",
        )
        .bind(worker)
        .bind(&raw)
        .bind(micros(lease)?)
        .bind(micros(grace)?)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release stray leases"))?;
        Ok(done.rows_affected())
    }

    /// Holds back `ids` (those still `observed`) until `delay` from now: claims skip a
    /// message until its `next_attempt_at`. A relayer holds back the messages another
    /// member's turn it is to submit, so that member's delivery is normally the only
    /// one, and looks at them again after each delay. Scheduling only: no status
    /// change and no log row. Returns how many.
    pub async fn defer_observed(&self, ids: &[MessageId], delay: Duration) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let micros = i64::try_from(delay.as_micros())
            .map_err(|_| StoreError::InvalidInput("delay too long".into()))?;
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let done = sqlx::query(
            "UPDATE messages SET next_attempt_at = now() + $2::bigint * interval '1 microsecond' \
             WHERE id = ANY($1::bytea[]) AND status = 'observed'",
        )
        .bind(&raw)
        .bind(micros)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("defer observed messages"))?;
        Ok(done.rows_affected())
    }

    /// Gives the leases `worker` holds on `ids` back before they expire, in one
    /// statement. Returns how many it held.
    pub async fn release_claims(&self, ids: &[MessageId], worker: &str) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
        let done = sqlx::query(
            "UPDATE messages SET claimed_by = NULL, claimed_until = NULL \
             WHERE id = ANY($1::bytea[]) AND claimed_by = $2",
        )
        .bind(&raw)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("release claims"))?;
        Ok(done.rows_affected())
    }
}

/// `statuses` as a list of SQL string literals (their persisted names, which
/// contain no quote).
fn status_literals(statuses: &[MessageStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A claim's lease in microseconds, for `worker` (which must be named).
fn lease_micros(worker: &str, lease: Duration) -> Result<i64> {
    if worker.is_empty() {
        return Err(StoreError::InvalidInput("claims need a worker id".into()));
    }
    i64::try_from(lease.as_micros()).map_err(|_| StoreError::InvalidInput("lease too long".into()))
}

/// Claimed rows as records, in (origin, nonce) order.
fn claimed_in_order(rows: &[PgRow]) -> Result<Vec<MessageRecord>> {
    let mut claimed = rows
        .iter()
        .map(decode_message)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|m| (m.origin, m.nonce));
    Ok(claimed)
}
