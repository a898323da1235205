//! Escrowed payments, as the clearing apps (Solidity and pallet) encode them, for the
//! escrow metric: a body of `abi.encode(bytes32 uetr, bytes32 debtor, bytes32
//! creditor, uint256 amount, bytes3 currency)` (docs/dapps.md). The relayer only
//! reads the payments of the apps an operator lists (`ledgers[].payment_apps`); it
//! keeps no application state.

use std::collections::BTreeMap;

use isthmus_schema::{OpenPayment, Route};

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

/// The escrow outstanding per route and currency: the sum of the amounts of `open`
/// (bodies that are not payments are left out).
pub fn escrow_by_route(open: &[OpenPayment]) -> BTreeMap<(Route, String), u128> {
    let mut sums: BTreeMap<(Route, String), u128> = BTreeMap::new();
    for p in open {
        if let Some(payment) = Payment::parse(&p.body) {
            let sum = sums.entry((p.route, payment.currency_code())).or_default();
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

    fn open(source: u32, destination: u32, body: Vec<u8>) -> OpenPayment {
        OpenPayment {
            route: Route {
                source,
                destination,
            },
            body,
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
    }
}
