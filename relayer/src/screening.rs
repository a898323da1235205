//! The payment screening hook (`[screening]`, docs/operations.md, "Screening"): before
//! this member signs the release of a held payment, it asks its own screening service
//! (a bank's sanctions or AML check) about the payment's business fields.
//!
//! `POST {url}` with a JSON [`ScreeningRequest`]; the service answers `200` with
//! `{"decision": "pass" | "hold" | "deny", "reason": "..."}`. The hook fails closed:
//! no answer within `timeout_ms`, an error status, an answer over [`MAX_ANSWER`]
//! bytes or one that is not such an object all mean **hold**, with the cause as the
//! reason. A hold or a deny is this member's refusal to approve; each decision is
//! recorded in the member's history.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Largest answer read from the service.
pub const MAX_ANSWER: usize = 4 * 1024;
/// Longest reason kept from an answer.
pub const MAX_REASON: usize = 500;

/// What the service is asked: a payment's business fields (docs/dapps.md, the
/// clearing apps' payment body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreeningRequest {
    /// The message carrying the payment, `0x` hex.
    pub message_id: String,
    /// Origin ledger name.
    pub origin: String,
    /// Destination ledger name.
    pub destination: String,
    /// End-to-end id, `0x` hex.
    pub uetr: String,
    /// Debtor bank, `0x` hex.
    pub debtor: String,
    /// Creditor bank, `0x` hex.
    pub creditor: String,
    /// Amount in the currency's smallest unit, decimal.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
}

impl ScreeningRequest {
    /// The request for a payment `body` (160 bytes: uetr, debtor, creditor, amount,
    /// currency); None for a body that is not a payment.
    pub fn for_payment(
        id: &[u8; 32],
        origin: &str,
        destination: &str,
        body: &[u8],
    ) -> Option<Self> {
        let payment = crate::payments::Payment::parse(body)?;
        let word = |i: usize| format!("0x{}", hex::encode(&body[i * 32..(i + 1) * 32]));
        Some(Self {
            message_id: format!("0x{}", hex::encode(id)),
            origin: origin.to_owned(),
            destination: destination.to_owned(),
            uetr: word(0),
            debtor: word(1),
            creditor: word(2),
            amount: payment.amount.to_string(),
            currency: payment.currency_code(),
        })
    }
}

/// The service's answer, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The screening's verdict on a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing against it: this member may approve.
    Pass,
    /// Not now (the service's word, or no valid answer in time): this member does
    /// not approve.
    Hold(String),
    /// Refused: this member does not approve.
    Deny(String),
}

impl Verdict {
    /// `pass`, `hold` or `deny`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Hold(_) => "hold",
            Self::Deny(_) => "deny",
        }
    }

    /// The reason given (empty for a pass).
    pub fn reason(&self) -> &str {
        match self {
            Self::Pass => "",
            Self::Hold(r) | Self::Deny(r) => r,
        }
    }
}

/// This member's screening service.
pub struct Screening {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl Screening {
    /// The service at `url`, waited for at most `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("screening client: {e}"))?;
        Ok(Self {
            http,
            url: url.to_owned(),
            timeout,
        })
    }

    /// Asks about `request`; fails closed. Returns the verdict and how long it took.
    pub async fn screen(&self, request: &ScreeningRequest) -> (Verdict, Duration) {
        let started = Instant::now();
        let verdict = match tokio::time::timeout(self.timeout, self.ask(request)).await {
            Ok(verdict) => verdict,
            Err(_) => Verdict::Hold(format!(
                "the screening service did not answer within {} ms",
                self.timeout.as_millis()
            )),
        };
        (verdict, started.elapsed())
    }

    async fn ask(&self, request: &ScreeningRequest) -> Verdict {
        let response = match self.http.post(&self.url).json(request).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Verdict::Hold(format!(
                    "the screening service did not answer within {} ms",
                    self.timeout.as_millis()
                ))
            }
            Err(e) => return Verdict::Hold(format!("the screening service is unreachable: {e}")),
        };
        let status = response.status();
        if !status.is_success() {
            return Verdict::Hold(format!("the screening service answered {status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER as u64)
        {
            return Verdict::Hold(format!(
                "the screening service's answer is over {MAX_ANSWER} bytes"
            ));
        }
        let mut body = Vec::new();
        let mut response = response;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_ANSWER {
                        return Verdict::Hold(format!(
                            "the screening service's answer is over {MAX_ANSWER} bytes"
                        ));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Verdict::Hold(format!("the screening service's answer broke off: {e}"))
                }
            }
        }
        judge(&body)
    }
}

