//! `isthmus signers`: the consortium changes an origin's signer set on a destination
//! (a member's key rotation, a member joining or leaving), step by step.
//!
//! 1. `propose` reads the destination's current set, builds the update (the next
//!    version, the new signers and threshold, the overlap during which the replaced
//!    set still counts) and writes it to a file with its digest;
//! 2. `sign`, run by each member of the current set, checks the proposal against
//!    the destination (same version, same digest, computed by the destination's own
//!    rules) and signs the digest with the member's attestation key (a PKCS#11 token
//!    or a file), writing a signature file;
//! 3. `submit` checks that the signatures hold a quorum of the current set and
//!    sends the update with this member's submitter key.
//!
//! The files travel between members by whatever channel the consortium uses for
//! governance: they hold no secret, and each step checks them again. Every step is
//! an operator action in the member's hash-chained history (`operator_actions`,
//! with the update and its digest; for a submission, the transaction or the
//! refusal). `show` prints the sets a destination accepts.

use std::io::Write;
use std::path::Path;

use isthmus_config::{LedgerSettings, Settings};
use isthmus_protocol::{ActiveSigners, Attestation, EvmAddress, SignerSet, SignerSetUpdate};
use isthmus_schema::{OperatorAction, OperatorActionKind, Route, Store};
use serde::{Deserialize, Serialize};

use crate::cli::{SignersProposeArgs, SignersShowArgs, SignersSignArgs, SignersSubmitArgs};
use crate::commands::Outcome;
use crate::ledger::LedgerHandle;
use crate::RelayerError;

/// What a proposal file says it is.
pub const PROPOSAL_KIND: &str = "isthmus signer-set update v1";
/// What a signature file says it is.
pub const SIGNATURE_KIND: &str = "isthmus signer-set update signature v1";

/// A proposed update, as written by `propose` and read by `sign` and `submit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// [`PROPOSAL_KIND`].
    pub kind: String,
    /// The destination ledger's name and id.
    pub destination: String,
    /// Its protocol id.
    pub destination_id: u32,
    /// The origin ledger whose signer set changes.
    pub origin: String,
    /// Its protocol id.
    pub origin_id: u32,
    /// The new signers, `0x` hex, in order.
    pub signers: Vec<String>,
    /// The new threshold.
    pub threshold: u8,
    /// The new version (the destination's current version + 1).
    pub version: u64,
    /// Seconds the replaced set stays valid after the update.
    pub overlap_s: u64,
    /// The digest the current signers sign, `0x` hex.
    pub digest: String,
    /// The member that proposed it.
    pub proposed_by: String,
}

/// One member's signature of a proposal's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// [`SIGNATURE_KIND`].
    pub kind: String,
    /// The signing member.
    pub member: String,
    /// Its signer address, `0x` hex.
    pub signer: String,
    /// The signed digest, `0x` hex.
    pub digest: String,
    /// The signature `r ‖ s ‖ v`, `0x` hex.
    pub signature: String,
}

impl Proposal {
    /// The update it proposes; the error names the field.
    pub fn update(&self) -> Result<SignerSetUpdate, String> {
        if self.kind != PROPOSAL_KIND {
            return Err(format!(
                "kind is `{}`, not `{PROPOSAL_KIND}`: not a signer-set proposal",
                self.kind
            ));
        }
        let signers = self
            .signers
            .iter()
            .map(|s| parse_address(s).map_err(|e| format!("signers: `{s}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        SignerSet::new(signers.clone(), usize::from(self.threshold))
            .map_err(|e| format!("signers/threshold: {e}"))?;
        if self.overlap_s > isthmus_protocol::MAX_OVERLAP_S {
            return Err(format!(
                "overlap_s: {} s is longer than the 30 days an inbox allows",
                self.overlap_s
            ));
        }
        Ok(SignerSetUpdate {
            origin: self.origin_id,
            signers,
            threshold: self.threshold,
            version: self.version,
            overlap_s: self.overlap_s,
        })
    }
}

/// `0x` and 40 hex digits.
fn parse_address(text: &str) -> Result<EvmAddress, String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits)
        .ok()
        .and_then(|b| EvmAddress::try_from(b).ok())
        .ok_or_else(|| "not 0x and 40 hex digits".to_owned())
}

/// `0x` hex of `bytes`.
pub(crate) fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// An overlap as `3600`, `90s`, `30m`, `12h` or `7d`.
pub fn parse_overlap(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: write seconds, or a number with s, m, h or d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("`{text}`: unknown unit `{other}` (s, m, h or d)")),
    };
    let seconds = n
        .checked_mul(scale)
        .filter(|s| *s <= isthmus_protocol::MAX_OVERLAP_S)
        .ok_or_else(|| format!("`{text}`: an inbox allows at most 30 days of overlap"))?;
    Ok(seconds)
}

