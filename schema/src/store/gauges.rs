//! What the relayer's gauges read at scrape time: message counts by route and
//! status, and the age of each route's oldest pending message (a relayer that is
//! healthy but relays nothing shows there).

use sqlx::Row;

use super::{Result, Store};
use crate::error::StoreError;
use crate::types::{LedgerId, MessageStatus, Route};

/// How many messages of a route are in a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusCount {
    /// The route.
    pub route: Route,
    /// The status.
    pub status: MessageStatus,
    /// Messages.
    pub count: i64,
}

/// The oldest message of a route that still waits for delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OldestPending {
    /// The route.
    pub route: Route,
    /// Seconds since it was observed.
    pub age_seconds: f64,
}

/// The nearest deadline among a route's messages that still wait for delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NearestDeadline {
    /// The route.
    pub route: Route,
    /// Seconds until it (negative: passed, the message not ended yet).
    pub seconds: f64,
}

/// Round trips of a route's messages whose receipt the origin took in the last
/// hour: observation to the receipt batch's delivery.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundTrips {
    /// The route of the messages (not of their receipts).
    pub route: Route,
    /// Median, seconds.
    pub p50: f64,
    /// 95th percentile, seconds.
    pub p95: f64,
}

/// A payment whose escrow is still held on its origin: sent by a payment app, its
/// receipt not yet delivered back there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenPayment {
    /// The route of the payment.
    pub route: Route,
    /// Its body (the app's payment encoding, which the caller decodes).
    pub body: Vec<u8>,
}

/// Bytes of a clearing payment's body: `abi.encode(uetr, debtor, creditor, amount,
/// currency)`, five words.
pub const PAYMENT_BODY_LEN: i32 = 160;

impl Store {
    /// The payments of `apps` (origin ledger, sender) whose escrow is still open:
    /// their message has no receipt yet, or the receipt batch carrying it has not been
    /// delivered to the origin (where it settles or returns the escrow).
    pub async fn open_payments(&self, apps: &[(LedgerId, [u8; 32])]) -> Result<Vec<OpenPayment>> {
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let origins: Vec<i64> = apps.iter().map(|(o, _)| i64::from(*o)).collect();
        let senders: Vec<Vec<u8>> = apps.iter().map(|(_, s)| s.to_vec()).collect();
        let rows = sqlx::query(
            "SELECT m.origin, m.destination, m.body FROM messages m \
             JOIN unnest($1::bigint[], $2::bytea[]) AS a(origin, sender) \
               ON a.origin = m.origin AND a.sender = m.sender \
             WHERE octet_length(m.body) = $3 AND m.status <> 'rejected' \
               AND NOT EXISTS (SELECT 1 FROM receipts r JOIN messages b ON b.id = r.carried_by \
                               WHERE r.message_id = m.id AND b.status = 'delivered')",
        )
        .bind(&origins)
        .bind(&senders)
        .bind(PAYMENT_BODY_LEN)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("open payments"))?;
        rows.iter()
            .map(|row| {
                Ok(OpenPayment {
                    route: route(row)?,
                    body: row.try_get("body").map_err(StoreError::db("body"))?,
                })
            })
            .collect()
    }

    /// Per route with pending messages that have a deadline, the nearest one: a
    /// message close to it and still undelivered may end `expired`.
    pub async fn nearest_deadlines(&self) -> Result<Vec<NearestDeadline>> {
        let pending: Vec<&str> = MessageStatus::PENDING.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT origin, destination, \
                    (min(deadline) - extract(epoch FROM now()))::float8 AS seconds \
             FROM messages WHERE status = ANY($1::text[]) AND deadline <> 0 GROUP BY 1, 2",
        )
        .bind(&pending)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("nearest deadlines"))?;
        rows.iter()
            .map(|row| {
                Ok(NearestDeadline {
                    route: route(row)?,
                    seconds: row.try_get("seconds").map_err(StoreError::db("seconds"))?,
                })
            })
            .collect()
    }

    /// Per route, the round trips of its messages whose receipt the origin took in
    /// the last hour (`receipts_v`).
    pub async fn round_trips(&self) -> Result<Vec<RoundTrips>> {
        let rows = sqlx::query(
            "SELECT origin, destination, \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY round_trip_seconds)::float8 AS p50, \
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY round_trip_seconds)::float8 AS p95 \
             FROM receipts_v \
             WHERE receipt_taken_at > now() - interval '1 hour' AND origin IS NOT NULL \
             GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("round trips"))?;
        rows.iter()
            .map(|row| {
                Ok(RoundTrips {
                    route: route(row)?,
                    p50: row.try_get("p50").map_err(StoreError::db("p50"))?,
                    p95: row.try_get("p95").map_err(StoreError::db("p95"))?,
                })
            })
            .collect()
    }

    /// Messages by route and status.
    pub async fn message_counts(&self) -> Result<Vec<StatusCount>> {
        let rows = sqlx::query(
            "SELECT origin, destination, status, count(*) AS n FROM messages GROUP BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("count messages"))?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status").map_err(StoreError::db("status"))?;
                Ok(StatusCount {
                    route: route(row)?,
                    status: status.parse()?,
                    count: row.try_get("n").map_err(StoreError::db("count"))?,
                })
            })
            .collect()
    }

    /// Per route with pending messages ([`MessageStatus::PENDING`]), the age of the
    /// oldest. A route that keeps such an age growing is stuck, whatever the
    /// relayer's health says.
    pub async fn oldest_pending(&self) -> Result<Vec<OldestPending>> {
        let pending: Vec<&str> = MessageStatus::PENDING.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT origin, destination, \
                    extract(epoch FROM now() - min(observed_at))::float8 AS age \
             FROM messages WHERE status = ANY($1::text[]) GROUP BY 1, 2",
        )
        .bind(&pending)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("oldest pending messages"))?;
        rows.iter()
            .map(|row| {
                Ok(OldestPending {
                    route: route(row)?,
                    age_seconds: row.try_get("age").map_err(StoreError::db("age"))?,
                })
            })
            .collect()
    }
}

fn route(row: &sqlx::postgres::PgRow) -> Result<Route> {
    let id = |column: &'static str| -> Result<u32> {
        let v: i64 = row.try_get(column).map_err(StoreError::db(column))?;
        u32::try_from(v).map_err(|_| StoreError::Decode {
            what: column,
            reason: format!("{v} is not a ledger id"),
        })
    };
    Ok(Route {
        source: id("origin")?,
        destination: id("destination")?,
    })
}
