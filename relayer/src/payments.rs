//! Escrowed payments, as the clearing apps (Solidity and pallet) encode them, for the
//! escrow metric: a body of `abi.encode(bytes32 uetr, bytes32 debtor, bytes32
//! creditor, uint256 amount, bytes3 currency)` (docs/dapps.md). The relayer only
//! reads the payments of the apps an operator lists (`ledgers[].payment_apps`); it
//! keeps no application state.

use std::collections::BTreeMap;

use isthmus_schema::{PaymentApp, PaymentRow, Route, Store, StoreError};

/// Bytes of a payment body: five ABI words.
pub const PAYMENT_LEN: usize = 160;

/// What the escrow metric needs of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The amount, in the currency's smallest unit (the `uint256` word, saturated at
    /// `u128::MAX`: no app holds more).
    pub amount: u128,
    /// The ISO 4217 code.
    pub currency: [u8; 3],
}

impl Payment {
    /// Decodes a payment body; None when `body` is not one (its length, or a
    /// currency word whose padding is not zero, as the apps refuse too).
    pub fn parse(body: &[u8]) -> Option<Self> {
        if body.len() != PAYMENT_LEN || body[131..].iter().any(|b| *b != 0) {
            return None;
        }
        let word = &body[96..128];
        let amount = if word[..16].iter().any(|b| *b != 0) {
            u128::MAX
        } else {
            let mut low = [0u8; 16];
            low.copy_from_slice(&word[16..]);
            u128::from_be_bytes(low)
        };
        Some(Self {
            amount,
            currency: [body[128], body[129], body[130]],
        })
    }