/// The new signer list: `signers` as given, or the current list with each
/// `OLD=NEW` of `replace` applied in place.
pub fn next_signers(
    current: &[EvmAddress],
    signers: &[String],
    replace: &[String],
) -> Result<Vec<EvmAddress>, String> {
    if !signers.is_empty() {
        return signers
            .iter()
            .map(|s| parse_address(s).map_err(|e| format!("--signers `{s}`: {e}")))
            .collect();
    }
    let mut next = current.to_vec();
    for pair in replace {
        let (old, new) = pair
            .split_once('=')
            .ok_or_else(|| format!("--replace `{pair}`: write OLD=NEW"))?;
        let old = parse_address(old).map_err(|e| format!("--replace `{pair}`: OLD {e}"))?;
        let new = parse_address(new).map_err(|e| format!("--replace `{pair}`: NEW {e}"))?;
        let slot = next.iter_mut().find(|s| **s == old).ok_or_else(|| {
            format!(
                "--replace `{pair}`: {} is not a current signer",
                hex0x(&old)
            )
        })?;
        *slot = new;
    }
    Ok(next)
}

/// The destination and origin ledgers a command names, the destination connected.
pub(crate) struct Target<'a> {
    pub(crate) destination: &'a LedgerSettings,
    pub(crate) origin: &'a LedgerSettings,
    pub(crate) handle: LedgerHandle,
    store: Store,
    /// The configured members by signer, to name them in what is printed.
    pub(crate) names: std::collections::HashMap<EvmAddress, String>,
}

/// Connects the destination `destination` for a governance command on `origin`'s
/// route (`--on`, `--origin`), with the history store migrated.
pub(crate) async fn connect<'a>(
    settings: &'a Settings,
    file: &Path,
    destination: &str,
    origin: &str,
) -> Result<Target<'a>, RelayerError> {
    let named = |name: &str, flag: &str| {
        settings.ledger(name).ok_or_else(|| {
            let known: Vec<&str> = settings.ledgers.iter().map(|l| l.name.as_str()).collect();
            RelayerError::Usage(format!(
                "{flag}: ledger `{name}` is not in {}; configured: {}",
                file.display(),
                known.join(", ")
            ))
        })
    };
    let destination = named(destination, "--on")?;
    let origin = named(origin, "--origin")?;
    if destination.id == origin.id {
        return Err(RelayerError::Usage(
            "--origin: a ledger has no route to itself".into(),
        ));
    }
    let store = Store::new(isthmus_schema::connect(settings.database.url.expose()).await?);
    // The steps are recorded: the schema must be there (as `run` makes sure).
    store.migrate().await?;
    let handle =
        crate::supervise::connect_ledger(destination, &store, &crate::metrics::Metrics::new())
            .await?;
    let names = settings
        .consortium
        .members
        .iter()
        .map(|m| (*m.signer.as_bytes(), m.name.clone()))
        .collect();
    Ok(Target {
        destination,
        origin,
        handle,
        store,
        names,
    })
}

impl Target<'_> {
    pub(crate) async fn sets(&self) -> Result<ActiveSigners, RelayerError> {
        Ok(self.handle.destination.signer_sets(self.origin.id).await?)
    }

    pub(crate) async fn record(
        &self,
        operator: &str,
        action: OperatorActionKind,
        reason: String,
        details: serde_json::Value,
    ) -> Result<i64, RelayerError> {
        Ok(self
            .store
            .record_operator_action(&OperatorAction {
                operator: operator.to_owned(),
                action,
                reason,
                message_id: None,
                route: Some(Route {
                    source: self.origin.id,
                    destination: self.destination.id,
                }),
                ledger: Some(self.destination.id),
                details,
            })
            .await?)
    }
}

