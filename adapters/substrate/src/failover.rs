//! JSON-RPC over several WebSocket endpoints of one Substrate ledger, chosen as
//! `isthmus_endpoints` says (by preference, failing endpoints resting with backoff).
//!
//! Each endpoint is a connection that comes back by itself when the node drops it
//! (reopened with a backoff of 100 ms doubling to 5 s), opened the first time a call
//! needs it. An endpoint fails when it cannot be connected, drops the connection,
//! does not answer within [`RPC_TIMEOUT`], answers something that does not decode,
//! or says it is overloaded (`-32005`, `-32603`); the call then moves on to the next
//! endpoint. Any other error answer is the ledger's (an invalid transaction, an
//! unknown block) and is returned as is. Subscriptions go to the first endpoint that
//! takes them; when its connection drops, subxt subscribes again, and the order
//! decides where.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isthmus_endpoints::{is_overloaded, order, settle, Health, RpcObserver};
use subxt_rpcs::client::reconnecting_rpc_client::{ExponentialBackoff, RpcClient as Reconnecting};
use subxt_rpcs::client::{RawRpcFuture, RawRpcSubscription, RawValue, RpcClientT};

use crate::Error;

/// How long one call to a node may take, connecting included.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// One endpoint: its label, its connection (once opened) and its health.
struct Endpoint {
    label: String,
    url: String,
    connection: tokio::sync::Mutex<Option<Arc<Reconnecting>>>,
    health: Mutex<Health>,
}

impl Endpoint {
    /// The endpoint's connection, opened now if it is not yet (bounded by
    /// [`RPC_TIMEOUT`]).
    async fn connection(&self) -> Result<Arc<Reconnecting>, subxt_rpcs::Error> {
        let mut slot = self.connection.lock().await;
        if let Some(open) = slot.as_ref() {
            return Ok(open.clone());
        }
        let connecting = Reconnecting::builder()
            .retry_policy(ExponentialBackoff::from_millis(100).max_delay(Duration::from_secs(5)))
            .request_timeout(RPC_TIMEOUT)
            .connection_timeout(RPC_TIMEOUT)
            .build(self.url.clone());
        let open = match tokio::time::timeout(RPC_TIMEOUT, connecting).await {
            Ok(Ok(open)) => Arc::new(open),
            Ok(Err(e)) => return Err(subxt_rpcs::Error::Client(Box::new(e))),
            Err(_) => {
                return Err(subxt_rpcs::Error::Client(
                    format!("no connection within {} s", RPC_TIMEOUT.as_secs()).into(),
                ))
            }
        };
        *slot = Some(open.clone());
        Ok(open)
    }
}

/// Whether an error is the endpoint's fault (ask the next one) rather than the
/// ledger's answer.
fn is_endpoint_failure(e: &subxt_rpcs::Error) -> bool {
    match e {
        subxt_rpcs::Error::User(answer) => is_overloaded(answer.code.into(), &answer.message),
        subxt_rpcs::Error::Client(_)
        | subxt_rpcs::Error::DisconnectedWillReconnect(_)
        | subxt_rpcs::Error::Deserialization(_) => true,
        _ => false,
    }
}

/// The label of an endpoint in metrics and logs: scheme, host and port only (a path
/// or query may carry an API key).
pub fn endpoint_label(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparseable>".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let with_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        let default = if scheme == "wss" { 443 } else { 80 };
        format!("{host_port}:{default}")
    };
    format!("{scheme}://{with_port}")
}

/// A subxt RPC client over several endpoints with failover (see the module docs).
#[derive(Clone)]
pub struct FailoverRpc {
    endpoints: Arc<Vec<Endpoint>>,
    observer: Option<Arc<dyn RpcObserver>>,
}

impl std::fmt::Debug for FailoverRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<&str> = self.endpoints.iter().map(|e| e.label.as_str()).collect();
        f.debug_struct("FailoverRpc")
            .field("endpoints", &labels)
            .finish()
    }
}

