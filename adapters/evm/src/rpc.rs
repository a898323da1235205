//! JSON-RPC over several endpoints of one EVM ledger, chosen as `isthmus_endpoints`
//! says (by preference, failing endpoints resting with backoff). An endpoint fails
//! when it fails at the transport (refused, reset, timed out), answers something
//! that is not JSON-RPC (an HTTP 429 or 5xx page, a truncated body) or says it is
//! overloaded (`-32005`, `-32603`); the call then moves on to the next. Every
//! attempt is reported to an [`RpcObserver`] (per-endpoint request, error and
//! latency metrics).
//!
//! A node's answer that is an ordinary JSON-RPC error (a revert, "nonce too low") is
//! the ledger's answer, not the endpoint's fault: it is returned as is.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ethers::providers::{HttpClientError, JsonRpcClient, Provider, RpcError};
use isthmus_endpoints::{is_overloaded, order, settle, Health};
pub use isthmus_endpoints::{Attempt, RpcObserver};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::EvmError;

/// The label of an endpoint in metrics and logs: scheme, host and port only (a path
/// or query may carry an API key).
pub fn endpoint_label(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// One endpoint and its health.
struct Endpoint {
    label: String,
    http: ethers::providers::Http,
    health: Mutex<Health>,
}

/// Whether an endpoint's error is the endpoint's fault (try the next one) rather
/// than the ledger's answer.
fn is_endpoint_failure(e: &HttpClientError) -> bool {
    match e {
        HttpClientError::ReqwestError(_) | HttpClientError::SerdeJson { .. } => true,
        HttpClientError::JsonRpcError(rpc) => is_overloaded(rpc.code, &rpc.message),
    }
}

/// A JSON-RPC transport over several endpoints with failover (see the module docs).
/// Clones share the endpoints and their health.
#[derive(Clone)]
pub struct Failover {
    endpoints: Arc<Vec<Endpoint>>,
    observer: Option<Arc<dyn RpcObserver>>,
}

impl fmt::Debug for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.endpoints.iter().map(|e| e.label.as_str()).collect();
        f.debug_struct("Failover")
            .field("endpoints", &labels)
            .finish()
    }
}

impl Failover {
    /// Endpoints at `urls` (HTTP or HTTPS, in order of preference), each call
    /// bounded by `timeout`.
    pub fn new(
        urls: &[String],
        timeout: Duration,
        observer: Option<Arc<dyn RpcObserver>>,
    ) -> Result<Self, EvmError> {
        if urls.is_empty() {
            return Err(EvmError::Config("no RPC endpoint".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| EvmError::Config(format!("HTTP client: {e}")))?;
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                EvmError::Config(format!("RPC URL `{}` is not usable: {e}", redacted(url)))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(EvmError::Config(format!(
                    "RPC URL `{}`: an EVM ledger is reached over http(s)",
                    redacted(url)
                )));
            }
            endpoints.push(Endpoint {
                label: endpoint_label(&parsed),
                http: ethers::providers::Http::new_with_client(parsed, client.clone()),
                health: Mutex::default(),
            });
        }
        Ok(Self {
            endpoints: Arc::new(endpoints),
            observer,
        })
    }

    fn health(&self) -> Vec<Health> {
        self.endpoints
            .iter()
            .map(|e| *e.health.lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }
}

/// `url` without what may be secret (path, query, user info).
fn redacted(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| "<unparseable>".to_owned(), |u| endpoint_label(&u))
}

#[async_trait]
impl JsonRpcClient for Failover {
    type Error = HttpClientError;

