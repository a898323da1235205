//! Mutual TLS between members: the server side of the attestation endpoint, the
//! client the peers are asked with, and who a client certificate belongs to.
//!
//! Both sides use the member's one certificate, issued by the consortium CA for its
//! TLS name. The server requires a client certificate from that CA (refused at the
//! handshake otherwise) and then names the member by the certificate's DNS name; a
//! certificate from the CA that names no configured member is a stranger.

use std::sync::Arc;
use std::time::Duration;

use isthmus_config::{ConsortiumSettings, TlsMaterial};
use rustls::pki_types::{CertificateDer, ServerName};

/// Why the TLS side of the endpoint or the peers' client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    /// rustls refused the configuration (a certificate or key it cannot use).
    #[error("TLS configuration from `{certificate}`: {reason}")]
    Config {
        /// The certificate file.
        certificate: String,
        /// What rustls said.
        reason: String,
    },
    /// The material could not be read.
    #[error(transparent)]
    Material(#[from] isthmus_config::TlsError),
    /// The HTTP client could not be built.
    #[error("HTTP client for the peers: {0}")]
    Client(String),
}

/// The server configuration of the attestation endpoint: this member's certificate,
/// and a client certificate from the consortium CA required of every caller.
pub fn server_config(material: &TlsMaterial) -> Result<Arc<rustls::ServerConfig>, MtlsError> {
    let provider = isthmus_config::crypto_provider();
    let fail = |reason: String| MtlsError::Config {
        certificate: material.files().certificate.display().to_string(),
        reason,
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        material.roots(),
        provider.clone(),
    )
    .build()
    .map_err(|e| fail(format!("the consortium CA cannot verify clients: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(material.chain().to_vec(), material.private_key()?)
        .map_err(|e| fail(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The HTTP client that asks the other members: presents this member's certificate
/// and trusts only the consortium CA for theirs.
pub fn peer_client(
    material: &TlsMaterial,
    timeout: Duration,
) -> Result<reqwest::Client, MtlsError> {
    let identity = reqwest::Identity::from_pem(material.identity_pem().expose())
        .map_err(|e| MtlsError::Client(format!("this member's certificate and key: {e}")))?;
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .https_only(true)
        .identity(identity)
        .timeout(timeout);
    for der in material.ca() {
        let certificate = reqwest::Certificate::from_der(der)
            .map_err(|e| MtlsError::Client(format!("the consortium CA: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|e| MtlsError::Client(e.to_string()))
}

/// Who is calling, by the certificate it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A configured member (its member name).
    Member(String),
    /// A certificate from the consortium CA that names no configured member (or
    /// several).
    Stranger,
}

/// The members by TLS name, to name the owner of a client certificate.
#[derive(Clone, Debug)]
pub struct Directory {
    members: Vec<(ServerName<'static>, String)>,
}

impl Directory {
    /// The members of `consortium`.
    pub fn new(consortium: &ConsortiumSettings) -> Self {
        Self {
            members: consortium
                .members
                .iter()
                .filter_map(|m| {
                    ServerName::try_from(m.tls_name.clone())
                        .ok()
                        .map(|n| (n, m.name.clone()))
                })
                .collect(),
        }
    }

    /// The member whose TLS name the (already verified) certificate `leaf` is valid
    /// for; a certificate valid for none or for several members is a stranger.
    pub fn identify(&self, leaf: &CertificateDer<'_>) -> Caller {
        let Ok(certificate) = webpki::EndEntityCert::try_from(leaf) else {
            return Caller::Stranger;
        };
        let mut found = self
            .members
            .iter()
            .filter(|(name, _)| certificate.verify_is_valid_for_subject_name(name).is_ok());
        match (found.next(), found.next()) {
            (Some((_, member)), None) => Caller::Member(member.clone()),
            _ => Caller::Stranger,
        }
    }
}
