//! Status changes: compare-and-set transitions along the table, failures with
//! back-off or dead-lettering, and operator moves; each logged with its evidence.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::{append_log, arr, get, to_u32, with_from, Result, Store};
use crate::error::StoreError;
use crate::evidence::{self, FailureLog, OperatorLog, OperatorTransitionLog, RouteLog};
use crate::types::{
    FailureOutcome, LedgerId, LogEvent, MessageId, MessageStatus, OperatorAction, RetryPolicy,
};

impl Store {
    /// Moves one message from `from` to `to` (compare-and-set) and logs the step
    /// with `evidence` (an object; the store adds `from_status`). Refused with
    /// [`StoreError::IllegalTransition`] if the table forbids it and with
    /// [`StoreError::UnexpectedStatus`] if the message is not in `from`; nothing
    /// changes in either case.
    pub async fn transition(
        &self,
        id: MessageId,
        from: MessageStatus,
        to: MessageStatus,
        evidence: &Value,
        actor: &str,
    ) -> Result<()> {
        self.transition_many(&[id], from, to, evidence, actor).await
    }

    /// [`Store::transition`] for many messages sharing the same evidence (a batch
    /// delivery, a checkpoint covering many messages): all move or none do.
    pub async fn transition_many(
        &self,
        ids: &[MessageId],
        from: MessageStatus,
        to: MessageStatus,
        evidence: &Value,
        actor: &str,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        cas_status(&mut tx, ids, from, to, evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit transition"))
    }

    /// Records a failed delivery attempt of a message in `from`: attempts + 1,
    /// `last_error`, and either `failed` with `next_attempt_at` = now + backoff, or
    /// `dead_letter` once `policy.max_attempts` is reached. Logged with the error.
    pub async fn set_failure(
        &self,
        id: MessageId,
        from: MessageStatus,
        error: &str,
        policy: &RetryPolicy,
        actor: &str,
    ) -> Result<FailureOutcome> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT status, attempts FROM messages WHERE id = $1 FOR UPDATE")
            .bind(id.0.to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("lock message"))?
            .ok_or_else(|| StoreError::NotFound {
                what: "message",
                key: id.to_string(),
            })?;
        let status: String = get(&row, "status")?;
        let actual: MessageStatus = status.parse()?;
        if actual != from {
            return Err(StoreError::UnexpectedStatus {
                id,
                expected: from,
                actual,
            });
        }
        let attempts_now: i32 = get(&row, "attempts")?;
        let attempts = u32::try_from(attempts_now).unwrap_or(0).saturating_add(1);
        let dead = attempts >= policy.max_attempts;
        let to = if dead {
            MessageStatus::DeadLetter
        } else {
            MessageStatus::Failed
        };
        if !from.can_transition_to(to) {
            return Err(StoreError::IllegalTransition { from, to });
        }
        let delay_micros = if dead {
            None
        } else {
            Some(
                i64::try_from(policy.jittered_delay_after(attempts, &id.0).as_micros())
                    .map_err(|_| StoreError::InvalidInput("backoff too long".into()))?,
            )
        };
        let row = sqlx::query(
            "UPDATE messages SET status = $2, attempts = $3, last_error = $4, \
                    next_attempt_at = now() + $5::bigint * interval '1 microsecond', \
                    updated_at = now(), claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 RETURNING next_attempt_at",
        )
        .bind(id.0.to_vec())
        .bind(to.as_str())
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(error)
        .bind(delay_micros)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("record failure"))?;
        let next_attempt_at: Option<DateTime<Utc>> = get(&row, "next_attempt_at")?;
        let evidence = evidence::json(&FailureLog {
            from_status: from.as_str(),
            error,
            attempts,
            max_attempts: policy.max_attempts,
            next_attempt_at: next_attempt_at.map(|t| t.to_rfc3339()),
        });
        append_log(&mut tx, Some(&id), to.event(), &evidence, actor).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit failure"))?;
        Ok(match next_attempt_at {
            Some(next_attempt_at) if !dead => FailureOutcome::Failed {
                attempts,
                next_attempt_at,
            },
            _ => FailureOutcome::DeadLettered { attempts },
        })
    }

    /// The destination app held a message submitted from `from`: it enters `held`
    /// with `evidence` (the transaction and the app's reason), due again after
    /// `recheck`. Its attempts do not change: a hold is no failed delivery, and a
    /// held message is never dead-lettered for waiting. Returns when it is due.
    pub async fn set_held(
        &self,
        id: MessageId,
        from: MessageStatus,
        evidence: &Value,
        recheck: std::time::Duration,
        actor: &str,
    ) -> Result<DateTime<Utc>> {
        let micros = i64::try_from(recheck.as_micros())
            .map_err(|_| StoreError::InvalidInput("hold recheck too long".into()))?;
        let mut tx = self.begin().await?;
        cas_status(&mut tx, &[id], from, MessageStatus::Held, evidence, actor).await?;
        let row = sqlx::query(
            "UPDATE messages SET next_attempt_at = now() + $2::bigint * interval '1 microsecond' \
             WHERE id = $1 RETURNING next_attempt_at",
        )
        .bind(id.0.to_vec())
        .bind(micros)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("schedule held message"))?;
        let due: DateTime<Utc> = get(&row, "next_attempt_at")?;
        tx.commit().await.map_err(StoreError::db("commit hold"))?;
        Ok(due)
    }

    /// An operator moves a message (e.g. retries a dead letter): the action (who,
    /// what, why, in `operator_actions`), the compare-and-set transition and both
    /// log rows (event `operator`, then the status event) commit together. Returns
    /// the action's id.
    pub async fn operator_transition(
        &self,
        action: &OperatorAction,
        from: MessageStatus,
        to: MessageStatus,
    ) -> Result<i64> {
        let id = action.message_id.ok_or_else(|| {
            StoreError::InvalidInput("an operator transition names a message".into())
        })?;
        let mut tx = self.begin().await?;
        let action_id = insert_operator_action(&mut tx, action).await?;
        let evidence = evidence::json(&OperatorTransitionLog {
            operator_action_id: action_id,
            reason: &action.reason,
        });
        cas_status(&mut tx, &[id], from, to, &evidence, &action.operator).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("commit operator transition"))?;
        Ok(action_id)
    }
}