    async fn request<T, R>(&self, method: &str, params: T) -> Result<R, Self::Error>
    where
        T: fmt::Debug + Serialize + Send + Sync,
        R: DeserializeOwned + Send,
    {
        let params = serde_json::to_value(&params).map_err(|err| HttpClientError::SerdeJson {
            err,
            text: "request parameters".into(),
        })?;
        let mut last = None;
        for i in order(&self.health(), Instant::now()) {
            let endpoint = &self.endpoints[i];
            let started = Instant::now();
            let result: Result<serde_json::Value, HttpClientError> =
                endpoint.http.request(method, params.clone()).await;
            let failed = result.as_ref().is_err_and(is_endpoint_failure);
            settle(
                &endpoint.health,
                self.observer.as_deref(),
                &endpoint.label,
                method,
                started,
                failed,
            );
            match result {
                Ok(value) => {
                    return serde_json::from_value(value.clone()).map_err(|err| {
                        HttpClientError::SerdeJson {
                            err,
                            text: value.to_string(),
                        }
                    })
                }
                Err(e) if failed => {
                    if self.endpoints.len() > 1 {
                        tracing::debug!(endpoint = %endpoint.label, method, error = %e, "RPC endpoint failed; trying the next");
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| HttpClientError::SerdeJson {
            err: serde::de::Error::custom("no RPC endpoint"),
            text: String::new(),
        }))
    }
}

/// A provider over `urls` with failover, each call bounded by `timeout`.
pub fn failover_provider(
    urls: &[String],
    timeout: Duration,
    observer: Option<Arc<dyn RpcObserver>>,
) -> Result<Provider<Failover>, EvmError> {
    Ok(Provider::new(Failover::new(urls, timeout, observer)?))
}

// `RpcError` is what ethers needs of a transport's error; `HttpClientError` has it.
const _: fn() = || {
    fn is_rpc_error<E: RpcError>() {}
    is_rpc_error::<HttpClientError>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_endpoints_faults_fail_over() {
        let rpc = |code: i64, message: &str| {
            HttpClientError::JsonRpcError(ethers::providers::JsonRpcError {
                code,
                message: message.into(),
                data: None,
            })
        };
        assert!(is_endpoint_failure(&rpc(-32005, "limit exceeded")));
        assert!(is_endpoint_failure(&rpc(-32603, "internal error")));
        assert!(is_endpoint_failure(&rpc(-32000, "rate limit reached")));
        assert!(!is_endpoint_failure(&rpc(3, "execution reverted")));
        assert!(!is_endpoint_failure(&rpc(-32000, "nonce too low")));
        let Err(err) = serde_json::from_str::<serde_json::Value>("{\"jsonrpc\":\"2.0\",\"res")
        else {
            panic!("a truncated body parsed");
        };
        let truncated = HttpClientError::SerdeJson {
            err,
            text: "{\"jsonrpc\":\"2.0\",\"res".into(),
        };
        assert!(is_endpoint_failure(&truncated));
    }

    #[test]
    fn labels_keep_no_path_query_or_credentials() {
        let url = reqwest::Url::parse("https://user:pw@rpc.example:8443/v3/SECRETKEY?k=1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(endpoint_label(&url), "https://rpc.example:8443");
        assert_eq!(
            redacted("https://rpc.example/v3/SECRETKEY"),
            "https://rpc.example:443"
        );
        assert!(Failover::new(&["ws://127.0.0.1:8546".into()], RPC, None).is_err());
        assert!(Failover::new(&[], RPC, None).is_err());
    }

    const RPC: Duration = Duration::from_secs(1);

    /// A node at `answer`'s mercy: every connection gets `answer` as its HTTP reply.
    fn node(answer: &'static str) -> String {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            while let Ok((mut socket, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf);
                let _ = socket.write_all(answer.as_bytes());
            }
        });
        url
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, Attempt)>>);

    impl RpcObserver for Seen {
        fn attempt(&self, endpoint: &str, _method: &str, _elapsed: Duration, attempt: Attempt) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((endpoint.to_owned(), attempt));
        }
    }

    #[tokio::test]
    async fn a_call_fails_over_past_a_busy_and_a_dead_endpoint_and_is_observed() {
        use ethers::providers::Middleware;
        let busy = node("HTTP/1.1 429 Too Many Requests\r\ncontent-length: 17\r\nconnection: close\r\n\r\nToo Many Requests");
        let dead = {
            // Bound, then closed: connections are refused.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            format!(
                "http://{}",
                l.local_addr().unwrap_or_else(|e| panic!("{e}"))
            )
        };
        let good = node("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\nconnection: close\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x2a\"}");
        let seen = Arc::new(Seen::default());
        let provider = failover_provider(
            &[busy.clone(), dead.clone(), good.clone()],
            RPC,
            Some(seen.clone()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let n = provider
            .get_block_number()
            .await
            .unwrap_or_else(|e| panic!("failed over to the good endpoint: {e}"));
        assert_eq!(n.as_u64(), 42);
        let attempts = seen.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let label =
            |u: &str| endpoint_label(&reqwest::Url::parse(u).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            attempts,
            vec![
                (label(&busy), Attempt::Failed),
                (label(&dead), Attempt::Failed),
                (label(&good), Attempt::Answered),
            ]
        );
        // The failed ones rest: the next call goes straight to the good one.
        provider
            .get_block_number()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let attempts = seen.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(attempts.len(), 4);
        assert_eq!(attempts[3], (label(&good), Attempt::Answered));
    }

    #[tokio::test]
    async fn the_ledgers_own_error_is_returned_without_failing_over() {
        use ethers::providers::Middleware;
        let reverting = node("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 74\r\nconnection: close\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":3,\"message\":\"execution reverted\"}}");
        let never = node("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let seen = Arc::new(Seen::default());
        let provider = failover_provider(&[reverting, never], RPC, Some(seen.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = provider
            .get_block_number()
            .await
            .expect_err("an error answer");
        assert!(e.to_string().contains("execution reverted"), "{e}");
        assert_eq!(seen.0.lock().unwrap_or_else(|p| p.into_inner()).len(), 1);
    }
}