/// What the history keeps of a proposal.
fn details(proposal: &Proposal) -> serde_json::Value {
    serde_json::json!({
        "destination": proposal.destination,
        "origin": proposal.origin,
        "version": proposal.version,
        "signers": proposal.signers,
        "threshold": proposal.threshold,
        "overlap_s": proposal.overlap_s,
        "digest": proposal.digest,
        "proposed_by": proposal.proposed_by,
    })
}

impl Target<'_> {
    /// `2 of [0x… (bank-a), 0x…]`: each signer, with the member this configuration
    /// gives it (none for a key it does not name, such as a rotated one).
    pub(crate) fn describe(&self, set: &SignerSet) -> String {
        let signers: Vec<String> = set
            .signers()
            .iter()
            .map(|s| match self.names.get(s) {
                Some(name) => format!("{} ({name})", hex0x(s)),
                None => hex0x(s),
            })
            .collect();
        format!("{} of [{}]", set.threshold(), signers.join(", "))
    }
}

/// `isthmus signers show --on DEST --origin ORIGIN`.
pub async fn show(
    settings: Settings,
    args: &SignersShowArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let target = connect(&settings, &args.config.config, &args.on, &args.origin).await?;
    let sets = target.sets().await?;
    writeln!(
        out,
        "{} accepts checkpoints of {} signed by:\n  version {}: {}",
        target.destination.name,
        target.origin.name,
        sets.version,
        target.describe(&sets.current)
    )?;
    let now = crate::pipeline::signer_sets::unix_now();
    match &sets.previous {
        Some((set, until)) if now <= *until => writeln!(
            out,
            "  version {} (replaced; accepted for {} s more, until unix {until}): {}",
            sets.version.saturating_sub(1),
            until - now,
            target.describe(set)
        )?,
        Some((_, until)) => writeln!(
            out,
            "  (the set of version {} was accepted until unix {until}; no longer)",
            sets.version.saturating_sub(1)
        )?,
        None => {}
    }
    Ok(Outcome::Success)
}

/// `isthmus signers propose`.
pub async fn propose(
    settings: Settings,
    args: &SignersProposeArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    if args.reason.trim().is_empty() {
        return Err(RelayerError::Usage(
            "--reason: say why the signer set changes (it is recorded)".into(),
        ));
    }
    let overlap_s =
        parse_overlap(&args.overlap).map_err(|e| RelayerError::Usage(format!("--overlap {e}")))?;
    let target = connect(&settings, &args.config.config, &args.on, &args.origin).await?;
    let sets = target.sets().await?;
    let signers = next_signers(sets.current.signers(), &args.signers, &args.replace)
        .map_err(RelayerError::Usage)?;
    let threshold = args
        .threshold
        .unwrap_or_else(|| u8::try_from(sets.current.threshold()).unwrap_or(u8::MAX));
    let set = SignerSet::new(signers.clone(), usize::from(threshold))
        .map_err(|e| RelayerError::Usage(format!("--signers/--threshold: {e}")))?;
    if set == sets.current {
        return Err(RelayerError::Usage(
            "the proposed set is the current one: nothing to update".into(),
        ));
    }
    let update = SignerSetUpdate {
        origin: target.origin.id,
        signers,
        threshold,
        version: sets.version + 1,
        overlap_s,
    };
    let digest = target.handle.destination.update_digest(&update).await?;
    let proposal = Proposal {
        kind: PROPOSAL_KIND.into(),
        destination: target.destination.name.clone(),
        destination_id: target.destination.id,
        origin: target.origin.name.clone(),
        origin_id: target.origin.id,
        signers: update.signers.iter().map(|s| hex0x(s)).collect(),
        threshold,
        version: update.version,
        overlap_s,
        digest: hex0x(&digest),
        proposed_by: settings.member.name.clone(),
    };
    write_json(&args.out, &proposal)?;
    let action = target
        .record(
            &args.operator,
            OperatorActionKind::SignerSetPropose,
            args.reason.clone(),
            details(&proposal),
        )
        .await?;
    writeln!(
        out,
        "proposed version {} of {}'s signer set on {}: {} (was {}), the replaced set \
         accepted for {overlap_s} s after the update\ndigest {}\nwritten to {} (operator \
         action #{action}); each member of the current set runs `isthmus signers sign {}`",
        update.version,
        target.origin.name,
        target.destination.name,
        target.describe(&set),
        target.describe(&sets.current),
        proposal.digest,
        args.out.display(),
        args.out.display()
    )?;
    Ok(Outcome::Success)
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RelayerError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| RelayerError::Usage(format!("encoding {}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| {
        RelayerError::Usage(format!("--out {}: cannot write it ({e})", path.display()))
    })
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &str,
) -> Result<T, RelayerError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RelayerError::Usage(format!("{what} {}: cannot read it ({e})", path.display()))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        RelayerError::Usage(format!(
            "{what} {}: not a {what} file ({e})",
            path.display()
        ))
    })
}

