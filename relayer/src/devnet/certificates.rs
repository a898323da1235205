//! The devnet's consortium CA and member certificates, for mutual TLS between the
//! members' attestation endpoints. A real consortium's CA issues these; the devnet
//! makes a throwaway one.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::RelayerError;

/// A certificate authority made on the spot.
pub struct DevnetCa {
    certificate: Certificate,
    key: KeyPair,
}

/// A certificate and its private key, PEM.
pub struct Issued {
    /// The certificate.
    pub certificate: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

fn fail(what: &str, e: rcgen::Error) -> RelayerError {
    RelayerError::Devnet(format!("{what}: {e}"))
}

impl DevnetCa {
    /// A new CA named `name` (its common name).
    pub fn new(name: &str) -> Result<Self, RelayerError> {
        let key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA parameters", e))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let certificate = params
            .self_signed(&key)
            .map_err(|e| fail("CA certificate", e))?;
        Ok(Self { certificate, key })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A member certificate for the DNS name `name`, also valid for `localhost` and
    /// 127.0.0.1 (where devnet members reach each other), usable as server and client
    /// certificate.
    pub fn issue(&self, name: &str) -> Result<Issued, RelayerError> {
        let key = KeyPair::generate().map_err(|e| fail("member key", e))?;
        let mut params = CertificateParams::new(vec![name.to_owned(), "localhost".to_owned()])
            .map_err(|e| fail(&format!("certificate for `{name}`"), e))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        params.distinguished_name.push(DnType::CommonName, name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .map_err(|e| fail(&format!("certificate for `{name}`"), e))?;
        Ok(Issued {
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Writes `ca.pem` and, per name, `<name>.pem` and `<name>.key` (readable by the
    /// owner only) into `dir`; returns the files written.
    pub fn write(&self, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, RelayerError> {
        let io = |path: &Path, e: std::io::Error| {
            RelayerError::Devnet(format!("writing `{}`: {e}", path.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut written = Vec::new();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, self.pem()).map_err(|e| io(&ca, e))?;
        written.push(ca);
        for name in names {
            let issued = self.issue(name)?;
            let certificate = dir.join(format!("{name}.pem"));
            std::fs::write(&certificate, &issued.certificate).map_err(|e| io(&certificate, e))?;
            let key = dir.join(format!("{name}.key"));
            write_private(&key, &issued.key).map_err(|e| io(&key, e))?;
            written.push(certificate);
            written.push(key);
        }
        Ok(written)
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
