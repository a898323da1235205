//! Mutual TLS between members: the certificate files `[attestation]` names, read and
//! checked before anything listens or connects.
//!
//! A member holds one certificate (with its chain) and its private key, issued by the
//! consortium's CA for the member's TLS name (by default its member name), usable both
//! to serve the attestation endpoint and as the client certificate when asking the
//! other members. [`TlsMaterial::check_identity`] checks all of it the way a peer
//! will: the chain ends at the CA, the certificate is valid now for the name in both
//! roles, and the private key belongs to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::RootCertStore;

use crate::key::KeySource;
use crate::secret::Secret;

/// Why the TLS files of a member cannot be used. Messages name the file (or key
/// source) and never quote key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate file could not be read.
    #[error("cannot read the {what} file `{}`: {source}", path.display())]
    File {
        /// Which file (`certificate`, `CA certificate`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file holds no PEM certificate.
    #[error("the {what} file `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate file holds a PEM block that does not parse.
    #[error("the {what} file `{}` holds a PEM block that does not parse: {reason}", path.display())]
    BadPem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        reason: String,
    },
    /// The key source could not be read.
    #[error("the TLS private key: {0}")]
    Key(String),
    /// The key source holds no PEM private key that TLS can use.
    #[error("{source_desc} holds no PEM private key (PKCS#8, SEC1 or PKCS#1) that TLS can use")]
    NoKey {
        /// Which source.
        source_desc: String,
    },
    /// The private key is not the certificate's.
    #[error("the private key from {source_desc} does not belong to the certificate `{}`", certificate.display())]
    KeyMismatch {
        /// Which key source.
        source_desc: String,
        /// The certificate file.
        certificate: PathBuf,
    },
    /// The certificate is not one the other members will accept for this member.
    #[error("the certificate `{}` is not valid as member `{name}`'s {role} certificate under the CA `{}`: {reason}", certificate.display(), ca.display())]
    Invalid {
        /// The certificate file.
        certificate: PathBuf,
        /// The CA file.
        ca: PathBuf,
        /// The TLS name it was checked for.
        name: String,
        /// `server` or `client`.
        role: &'static str,
        /// What the verifier said (expired, unknown issuer, wrong name, wrong usage).
        reason: String,
    },
    /// A TLS name is not a DNS name.
    #[error("`{0}` is not a DNS name a certificate can carry")]
    BadName(String),
}

/// Where a member's TLS material is read from (validated `[attestation]` keys).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsFiles {
    /// PEM: this member's certificate first, then any intermediates.
    pub certificate: PathBuf,
    /// The PEM private key of the certificate (a file or an environment variable).
    pub key: KeySource,
    /// PEM: the consortium CA certificate(s) every member's certificate chains to.
    pub ca: PathBuf,
}

/// A member's TLS material, read and parsed. `Debug` shows no key.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    files: TlsFiles,
    chain: Vec<CertificateDer<'static>>,
    ca: Vec<CertificateDer<'static>>,
    chain_pem: Vec<u8>,
    key_pem: Secret<Vec<u8>>,
}

fn read_certificates(
    what: &'static str,
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::File {
        what,
        path: path.to_owned(),
        source,
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok((certificates, pem))
}

/// The cryptography every TLS object of the relayer uses (ring, as the rest of the tree).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsFiles {
    /// Reads the certificate chain, the CA and the private key, and checks the key
    /// belongs to the certificate.
    pub fn load(&self) -> Result<TlsMaterial, TlsError> {
        let (chain, chain_pem) = read_certificates("certificate", &self.certificate)?;
        let (ca, _) = read_certificates("CA certificate", &self.ca)?;
        let key_text = self.key.read().map_err(|e| TlsError::Key(e.to_string()))?;
        let key_pem = Secret::new(key_text.expose().as_bytes().to_vec());
        let material = TlsMaterial {
            files: self.clone(),
            chain,
            ca,
            chain_pem,
            key_pem,
        };
        let key = material.private_key()?;
        let signing = crypto_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|_| TlsError::NoKey {
                source_desc: self.key.describe(),
            })?;
        rustls::sign::CertifiedKey::new(material.chain.clone(), signing)
            .keys_match()
            .map_err(|_| TlsError::KeyMismatch {
                source_desc: self.key.describe(),
                certificate: self.certificate.clone(),
            })?;
        Ok(material)
    }
}

impl TlsMaterial {
    /// The files this was read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key, parsed from its PEM each time (it is kept only as PEM).
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.expose()).map_err(|_| TlsError::NoKey {
            source_desc: self.files.key.describe(),
        })
    }

    /// The consortium CA as a root store.
    pub fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        // A CA certificate webpki cannot use is left out; `check_identity` then fails
        // with the verifier's reason, which names the problem better than this would.
        let _ = roots.add_parsable_certificates(self.ca.iter().cloned());
        Arc::new(roots)
    }

    /// When this member's certificate stops being valid, in seconds since the Unix
    /// epoch, and as a date for people; `None` if the certificate does not parse
    /// (validation reports that).
    pub fn not_after(&self) -> Option<(i64, String)> {
        let leaf = self.chain.first()?;
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        let not_after = certificate.validity().not_after;
        Some((not_after.timestamp(), not_after.to_string()))
    }

    /// The consortium CA certificate(s).
    pub fn ca(&self) -> &[CertificateDer<'static>] {
        &self.ca
    }

    /// The certificate chain followed by the private key, PEM: a client identity.
    pub fn identity_pem(&self) -> Secret<Vec<u8>> {
        let mut pem = self.chain_pem.clone();
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend_from_slice(self.key_pem.expose());
        Secret::new(pem)
    }

    /// Checks the certificate as the other members will: issued (through the chain)
    /// by the CA, valid now, for `name`, as a server and as a client certificate.
    pub fn check_identity(&self, name: &str) -> Result<(), TlsError> {
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::BadName(name.to_owned()))?;
        let invalid = |role: &'static str, reason: String| TlsError::Invalid {
            certificate: self.files.certificate.clone(),
            ca: self.files.ca.clone(),
            name: name.to_owned(),
            role,
            reason,
        };
        let (leaf, intermediates) = self
            .chain
            .split_first()
            .ok_or_else(|| invalid("server", "the chain is empty".to_owned()))?;
        let now = UnixTime::now();
        let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.roots(),
            crypto_provider(),
        )
        .build()
        .map_err(|e| invalid("server", e.to_string()))?;
        server
            .verify_server_cert(leaf, intermediates, &server_name, &[], now)
            .map_err(|e| invalid("server", e.to_string()))?;
        let client = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots(),
            crypto_provider(),
        )
        .build()
        .map_err(|e| invalid("client", e.to_string()))?;
        client
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| invalid("client", e.to_string()))?;
        Ok(())
    }
}

/// Whether `name` can be carried by a certificate as a DNS name (a member's TLS name).
pub fn is_tls_name(name: &str) -> bool {
    matches!(
        ServerName::try_from(name.to_owned()),
        Ok(ServerName::DnsName(_))
    )
}