/// A proposal read from `path` and checked against its destination: the update, the
/// connected destination and its current sets. `Err(text)` inside is a refusal to
/// print (the proposal does not fit the destination as it is now).
async fn checked<'a>(
    settings: &'a Settings,
    config: &Path,
    path: &Path,
) -> Result<
    (
        Proposal,
        SignerSetUpdate,
        Target<'a>,
        ActiveSigners,
        Result<(), String>,
    ),
    RelayerError,
> {
    let proposal: Proposal = read_json(path, "proposal")?;
    let update = proposal
        .update()
        .map_err(|e| RelayerError::Usage(format!("proposal {}: {e}", path.display())))?;
    let target = connect(settings, config, &proposal.destination, &proposal.origin).await?;
    if (target.destination.id, target.origin.id) != (proposal.destination_id, proposal.origin_id) {
        return Err(RelayerError::Usage(format!(
            "proposal {}: ledgers {} ({}) and {} ({}) have other ids in {}",
            path.display(),
            proposal.destination,
            proposal.destination_id,
            proposal.origin,
            proposal.origin_id,
            config.display()
        )));
    }
    let sets = target.sets().await?;
    let digest = hex0x(&target.handle.destination.update_digest(&update).await?);
    let fits = if sets.version + 1 != update.version {
        Err(format!(
            "{} is at version {} of {}'s signer set; the proposal is for version {} \
             (applied already, or made against an older set)",
            proposal.destination, sets.version, proposal.origin, update.version
        ))
    } else if digest != proposal.digest {
        Err(format!(
            "the proposal's digest {} is not the one {} computes ({digest}): the file was \
             altered or made for another ledger",
            proposal.digest, proposal.destination
        ))
    } else {
        Ok(())
    };
    Ok((proposal, update, target, sets, fits))
}

/// `isthmus signers sign PROPOSAL`.
pub async fn sign(
    settings: Settings,
    args: &SignersSignArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let (proposal, _, target, sets, fits) =
        checked(&settings, &args.config.config, &args.proposal).await?;
    if let Err(refusal) = fits {
        writeln!(out, "refused: {refusal}")?;
        return Ok(Outcome::Problems);
    }
    let key = settings.member.key.open_secp256k1()?;
    let signer = key.address();
    if !sets.current.signers().contains(&signer) {
        writeln!(
            out,
            "refused: this member's attestation key {} is not in {}'s current set for {} \
             ({}): its signature would not count",
            hex0x(&signer),
            proposal.destination,
            proposal.origin,
            target.describe(&sets.current)
        )?;
        return Ok(Outcome::Problems);
    }
    let digest: [u8; 32] = crate::attest::parse_hex32(&proposal.digest)
        .ok_or_else(|| RelayerError::Usage("proposal: digest is not 32 bytes of hex".into()))?;
    let attestation = sign_digest(&key, digest).await?;
    let file = SignatureFile {
        kind: SIGNATURE_KIND.into(),
        member: settings.member.name.clone(),
        signer: hex0x(&signer),
        digest: proposal.digest.clone(),
        signature: hex0x(&attestation.0),
    };
    write_json(&args.out, &file)?;
    let mut recorded = details(&proposal);
    recorded["signer"] = serde_json::Value::String(file.signer.clone());
    let action = target
        .record(
            &args.operator,
            OperatorActionKind::SignerSetSign,
            format!(
                "signed version {} proposed by {}",
                proposal.version, proposal.proposed_by
            ),
            recorded,
        )
        .await?;
    writeln!(
        out,
        "signed version {} of {}'s signer set on {} as {} ({}); signature written to {} \
         (operator action #{action})",
        proposal.version,
        proposal.origin,
        proposal.destination,
        settings.member.name,
        file.signer,
        args.out.display()
    )?;
    Ok(Outcome::Success)
}

