//! What the relayer's gauges read at scrape time: message counts by route and
//! status, and the age of each route's oldest pending message (a relayer that is
//! healthy but relays nothing shows there).

use sqlx::Row;

use super::{arr, get, parse_u64, Result, Store};
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

/// The messages of a route held on their destination (`holds_v`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldTotal {
    /// The route of the held messages.
    pub route: Route,
    /// How many are held.
    pub count: i64,
    /// The sum of the held payments' amounts (smallest unit).
    pub value: f64,
    /// Seconds the longest-held one has waited.
    pub longest_seconds: f64,
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

/// A payment app whose payments the escrow metric reads: its origin ledger, its
/// sender (`Address32`), and the nonce from which its payments may still be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentApp {
    /// The ledger the app sends from.
    pub origin: LedgerId,
    /// The app, as the sender of its messages.
    pub sender: [u8; 32],
    /// Every payment of the app below this nonce is known to be closed.
    pub from_nonce: u64,
}

/// A payment of a [`PaymentApp`] from its `from_nonce` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRow {
    /// The route of the payment.
    pub route: Route,
    /// The app that sent it.
    pub sender: [u8; 32],
    /// Its nonce.
    pub nonce: u64,
    /// Its body while its escrow is open (no receipt delivered back to the origin
    /// yet); None once closed.
    pub open_body: Option<Vec<u8>>,
}

impl Store {
    /// The payments of `apps` from each app's `from_nonce` on, each with its body
    /// while its escrow is open: its message has no receipt yet, or the receipt batch
    /// carrying the receipt has not been delivered to the origin (where it settles or
    /// returns the escrow). A payment is a 160-byte body (`abi.encode(uetr, debtor,
    /// creditor, amount, currency)`), read through `messages_payments_idx`: the size is
    /// a literal in the query, as the planner uses a partial index only for a
    /// condition it can prove without the parameters (prepared statements are planned
    /// once for all values).
    pub async fn payments_from(&self, apps: &[PaymentApp]) -> Result<Vec<PaymentRow>> {
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let origins: Vec<i64> = apps.iter().map(|a| i64::from(a.origin)).collect();
        let senders: Vec<Vec<u8>> = apps.iter().map(|a| a.sender.to_vec()).collect();
        let from: Vec<String> = apps.iter().map(|a| a.from_nonce.to_string()).collect();
        let rows = sqlx::query(
            "SELECT m.origin, m.destination, m.sender, m.nonce::text AS nonce_text, \
                    CASE WHEN EXISTS (SELECT 1 FROM receipts r \
                                      JOIN messages b ON b.id = r.carried_by \
                                      WHERE r.message_id = m.id AND b.status = 'delivered') \
                         THEN NULL ELSE m.body END AS open_body \
             FROM unnest($1::bigint[], $2::bytea[], $3::text[]) AS a(origin, sender, low) \
             JOIN messages m ON m.origin = a.origin AND m.sender = a.sender \
                            AND m.nonce >= a.low::numeric AND octet_length(m.body) = 160 \
             WHERE m.status <> 'rejected'",
        )
        .bind(&origins)
        .bind(&senders)
        .bind(&from)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("payments"))?;
        rows.iter()
            .map(|row| {
                Ok(PaymentRow {
                    route: route(row)?,
                    sender: arr(&get::<Vec<u8>>(row, "sender")?, "messages.sender")?,
                    nonce: parse_u64(&get::<String>(row, "nonce_text")?, "nonce")?,
                    open_body: get(row, "open_body")?,
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

    /// Per route with messages held on their destination, how many, their value (the
    /// sum of the payments' amounts, as a float) and the longest time one has been
    /// held (`holds_v`).
    pub async fn held_totals(&self) -> Result<Vec<HeldTotal>> {
        let rows = sqlx::query(
            "SELECT origin, destination, count(*) AS n, \
                    coalesce(sum(amount), 0)::float8 AS value, \
                    coalesce(max(seconds_in_hold), 0)::float8 AS longest \
             FROM holds_v WHERE status = 'held' GROUP BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("held totals"))?;
        rows.iter()
            .map(|row| {
                Ok(HeldTotal {
                    route: route(row)?,
                    count: row.try_get("n").map_err(StoreError::db("count"))?,
                    value: row.try_get("value").map_err(StoreError::db("value"))?,
                    longest_seconds: row.try_get("longest").map_err(StoreError::db("longest"))?,
                })
            })
            .collect()
    }

    /// Per route with pending messages ([`MessageStatus::PENDING`]) other than held
    /// ones (they wait for the consortium's decision, not for the relayer), the age
    /// of the oldest. A route that keeps such an age growing is stuck, whatever the
    /// relayer's health says.
    pub async fn oldest_pending(&self) -> Result<Vec<OldestPending>> {
        let pending: Vec<&str> = MessageStatus::PENDING
            .iter()
            .filter(|s| **s != MessageStatus::Held)
            .map(|s| s.as_str())
            .collect();
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