/// Compare-and-set of many messages from `from` to `to`, with one log row each in
/// input order. A lease survives a move into an in-flight status (`verified`,
/// `attested`, `submitted`): the worker holding it is mid-delivery, and another
/// replica must not take the message until the lease expires; any other target
/// clears it. All or nothing: if one id is missing or not in `from`, the error
/// names it and the caller's transaction must be dropped. Returns each message's
/// destination in input order.
async fn cas_status(
    conn: &mut PgConnection,
    ids: &[MessageId],
    from: MessageStatus,
    to: MessageStatus,
    evidence: &Value,
    actor: &str,
) -> Result<Vec<LedgerId>> {
    let evidence = with_from(from, evidence).to_string();
    cas_status_each(conn, ids, from, to, &vec![evidence; ids.len()], actor).await
}

/// [`cas_status`] with its own evidence per message (`evidences[i]` for `ids[i]`,
/// JSON objects that already name `from_status`).
pub(super) async fn cas_status_each(
    conn: &mut PgConnection,
    ids: &[MessageId],
    from: MessageStatus,
    to: MessageStatus,
    evidences: &[String],
    actor: &str,
) -> Result<Vec<LedgerId>> {
    if evidences.len() != ids.len() {
        return Err(StoreError::InvalidInput(format!(
            "{} evidence entries for {} messages",
            evidences.len(),
            ids.len()
        )));
    }
    if !from.can_transition_to(to) {
        return Err(StoreError::IllegalTransition { from, to });
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(**id)) {
        return Err(StoreError::InvalidInput(format!(
            "message {dup} listed twice"
        )));
    }
    let raw: Vec<Vec<u8>> = ids.iter().map(|id| id.0.to_vec()).collect();
    let rows = sqlx::query(
        "UPDATE messages SET status = $3, updated_at = now(), \
                claimed_by = CASE WHEN $3 IN ('verified', 'attested', 'submitted') \
                                  THEN claimed_by END, \
                claimed_until = CASE WHEN $3 IN ('verified', 'attested', 'submitted') \
                                     THEN claimed_until END, \
                next_attempt_at = CASE WHEN $3 = 'failed' THEN next_attempt_at END \
         WHERE id = ANY($1::bytea[]) AND status = $2 \
         RETURNING id, destination",
    )
    .bind(&raw)
    .bind(from.as_str())
    .bind(to.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("update message status"))?;

    let mut destinations = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: Vec<u8> = get(row, "id")?;
        let destination: i64 = get(row, "destination")?;
        destinations.insert(arr::<32>(&id, "id")?, to_u32(destination, "destination")?);
    }
    if destinations.len() != ids.len() {
        let missing = ids
            .iter()
            .find(|id| !destinations.contains_key(&id.0))
            .copied()
            .ok_or_else(|| StoreError::Decode {
                what: "status update",
                reason: "row count mismatch".into(),
            })?;
        let actual: Option<String> =
            sqlx::query_scalar("SELECT status FROM messages WHERE id = $1")
                .bind(missing.0.to_vec())
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("read message status"))?;
        return Err(match actual {
            None => StoreError::NotFound {
                what: "message",
                key: missing.to_string(),
            },
            Some(actual) => StoreError::UnexpectedStatus {
                id: missing,
                expected: from,
                actual: actual.parse()?,
            },
        });
    }

    sqlx::query(
        "INSERT INTO lifecycle_log (message_id, event, evidence, actor) \
         SELECT u.id, $2, u.evidence::jsonb, $4 \
         FROM unnest($1::bytea[], $3::text[]) WITH ORDINALITY AS u(id, evidence, ord) \
         ORDER BY u.ord",
    )
    .bind(&raw)
    .bind(to.event().as_str())
    .bind(evidences)
    .bind(actor)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("append lifecycle log"))?;

    ids.iter()
        .map(|id| {
            destinations
                .get(&id.0)
                .copied()
                .ok_or_else(|| StoreError::Decode {
                    what: "status update",
                    reason: format!("no row returned for {id}"),
                })
        })
        .collect()
}