/// Signs `digest` with this member's attestation key `key` (off the async threads: a
/// PKCS#11 token may take its time), checking that the signature recovers to it.
pub(crate) async fn sign_digest(
    key: &std::sync::Arc<dyn isthmus_keys::EcdsaKey>,
    digest: [u8; 32],
) -> Result<Attestation, RelayerError> {
    let signer = key.address();
    let signing = key.clone();
    let signed = tokio::task::spawn_blocking(move || signing.sign_prehash(&digest))
        .await
        .map_err(|e| RelayerError::Usage(format!("signing task: {e}")))?
        .map_err(|e| RelayerError::Usage(format!("signing with {}: {e}", key.describe())))?;
    let attestation = Attestation(signed.to_rsv27());
    if crate::verified::recover_signer(&attestation, &digest).ok() != Some(signer) {
        return Err(RelayerError::Usage(format!(
            "signing with {}: the signature does not recover to {}",
            key.describe(),
            hex0x(&signer)
        )));
    }
    Ok(attestation)
}

/// The signatures among `files` of `kind` that count for `digest` in `current`, one
/// per signer; the others with why not.
pub fn counted(
    files: &[SignatureFile],
    kind: &str,
    digest: &[u8; 32],
    current: &SignerSet,
) -> (Vec<Attestation>, Vec<String>) {
    let mut counted: Vec<(EvmAddress, Attestation)> = Vec::new();
    let mut refused = Vec::new();
    for f in files {
        let signature = hex::decode(f.signature.trim_start_matches("0x"))
            .ok()
            .and_then(|b| <[u8; 65]>::try_from(b).ok())
            .map(Attestation);
        let verdict = match signature {
            _ if f.kind != kind => Err(format!("kind is `{}`, not `{kind}`", f.kind)),
            _ if f.digest != hex0x(digest) => Err("signs another digest".to_owned()),
            None => Err("signature is not 65 bytes of hex".to_owned()),
            Some(a) => match crate::verified::recover_signer(&a, digest) {
                Err(e) => Err(format!("invalid signature: {e}")),
                Ok(s) if hex0x(&s) != f.signer.to_ascii_lowercase() => {
                    Err(format!("recovers to {}, not to {}", hex0x(&s), f.signer))
                }
                Ok(s) if !current.signers().contains(&s) => {
                    Err(format!("{} is not in the current set", hex0x(&s)))
                }
                Ok(s) if counted.iter().any(|(c, _)| *c == s) => {
                    Err(format!("{} signed twice; counted once", hex0x(&s)))
                }
                Ok(s) => {
                    counted.push((s, a));
                    Ok(())
                }
            },
        };
        if let Err(why) = verdict {
            refused.push(format!("{}: {why}", f.member));
        }
    }
    (counted.into_iter().map(|(_, a)| a).collect(), refused)
}

/// Attempts at sending a governance call whose failure may pass (a node that did not
/// answer, a nonce taken by the member's running relayer, which signs with the same
/// key).
const SUBMIT_ATTEMPTS: u32 = 5;