impl FailoverRpc {
    /// Endpoints at `urls` (`ws://` or `wss://`, by preference); nothing is connected
    /// until a call needs it.
    pub fn new(urls: &[String], observer: Option<Arc<dyn RpcObserver>>) -> Result<Self, Error> {
        if urls.is_empty() {
            return Err(Error::Rpc(subxt_rpcs::Error::Client(
                "no RPC endpoint".into(),
            )));
        }
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(Error::Rpc(subxt_rpcs::Error::InsecureUrl(format!(
                    "{}: a Substrate ledger is reached over ws(s)",
                    endpoint_label(url)
                ))));
            }
            endpoints.push(Endpoint {
                label: endpoint_label(url),
                url: url.clone(),
                connection: tokio::sync::Mutex::new(None),
                health: Mutex::default(),
            });
        }
        Ok(Self {
            endpoints: Arc::new(endpoints),
            observer,
        })
    }

    fn order(&self) -> Vec<usize> {
        let health: Vec<Health> = self
            .endpoints
            .iter()
            .map(|e| *e.health.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        order(&health, Instant::now())
    }

    /// Tries `call` on each endpoint in order until one answers; returns that answer,
    /// the ledger's error answer, or the last endpoint's failure.
    async fn first_answer<T, F, Fut>(&self, method: &str, call: F) -> Result<T, subxt_rpcs::Error>
    where
        F: Fn(Arc<Reconnecting>) -> Fut,
        Fut: std::future::Future<Output = Result<T, subxt_rpcs::Error>>,
    {
        let mut last = None;
        for i in self.order() {
            let started = Instant::now();
            let result = match self.endpoints[i].connection().await {
                Ok(connection) => tokio::time::timeout(RPC_TIMEOUT, call(connection))
                    .await
                    .unwrap_or_else(|_| {
                        Err(subxt_rpcs::Error::Client(
                            format!("no answer within {} s", RPC_TIMEOUT.as_secs()).into(),
                        ))
                    }),
                Err(e) => Err(e),
            };
            let failed = result.as_ref().is_err_and(is_endpoint_failure);
            let endpoint = &self.endpoints[i];
            settle(
                &endpoint.health,
                self.observer.as_deref(),
                &endpoint.label,
                method,
                started,
                failed,
            );
            match result {
                Err(e) if failed => {
                    if self.endpoints.len() > 1 {
                        tracing::debug!(endpoint = %self.endpoints[i].label, method, error = %e, "RPC endpoint failed; trying the next");
                    }
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| subxt_rpcs::Error::Client("no RPC endpoint".into())))
    }
}

impl RpcClientT for FailoverRpc {
    fn request_raw<'a>(
        &'a self,
        method: &'a str,
        params: Option<Box<RawValue>>,
    ) -> RawRpcFuture<'a, Box<RawValue>> {
        Box::pin(async move {
            self.first_answer(method, |connection| {
                let params = params.clone();
                async move { connection.request_raw(method, params).await }
            })
            .await
        })
    }

    fn subscribe_raw<'a>(
        &'a self,
        sub: &'a str,
        params: Option<Box<RawValue>>,
        unsub: &'a str,
    ) -> RawRpcFuture<'a, RawRpcSubscription> {
        Box::pin(async move {
            self.first_answer(sub, |connection| {
                let params = params.clone();
                async move { connection.subscribe_raw(sub, params, unsub).await }
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_no_path_query_or_credentials() {
        assert_eq!(endpoint_label("ws://127.0.0.1:9944"), "ws://127.0.0.1:9944");
        assert_eq!(
            endpoint_label("wss://user:pw@rpc.example/v1/SECRETKEY?k=1"),
            "wss://rpc.example:443"
        );
        assert_eq!(endpoint_label("ws://node"), "ws://node:80");
        assert_eq!(endpoint_label("not a url"), "<unparseable>");
    }

    #[test]
    fn only_the_endpoints_faults_fail_over() {
        let answer = |code: i32, message: &str| {
            subxt_rpcs::Error::User(subxt_rpcs::UserError {
                code,
                message: message.into(),
                data: None,
            })
        };
        assert!(is_endpoint_failure(&answer(-32005, "limit exceeded")));
        assert!(!is_endpoint_failure(&answer(1010, "Invalid Transaction")));
        assert!(is_endpoint_failure(&subxt_rpcs::Error::Client(
            "connection refused".into()
        )));
        assert!(is_endpoint_failure(
            &subxt_rpcs::Error::DisconnectedWillReconnect("reset".into())
        ));
    }

    #[test]
    fn only_websocket_endpoints_are_taken() {
        assert!(FailoverRpc::new(&["http://127.0.0.1:9944".into()], None).is_err());
        assert!(FailoverRpc::new(&[], None).is_err());
        assert!(FailoverRpc::new(&["ws://127.0.0.1:9944".into()], None).is_ok());
    }
}
