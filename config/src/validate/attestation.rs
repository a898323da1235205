//! `[attestation]`: the mutual-TLS endpoint, its files and its limits.

use crate::key::KeySource;
use crate::model::Config;
use crate::model::{DEFAULT_ATTEST_BURST, DEFAULT_ATTEST_RATE};
use crate::problem::KeyPath;
use crate::problem::Problem;
use crate::settings::AttestationSettings;
use crate::tls::{TlsError, TlsFiles};

use super::Checker;

/// The fix for a missing `[attestation]` section, shown whole.
const ATTESTATION_EXAMPLE: &str = "add an [attestation] table: listen = \"ADDRESS:PORT\", \
     certificate = \"member.pem\", key = { file = \"member.key\" }, ca = \"consortium-ca.pem\" \
     (issued by the consortium's CA for this member's TLS name; on a devnet \
     `isthmus devnet certificates` makes a set)";

impl Checker<'_> {
    pub(super) fn attestation(&mut self) -> Option<AttestationSettings> {
        let at = KeyPath::root("attestation");
        let Some(attestation) = &self.config.attestation else {
            self.report(
                &at,
                "no [attestation] table: the attestation endpoint is served only with mutual TLS",
                ATTESTATION_EXAMPLE,
            );
            return None;
        };
        let before = self.problems.len();
        if attestation.listen == self.config.http.listen {
            self.report(
                &at.field("listen"),
                format!(
                    "{} is also http.listen: the attestation endpoint needs its own listener",
                    attestation.listen
                ),
                "choose another port: health and metrics stay plain HTTP on http.listen",
            );
        }
        let rate_per_s = attestation.rate_per_s.unwrap_or(DEFAULT_ATTEST_RATE);
        let burst = attestation.burst.unwrap_or(DEFAULT_ATTEST_BURST);
        if rate_per_s == 0 {
            self.report(
                &at.field("rate_per_s"),
                "rate_per_s 0 would refuse every request",
                format!("leave it out (default {DEFAULT_ATTEST_RATE}) or set it above 0"),
            );
        }
        if burst == 0 {
            self.report(
                &at.field("burst"),
                "burst 0 would refuse every request",
                format!("leave it out (default {DEFAULT_ATTEST_BURST}) or set it above 0"),
            );
        }
        let key_path = at.field("key");
        match &attestation.key {
            KeySource::Inline => {
                self.report(
                    &key_path,
                    "a TLS private key may not be written into the configuration",
                    "use key = { file = \"member.key\" } (readable by the relayer only) or { env = \"VAR\" }",
                );
                return None;
            }
            KeySource::Pkcs11(_) => {
                self.report(
                    &key_path,
                    "the TLS key is read from a file or an environment variable, not from a PKCS#11 token",
                    "use key = { file = \"member.key\" } (readable by the relayer only); the \
                     attestation and submitter keys are the ones kept in the token",
                );
                return None;
            }
            KeySource::Env(_) | KeySource::File(_) => {}
        }
        let files = TlsFiles {
            certificate: attestation.certificate.relative(),
            key: attestation.key.clone(),
            ca: attestation.ca.relative(),
        };
        let material = match files.load() {
            Ok(material) => Some(material),
            Err(error) => {
                let (path, fix) = tls_fix(&at, &error);
                self.report(&path, error.to_string(), fix);
                None
            }
        };
        // The identity this member presents: its TLS name in the consortium.
        let name = self
            .config
            .consortium
            .members
            .iter()
            .find(|m| m.name == self.config.member.name)
            .map(|m| m.tls_name.clone().unwrap_or_else(|| m.name.clone()));
        if let (Some(material), Some(name)) = (&material, name) {
            if crate::tls::is_tls_name(&name) {
                if let Err(error) = material.check_identity(&name) {
                    self.report(
                        &at.field("certificate"),
                        error.to_string(),
                        format!(
                            "have the consortium CA issue this member a certificate for the DNS name \
                             `{name}` with both server and client authentication usages, valid now"
                        ),
                    );
                }
            }
        }
        (self.clean_since(before) && material.is_some()).then_some(AttestationSettings {
            listen: attestation.listen,
            tls: files,
            rate_per_s,
            burst,
        })
    }
}

/// The key and the fix for a TLS file problem.
fn tls_fix(at: &KeyPath, error: &TlsError) -> (KeyPath, String) {
    match error {
        TlsError::File { what, path, .. }
        | TlsError::NoCertificate { what, path }
        | TlsError::BadPem { what, path, .. } => {
            let field = if *what == "certificate" {
                "certificate"
            } else {
                "ca"
            };
            (
                at.field(field),
                format!(
                    "point `{field}` at a readable PEM file with the {what} (now `{}`; relative paths start at the configuration file's directory)",
                    path.display()
                ),
            )
        }
        TlsError::Key(_) | TlsError::NoKey { .. } => (
            at.field("key"),
            "supply the certificate's private key as PEM (-----BEGIN PRIVATE KEY-----)".to_owned(),
        ),
        TlsError::KeyMismatch { .. } => (
            at.field("key"),
            "supply the private key the certificate was issued for, or the certificate of this key"
                .to_owned(),
        ),
        TlsError::Invalid { .. } | TlsError::BadName(_) => (
            at.field("certificate"),
            "have the consortium CA issue a certificate for this member".to_owned(),
        ),
    }
}

/// Days before a certificate's expiry from which `config validate` warns.
const CERTIFICATE_WARNING_DAYS: i64 = 30;

impl Config {
    /// A certificate of this member that expires within [`CERTIFICATE_WARNING_DAYS`]
    /// (an expired or unreadable one is a problem of [`Config::validate`]).
    pub(super) fn certificate_expiry_warning(&self) -> Option<Problem> {
        let attestation = self.attestation.as_ref()?;
        let files = TlsFiles {
            certificate: attestation.certificate.relative(),
            key: attestation.key.clone(),
            ca: attestation.ca.relative(),
        };
        let (not_after, date) = files.load().ok()?.not_after()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        let left_days = (not_after - i64::try_from(now).ok()?) / 86_400;
        (0..CERTIFICATE_WARNING_DAYS).contains(&left_days).then(|| {
            self.provenance.problem(
                &KeyPath::root("attestation").field("certificate"),
                format!(
                    "the certificate `{}` expires on {date}, in {left_days} day(s): then no \
                     member accepts this member's requests or answers",
                    files.certificate.display()
                ),
                "have the consortium CA issue a new certificate for this member and replace \
                 the file before then (docs/operations.md, Mutual TLS between members)"
                    .to_owned(),
            )
        })
    }
}