/// Sends a governance call with `send`, trying again while the failure may pass and
/// `applied` does not show the call applied meanwhile (an attempt that seemed to fail
/// landed after all, or another member submitted: the next attempt would be refused
/// as stale). `Ok(Err(_))` is the destination's (or the node's) last answer.
pub(crate) async fn send_retrying<T, S, SF, A, AF>(
    mut send: S,
    mut applied: A,
) -> Result<Result<T, crate::ledger::LedgerError>, RelayerError>
where
    S: FnMut() -> SF,
    SF: std::future::Future<Output = Result<T, crate::ledger::LedgerError>>,
    A: FnMut() -> AF,
    AF: std::future::Future<Output = Result<bool, RelayerError>>,
{
    let mut attempt = 1;
    loop {
        let result = send().await;
        match &result {
            Err(e) if e.is_retryable() && attempt < SUBMIT_ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "sending failed; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                if applied().await? {
                    return Ok(result);
                }
                attempt += 1;
            }
            _ => return Ok(result),
        }
    }
}

/// Sends `update` ([`send_retrying`]).
async fn send_update(
    target: &Target<'_>,
    update: &SignerSetUpdate,
    signatures: &[Attestation],
) -> Result<Result<isthmus_protocol::DeliveryRef, crate::ledger::LedgerError>, RelayerError> {
    send_retrying(
        || target.handle.destination.update_signers(update, signatures),
        || async { Ok(target.sets().await?.version >= update.version) },
    )
    .await
}