/// The verdict an answer body gives; anything but a well-formed answer is a hold.
pub fn judge(body: &[u8]) -> Verdict {
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            return Verdict::Hold(format!(
                "the screening service's answer is not {{\"decision\": \"pass\" | \"hold\" | \"deny\", \"reason\": \"...\"}}: {e}"
            ))
        }
    };
    let reason: String = answer
        .reason
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect();
    match answer.decision.as_str() {
        "pass" => Verdict::Pass,
        "hold" => Verdict::Hold(if reason.is_empty() {
            "held by the screening service".into()
        } else {
            reason
        }),
        "deny" => Verdict::Deny(if reason.is_empty() {
            "denied by the screening service".into()
        } else {
            reason
        }),
        other => Verdict::Hold(format!(
            "the screening service's decision `{}` is none of pass, hold, deny",
            other.chars().take(40).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use axum::routing::post;
    use axum::Router;

    fn request() -> ScreeningRequest {
        let mut body = vec![0u8; 160];
        body[..32].copy_from_slice(&[1; 32]);
        body[32..64].copy_from_slice(&[0xd1; 32]);
        body[64..96].copy_from_slice(&[0xc1; 32]);
        body[126..128].copy_from_slice(&260u16.to_be_bytes());
        body[128..131].copy_from_slice(b"EUR");
        ScreeningRequest::for_payment(&[9; 32], "evm-a", "evm-b", &body).unwrap()
    }

    /// How a test service answers a request: status, body, delay.
    type Answering = fn(ScreeningRequest) -> (u16, String, Duration);

    /// A real HTTP service on a local port answering each request with `answer`.
    async fn service(answer: Answering) -> String {
        let app = Router::new().route(
            "/screen",
            post(
                move |axum::Json(r): axum::Json<ScreeningRequest>| async move {
                    let (status, body, delay) = answer(r);
                    tokio::time::sleep(delay).await;
                    (axum::http::StatusCode::from_u16(status).unwrap(), body)
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/screen", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[test]
    fn a_payment_body_gives_its_business_fields() {
        let r = request();
        assert_eq!(r.amount, "260");
        assert_eq!(r.currency, "EUR");
        assert_eq!(r.debtor, format!("0x{}", "d1".repeat(32)));
        assert_eq!(r.message_id, format!("0x{}", "09".repeat(32)));
        assert!(ScreeningRequest::for_payment(&[9; 32], "a", "b", &[0; 128]).is_none());
    }

    #[tokio::test]
    async fn the_service_passes_holds_or_denies_and_everything_else_holds() {
        let cases: [(Answering, Verdict); 7] = [
            (
                |r| {
                    let d = if r.amount == "260" { "pass" } else { "deny" };
                    (200, format!("{{\"decision\":\"{d}\"}}"), Duration::ZERO)
                },
                Verdict::Pass,
            ),
            (
                |_| {
                    (
                        200,
                        r#"{"decision":"deny","reason":"sanctions list match"}"#.into(),
                        Duration::ZERO,
                    )
                },
                Verdict::Deny("sanctions list match".into()),
            ),
            (
                |_| {
                    (
                        200,
                        r#"{"decision":"hold","reason":"manual review"}"#.into(),
                        Duration::ZERO,
                    )
                },
                Verdict::Hold("manual review".into()),
            ),
            (
                |_| (200, r#"{"decision":"maybe"}"#.into(), Duration::ZERO),
                Verdict::Hold(
                    "the screening service's decision `maybe` is none of pass, hold, deny".into(),
                ),
            ),
            (
                |_| (500, "down".into(), Duration::ZERO),
                Verdict::Hold("the screening service answered 500 Internal Server Error".into()),
            ),
            (
                |_| {
                    (
                        200,
                        format!(
                            "{{\"decision\":\"pass\",\"reason\":\"{}\"}}",
                            "x".repeat(5000)
                        ),
                        Duration::ZERO,
                    )
                },
                Verdict::Hold(format!(
                    "the screening service's answer is over {MAX_ANSWER} bytes"
                )),
            ),
            (
                |_| (200, r#"{"decision":"pass"}"#.into(), Duration::from_secs(5)),
                Verdict::Hold("the screening service did not answer within 300 ms".into()),
            ),
        ];
        for (answer, expected) in cases {
            let url = service(answer).await;
            let screening = Screening::new(&url, Duration::from_millis(300)).unwrap();
            let (verdict, took) = screening.screen(&request()).await;
            assert_eq!(verdict, expected);
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
        // Malformed bodies and an unreachable service hold too.
        assert!(matches!(judge(b"not json"), Verdict::Hold(r) if r.contains("is not")));
        assert!(matches!(
            judge(br#"{"decision":"pass","extra":1}"#),
            Verdict::Hold(_)
        ));
        let nobody =
            Screening::new("http://127.0.0.1:9/screen", Duration::from_millis(300)).unwrap();
        assert!(
            matches!(nobody.screen(&request()).await.0, Verdict::Hold(r) if r.contains("unreachable") || r.contains("within"))
        );
    }
}