    /// The currency code as text (`?` for a byte that is not an ASCII letter, so a
    /// label never carries arbitrary bytes).
    pub fn currency_code(&self) -> String {
        self.currency
            .iter()
            .map(|b| {
                if b.is_ascii_alphabetic() {
                    char::from(*b)
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// The escrow outstanding per route and currency, read from the history at each
/// scrape. Each app keeps a low-water nonce below which every payment of it is
/// closed, so a scrape reads only the payments from the app's oldest open one on
/// (and each payment's receipt once more), not the app's whole settled past. Payments
/// of an origin are observed in nonce order, so none appears below the mark later.
#[derive(Debug, Default)]
pub struct Escrow {
    apps: Vec<(u32, [u8; 32])>,
    low_water: std::sync::Mutex<BTreeMap<(u32, [u8; 32]), u64>>,
}

impl Escrow {
    /// A tracker of `apps` (origin ledger, app as `Address32`), each from nonce 0.
    pub fn new(apps: Vec<(u32, [u8; 32])>) -> Self {
        Self {
            apps,
            low_water: std::sync::Mutex::default(),
        }
    }

    /// The escrow outstanding per route and currency now; moves each app's mark up
    /// to its oldest open payment.
    pub async fn outstanding(
        &self,
        store: &Store,
    ) -> Result<BTreeMap<(Route, String), u128>, StoreError> {
        if self.apps.is_empty() {
            return Ok(BTreeMap::new());
        }
        let apps: Vec<PaymentApp> = {
            let marks = self.marks();
            self.apps
                .iter()
                .map(|&(origin, sender)| PaymentApp {
                    origin,
                    sender,
                    from_nonce: marks.get(&(origin, sender)).copied().unwrap_or(0),
                })
                .collect()
        };
        let rows = store.payments_from(&apps).await?;
        let mut marks = self.marks();
        for app in &apps {
            let key = (app.origin, app.sender);
            let mark = advance(app, &rows);
            marks.insert(key, mark);
        }
        Ok(escrow_by_route(&rows))
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u32, [u8; 32]), u64>> {
        // A panic elsewhere while the lock was held leaves valid marks (each is only
        // ever replaced whole).
        self.low_water
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The new low-water nonce of `app` after a scan that returned `rows` (all apps'):
/// its oldest open payment; past its newest payment when all are closed; unchanged
/// when it had none.
pub fn advance(app: &PaymentApp, rows: &[PaymentRow]) -> u64 {
    let mine = rows
        .iter()
        .filter(|r| r.route.source == app.origin && r.sender == app.sender);
    let mut oldest_open: Option<u64> = None;
    let mut newest: Option<u64> = None;
    for r in mine {
        if r.open_body.is_some() {
            oldest_open = Some(oldest_open.map_or(r.nonce, |n| n.min(r.nonce)));
        }
        newest = Some(newest.map_or(r.nonce, |n| n.max(r.nonce)));
    }
    match (oldest_open, newest) {
        (Some(open), _) => open,
        (None, Some(newest)) => newest.saturating_add(1),
        (None, None) => app.from_nonce,
    }
}

/// The escrow outstanding per route and currency: the sum of the amounts of the open
/// payments among `rows` (bodies that are not payments are left out).
pub fn escrow_by_route(rows: &[PaymentRow]) -> BTreeMap<(Route, String), u128> {
    let mut sums: BTreeMap<(Route, String), u128> = BTreeMap::new();
    for row in rows {
        if let Some(payment) = row.open_body.as_deref().and_then(Payment::parse) {
            let sum = sums
                .entry((row.route, payment.currency_code()))
                .or_default();
            *sum = sum.saturating_add(payment.amount);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(amount: u128, currency: &[u8; 3]) -> Vec<u8> {
        let mut b = vec![0u8; PAYMENT_LEN];
        b[..32].copy_from_slice(&[0x11; 32]);
        b[32..64].copy_from_slice(&[0x22; 32]);
        b[64..96].copy_from_slice(&[0x33; 32]);
        b[112..128].copy_from_slice(&amount.to_be_bytes());
        b[128..131].copy_from_slice(currency);
        b
    }

    const APP: [u8; 32] = [0xa9; 32];

    fn open(source: u32, destination: u32, body: Vec<u8>) -> PaymentRow {
        row(source, destination, 0, Some(body))
    }

    fn row(source: u32, destination: u32, nonce: u64, open_body: Option<Vec<u8>>) -> PaymentRow {
        PaymentRow {
            route: Route {
                source,
                destination,
            },
            sender: APP,
            nonce,
            open_body,
        }
    }

    #[test]
    fn a_payment_body_gives_its_amount_and_currency() {
        let p = Payment::parse(&body(1_250, b"EUR")).expect("a payment");
        assert_eq!(p.amount, 1_250);
        assert_eq!(p.currency_code(), "EUR");
        // Not payments: another length, a currency word with padding.
        assert_eq!(Payment::parse(&body(1, b"EUR")[..159]), None);
        let mut padded = body(1, b"EUR");
        padded[131] = 1;
        assert_eq!(Payment::parse(&padded), None);
        // An amount past u128 saturates; a currency byte that is no letter shows `?`.
        let mut huge = body(0, b"E\nR");
        huge[100] = 1;
        let p = Payment::parse(&huge).expect("a payment");
        assert_eq!(p.amount, u128::MAX);
        assert_eq!(p.currency_code(), "E?R");
    }

    #[test]
    fn escrow_sums_per_route_and_currency_and_skips_what_is_no_payment() {
        let sums = escrow_by_route(&[
            open(1, 2, body(100, b"EUR")),
            open(1, 2, body(250, b"EUR")),
            open(1, 2, body(7, b"CHF")),
            open(2, 1, body(40, b"EUR")),
            open(1, 3, b"not a payment".to_vec()),
        ]);
        let route = |source, destination| Route {
            source,
            destination,
        };
        assert_eq!(
            sums.into_iter().collect::<Vec<_>>(),
            vec![
                ((route(1, 2), "CHF".to_owned()), 7),
                ((route(1, 2), "EUR".to_owned()), 350),
                ((route(2, 1), "EUR".to_owned()), 40),
            ]
        );
        assert!(escrow_by_route(&[]).is_empty());
        // A closed payment adds nothing.
        assert!(escrow_by_route(&[row(1, 2, 0, None)]).is_empty());
    }

    #[test]
    fn the_mark_stops_at_the_oldest_open_payment_and_passes_closed_ones() {
        let app = PaymentApp {
            origin: 1,
            sender: APP,
            from_nonce: 5,
        };
        let open = |n| row(1, 2, n, Some(body(1, b"EUR")));
        let closed = |n| row(1, 2, n, None);
        // No payment since the mark: it stays.
        assert_eq!(advance(&app, &[]), 5);
        // All closed: past the newest.
        assert_eq!(advance(&app, &[closed(5), closed(9), closed(7)]), 10);
        // The oldest open one holds it, whatever the order of the rows.
        assert_eq!(advance(&app, &[closed(5), open(9), open(7), closed(8)]), 7);
        // Another app's or another origin's rows do not move it.
        let mut other_app = closed(40);
        other_app.sender = [0x01; 32];
        assert_eq!(advance(&app, &[other_app, closed_on(3, 41)]), 5);
    }

    fn closed_on(origin: u32, nonce: u64) -> PaymentRow {
        row(origin, 2, nonce, None)
    }
}