/// `isthmus signers submit PROPOSAL SIGNATURE...`.
pub async fn submit(
    settings: Settings,
    args: &SignersSubmitArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let (proposal, update, target, sets, fits) =
        checked(&settings, &args.config.config, &args.proposal).await?;
    if let Err(refusal) = fits {
        writeln!(out, "refused: {refusal}")?;
        return Ok(Outcome::Problems);
    }
    let files = args
        .signatures
        .iter()
        .map(|p| read_json::<SignatureFile>(p, "signature"))
        .collect::<Result<Vec<_>, _>>()?;
    let digest: [u8; 32] = crate::attest::parse_hex32(&proposal.digest)
        .ok_or_else(|| RelayerError::Usage("proposal: digest is not 32 bytes of hex".into()))?;
    let (signatures, refused) = counted(&files, SIGNATURE_KIND, &digest, &sets.current);
    for why in &refused {
        writeln!(out, "not counted: {why}")?;
    }
    if signatures.len() < sets.current.threshold() {
        writeln!(
            out,
            "refused: {} signature(s) of the current set count, {} needed ({})",
            signatures.len(),
            sets.current.threshold(),
            target.describe(&sets.current)
        )?;
        return Ok(Outcome::Problems);
    }
    // Checked by `Proposal::update`.
    let next = SignerSet::new(update.signers.clone(), usize::from(update.threshold))
        .map_err(|e| RelayerError::Usage(format!("proposal: {e}")))?;
    let mut recorded = details(&proposal);
    let result = send_update(&target, &update, &signatures).await?;
    let (reason, outcome) = match &result {
        Ok(at) => {
            recorded["tx_hash"] = hex0x(&at.tx_hash).into();
            recorded["block_number"] = at.block.number.into();
            (
                format!(
                    "submitted version {} with {} signatures",
                    update.version,
                    signatures.len()
                ),
                Outcome::Success,
            )
        }
        Err(e) => {
            recorded["refused"] = e.to_string().into();
            (
                format!("the destination refused version {}: {e}", update.version),
                Outcome::Problems,
            )
        }
    };
    let action = target
        .record(
            &args.operator,
            OperatorActionKind::SignerSetSubmit,
            reason.clone(),
            recorded,
        )
        .await?;
    match result {
        Ok(at) => writeln!(
            out,
            "{} now accepts {}'s checkpoints from version {} ({}); the replaced set counts \
             for {} s more. Transaction {} in block {} (operator action #{action})",
            proposal.destination,
            proposal.origin,
            update.version,
            target.describe(&next),
            update.overlap_s,
            hex0x(&at.tx_hash),
            at.block.number
        )?,
        Err(_) => writeln!(out, "refused: {reason} (operator action #{action})")?,
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use k256::ecdsa::SigningKey;

    #[test]
    fn overlaps_read_with_their_units_and_stay_within_30_days() {
        assert_eq!(parse_overlap("3600"), Ok(3600));
        assert_eq!(parse_overlap("90s"), Ok(90));
        assert_eq!(parse_overlap("30m"), Ok(1800));
        assert_eq!(parse_overlap("2h"), Ok(7200));
        assert_eq!(parse_overlap("30d"), Ok(30 * 86_400));
        assert!(parse_overlap("31d").unwrap_err().contains("30 days"));
        assert!(parse_overlap("1w").unwrap_err().contains("unit"));
        assert!(parse_overlap("h").is_err());
        assert!(parse_overlap("99999999999999999999d").is_err());
    }

    #[test]
    fn a_replacement_keeps_the_order_of_the_current_set() {
        let current = [[1u8; 20], [2; 20], [3; 20]];
        let next = next_signers(
            &current,
            &[],
            &[format!("{}={}", hex0x(&[2; 20]), hex0x(&[9; 20]))],
        )
        .unwrap();
        assert_eq!(next, vec![[1; 20], [9; 20], [3; 20]]);
        assert!(next_signers(
            &current,
            &[],
            &[format!("{}={}", hex0x(&[7; 20]), hex0x(&[9; 20]))]
        )
        .unwrap_err()
        .contains("not a current signer"));
        assert!(next_signers(&current, &[], &["0x12".into()])
            .unwrap_err()
            .contains("OLD=NEW"));
        let listed = next_signers(&current, &[hex0x(&[4; 20])], &[]).unwrap();
        assert_eq!(listed, vec![[4; 20]]);
    }

    fn key(i: u8) -> SigningKey {
        SigningKey::from_slice(&[i; 32]).unwrap()
    }

    fn file(i: u8, digest: &[u8; 32]) -> SignatureFile {
        let a = Attestation::sign(&key(i), digest).unwrap();
        SignatureFile {
            kind: SIGNATURE_KIND.into(),
            member: format!("bank-{i}"),
            signer: hex0x(&isthmus_protocol::attestation::address_of(
                key(i).verifying_key(),
            )),
            digest: hex0x(digest),
            signature: hex0x(&a.0),
        }
    }

    #[test]
    fn only_current_signers_over_the_digest_count_once_each() {
        let digest = [7u8; 32];
        let address = |i: u8| isthmus_protocol::attestation::address_of(key(i).verifying_key());
        let current = SignerSet::new(vec![address(1), address(2), address(3)], 2).unwrap();
        let mut other_digest = file(3, &[8u8; 32]);
        other_digest.digest = hex0x(&digest);
        let mut wrong_signer = file(2, &digest);
        wrong_signer.signer = hex0x(&address(3));
        let files = vec![
            file(1, &digest),
            file(1, &digest),
            file(4, &digest),
            file(2, &[8u8; 32]),
            other_digest,
            wrong_signer,
            file(3, &digest),
        ];
        let (signatures, refused) = counted(&files, SIGNATURE_KIND, &digest, &current);
        assert_eq!(signatures.len(), 2, "{refused:?}");
        assert_eq!(refused.len(), 5, "{refused:?}");
        assert!(refused[0].contains("twice"));
        assert!(refused[1].contains("not in the current set"));
        assert!(refused[2].contains("another digest"));
        assert!(refused[4].contains("recovers to"));
    }

    #[test]
    fn a_proposal_names_the_field_it_gets_wrong() {
        let good = Proposal {
            kind: PROPOSAL_KIND.into(),
            destination: "b".into(),
            destination_id: 2,
            origin: "a".into(),
            origin_id: 1,
            signers: vec![hex0x(&[1; 20]), hex0x(&[2; 20])],
            threshold: 2,
            version: 1,
            overlap_s: 60,
            digest: hex0x(&[0; 32]),
            proposed_by: "bank-a".into(),
        };
        assert_eq!(good.update().unwrap().signers, vec![[1; 20], [2; 20]]);
        let bad = |f: fn(&mut Proposal)| {
            let mut p = good.clone();
            f(&mut p);
            p.update().unwrap_err()
        };
        assert!(bad(|p| p.kind = "x".into()).starts_with("kind"));
        assert!(bad(|p| p.signers[0] = "0x12".into()).starts_with("signers"));
        assert!(bad(|p| p.threshold = 3).starts_with("signers/threshold"));
        assert!(bad(|p| p.overlap_s = 31 * 86_400).starts_with("overlap_s"));
    }
}