/// Inserts an operator action (who, what, why) and logs it (event `operator`)
/// inside the caller's transaction. Returns the action's id.
pub(super) async fn insert_operator_action(
    conn: &mut PgConnection,
    action: &OperatorAction,
) -> Result<i64> {
    if action.operator.is_empty() || action.reason.is_empty() {
        return Err(StoreError::InvalidInput(
            "operator actions need a who and a why".into(),
        ));
    }
    let row = sqlx::query(
        "INSERT INTO operator_actions \
             (operator, action, reason, message_id, route_source, route_destination, details, \
              ledger_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) RETURNING id",
    )
    .bind(&action.operator)
    .bind(action.action.as_str())
    .bind(&action.reason)
    .bind(action.message_id.map(|id| id.0.to_vec()))
    .bind(action.route.map(|r| i64::from(r.source)))
    .bind(action.route.map(|r| i64::from(r.destination)))
    .bind(action.details.to_string())
    .bind(action.ledger.map(i64::from))
    .fetch_one(&mut *conn)
    .await
    .map_err(StoreError::db("insert operator action"))?;
    let id: i64 = get(&row, "id")?;
    let evidence = evidence::json(&OperatorLog {
        operator_action_id: id,
        action: action.action.as_str(),
        reason: &action.reason,
        route: action.route.map(|r| RouteLog {
            source: r.source,
            destination: r.destination,
        }),
        details: &action.details,
    });
    append_log(
        conn,
        action.message_id.as_ref(),
        LogEvent::Operator,
        &evidence,
        &action.operator,
    )
    .await?;
    Ok(id)
}
