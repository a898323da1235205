//! Held messages: `isthmus holds`, `isthmus approve`, `isthmus reject`
//! (docs/protocol.md, "Holds"; docs/operations.md, "Reviewing holds").
//!
//! A destination app holds a message over one of its value controls; the
//! destination executes it only after a quorum of the origin's current signers
//! signed its release over the message id, and ends it refused after a quorum signed
//! its rejection. Each member decides on its own:
//!
//! 1. `approve` (or `reject`) checks that the destination holds the message, signs
//!    the destination's decision digest with this member's attestation key, and
//!    records the signed decision (`hold_decisions`, and a `hold_decision` row of
//!    the hash-chained log);
//! 2. it asks every other member's endpoint (mutual TLS,
//!    `GET /v1/holds/{id}/{release|reject}`) for the signed decisions they recorded,
//!    checks each (over this digest, by a current signer) and records those that
//!    count;
//! 3. once a quorum signed, it submits the decision with this member's submitter
//!    key, records the transaction, and makes the message due at once: its next
//!    submission executes it (released) or ends it refused (rejected).
//!
//! The last member to agree therefore submits; no member alone, and not an admin,
//! can release a hold, and a member that never approves has refused.

use std::io::Write;
use std::time::Duration;

use isthmus_config::Settings;
use isthmus_protocol::{Attestation, EvmAddress, HoldAction, HoldDecision, HoldState};
use isthmus_schema::{HoldDecisionRecord, HoldVerdict, MessageId, Store};
use serde::{Deserialize, Serialize};

use crate::cli::{HoldDecisionArgs, HoldsArgs};
use crate::commands::Outcome;
use crate::screening::{Screening, ScreeningRequest, Verdict};
use crate::signers::{connect, hex0x, send_retrying, sign_digest, Target};
use crate::RelayerError;

/// How long each member's endpoint is given to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// A signed decision as the members' endpoints hand it over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDecision {
    /// The member that signed, as its endpoint names it.
    pub member: String,
    /// Its attestation address, `0x` hex.
    pub signer: String,
    /// The destination's decision digest, `0x` hex.
    pub digest: String,
    /// The signature, `0x` hex (65 bytes).
    pub signature: String,
    /// Why.
    pub reason: String,
}

impl From<&HoldDecisionRecord> for SignedDecision {
    fn from(d: &HoldDecisionRecord) -> Self {
        Self {
            member: d.member.clone(),
            signer: hex0x(&d.signer),
            digest: hex0x(&d.digest),
            signature: hex0x(&d.signature),
            reason: d.reason.clone(),
        }
    }
}

fn verdict(action: HoldAction) -> HoldVerdict {
    match action {
        HoldAction::Release => HoldVerdict::Release,
        HoldAction::Reject => HoldVerdict::Reject,
    }
}

/// Checks a decision handed over for `digest`: a 65-byte signature that recovers to
/// the signer it names, who is in `current`. Returns it as a record of `id`.
pub fn checked(
    d: &SignedDecision,
    id: MessageId,
    action: HoldAction,
    digest: &[u8; 32],
    current: &[EvmAddress],
) -> Result<HoldDecisionRecord, String> {
    if d.digest.to_ascii_lowercase() != hex0x(digest) {
        return Err("signs another digest".into());
    }
    let signature = hex::decode(d.signature.trim_start_matches("0x"))
        .ok()
        .and_then(|b| <[u8; 65]>::try_from(b).ok())
        .ok_or("the signature is not 65 bytes of hex")?;
    let signer = crate::verified::recover_signer(&Attestation(signature), digest)
        .map_err(|e| format!("invalid signature: {e}"))?;
    if hex0x(&signer) != d.signer.to_ascii_lowercase() {
        return Err(format!(
            "recovers to {}, not to {}",
            hex0x(&signer),
            d.signer
        ));
    }
    if !current.contains(&signer) {
        return Err(format!(
            "{} is not in the origin's current signer set",
            hex0x(&signer)
        ));
    }
    if d.reason.len() > 1_000 {
        return Err("the reason is longer than 1,000 bytes".into());
    }
    Ok(HoldDecisionRecord {
        message_id: id,
        verdict: verdict(action),
        signer,
        member: d.member.clone(),
        digest: *digest,
        signature,
        reason: d.reason.clone(),
        decided_at: None,
    })
}

/// One signature per current signer among `decisions` (which all sign the same
/// digest), in the set's order.
pub fn quorum_of(decisions: &[HoldDecisionRecord], current: &[EvmAddress]) -> Vec<Attestation> {
    current
        .iter()
        .filter_map(|s| decisions.iter().find(|d| d.signer == *s))
        .map(|d| Attestation(d.signature))
        .collect()
}

/// `isthmus holds`.
pub async fn list(
    config: isthmus_config::Config,
    args: &HoldsArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    if args.limit < 1 {
        return Err(RelayerError::Usage("--limit: at least 1".into()));
    }
    let store = Store::new(isthmus_schema::connect(config.database.url.expose()).await?);
    let held = store.held_messages(args.all, args.limit).await?;
    let name = |id: u32| {
        config
            .ledgers
            .iter()
            .find(|l| l.id == id)
            .map_or_else(|| format!("#{id}"), |l| l.name.clone())
    };
    if held.is_empty() {
        writeln!(
            out,
            "no {}messages held",
            if args.all { "" } else { "pending " }
        )?;
        return Ok(Outcome::Success);
    }
    writeln!(
        out,
        "{:<66}  {:<24}  {:<10}  {:>20}  {:<18}  {:<20}  signed",
        "id", "route", "status", "amount", "reason", "held since"
    )?;
    for h in &held {
        writeln!(
            out,
            "{:<66}  {:<24}  {:<10}  {:>20}  {:<18}  {:<20}  {} release, {} reject",
            h.id.to_string(),
            format!("{}->{}", name(h.origin), name(h.destination)),
            h.status.as_str(),
            h.amount.as_deref().unwrap_or("-"),
            h.reason.as_deref().unwrap_or("-"),
            h.first_held_at.format("%Y-%m-%d %H:%M:%S"),
            h.releases,
            h.rejections
        )?;
        if let (Some(debtor), Some(creditor)) = (&h.debtor, &h.creditor) {
            writeln!(out, "{:<66}  debtor 0x{debtor} creditor 0x{creditor}", "")?;
        }
    }
    Ok(Outcome::Success)
}

/// `isthmus approve ID` (`action` release) or `isthmus reject ID --reason WHY`.
pub async fn decide(
    settings: Settings,
    args: &HoldDecisionArgs,
    action: HoldAction,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    if action == HoldAction::Reject && args.reason.trim().is_empty() {
        return Err(RelayerError::Usage(
            "--reason: say why this member rejects the payment (it is recorded and handed to \
             the other members)"
                .into(),
        ));
    }
    if args.reason.len() > 1_000 {
        return Err(RelayerError::Usage("--reason: at most 1,000 bytes".into()));
    }
    let id = crate::operate::parse_id(&args.id)?;
    let store = Store::new(isthmus_schema::connect(settings.database.url.expose()).await?);
    store.migrate().await?;
    let Some(history) = store.message(id).await? else {
        writeln!(
            out,
            "refused: message {id} is not in this member's history (it never observed it): \
             check the id with `isthmus holds`"
        )?;
        return Ok(Outcome::Problems);
    };
    let m = &history.message;
    let ledger_name = |ledger: u32| {
        settings
            .ledgers
            .iter()
            .find(|l| l.id == ledger)
            .map(|l| l.name.clone())
            .ok_or_else(|| {
                RelayerError::Usage(format!(
                    "ledger {ledger} of message {id} is not configured in {}",
                    args.config.config.display()
                ))
            })
    };
    let (on, origin) = (ledger_name(m.destination)?, ledger_name(m.origin)?);
    let target = connect(&settings, &args.config.config, &on, &origin).await?;
    let destination = &target.handle.destination;
    let Some(hold) = destination.hold(id).await? else {
        writeln!(
            out,
            "refused: {on} holds no message {id} (never held, decided and ended, or not final \
             yet); its status here is {}",
            m.status
        )?;
        return Ok(Outcome::Problems);
    };
    if hold.state != HoldState::Held {
        writeln!(
            out,
            "{id} is {} on {on} already: its next submission {}",
            hold.state.as_str(),
            if hold.state == HoldState::Released {
                "executes it"
            } else {
                "ends it refused"
            }
        )?;
        return Ok(Outcome::Success);
    }
    if action == HoldAction::Release {
        if let Some(refused) = screened(&settings, &store, m, &on, &origin, args, out).await? {
            return Ok(refused);
        }
    }
    let decision = HoldDecision {
        origin: m.origin,
        id: id.0,
        action,
    };
    let digest = destination.hold_decision_digest(&decision).await?;
    let sets = target.sets().await?;
    let current = sets.current.signers().to_vec();
    let key = settings.member.key.open_secp256k1()?;
    if !current.contains(&key.address()) {
        writeln!(
            out,
            "refused: this member's attestation key {} is not in {on}'s current set for {origin} \
             ({}): only a signer of the origin decides its holds",
            hex0x(&key.address()),
            target.describe(&sets.current)
        )?;
        return Ok(Outcome::Problems);
    }
    let signature = sign_digest(&key, digest).await?;
    let mine = HoldDecisionRecord {
        message_id: id,
        verdict: verdict(action),
        signer: key.address(),
        member: settings.member.name.clone(),
        digest,
        signature: signature.0,
        reason: args.reason.clone(),
        decided_at: None,
    };
    let evidence = |d: &HoldDecisionRecord, step: &str| {
        serde_json::json!({
            "step": step,
            "decision": action.as_str(),
            "destination": on,
            "origin": origin,
            "member": d.member,
            "signer": hex0x(&d.signer),
            "digest": hex0x(&d.digest),
            "signature": hex0x(&d.signature),
            "reason": d.reason,
            "operator": args.operator,
            "hold_reason": isthmus_protocol::result_text(&hold.reason),
        })
    };
    store
        .record_hold_decision(&mine, &evidence(&mine, "signed"), &args.operator)
        .await?;
    writeln!(
        out,
        "signed the {} of {id} as {} ({}); held on {on} for {:?}",
        action.as_str(),
        settings.member.name,
        hex0x(&key.address()),
        isthmus_protocol::result_text(&hold.reason)
    )?;

    // The others' signed decisions, from their endpoints.
    let material = settings
        .attestation
        .tls
        .load()
        .map_err(crate::mtls::MtlsError::from)?;
    let http = crate::mtls::peer_client(&material, PEER_TIMEOUT)?;
    for member in settings
        .consortium
        .members
        .iter()
        .filter(|m| m.name != settings.member.name)
    {
        let url = format!(
            "{}/v1/holds/{}/{}",
            member.attestation_url.trim_end_matches('/'),
            hex0x(&id.0),
            action.as_str()
        );
        match fetch(&http, &url).await {
            Err(e) => writeln!(out, "{}: {e}", member.name)?,
            Ok(handed) => {
                for d in handed {
                    match checked(&d, id, action, &digest, &current) {
                        Ok(record) => {
                            store
                                .record_hold_decision(
                                    &record,
                                    &evidence(&record, "handed over"),
                                    &args.operator,
                                )
                                .await?;
                        }
                        Err(why) => writeln!(
                            out,
                            "{} (from {}): not counted: {why}",
                            d.member, member.name
                        )?,
                    }
                }
            }
        }
    }
    let recorded: Vec<HoldDecisionRecord> = store
        .hold_decisions(id)
        .await?
        .into_iter()
        .filter(|d| d.verdict == verdict(action) && d.digest == digest)
        .collect();
    let signatures = quorum_of(&recorded, &current);
    let threshold = sets.current.threshold();
    let signed_by: Vec<String> = current
        .iter()
        .filter(|s| recorded.iter().any(|d| d.signer == **s))
        .map(|s| target.names.get(s).cloned().unwrap_or_else(|| hex0x(s)))
        .collect();
    if signatures.len() < threshold {
        writeln!(
            out,
            "{} of {threshold} signatures of the current set ({}); the others run `isthmus {} {id}`",
            signatures.len(),
            signed_by.join(", "),
            if action == HoldAction::Release { "approve" } else { "reject" }
        )?;
        return Ok(Outcome::Success);
    }
    submit(
        &target,
        &store,
        &decision,
        &signatures,
        &signed_by,
        args,
        out,
    )
    .await
}

/// Asks this member's screening service (`[screening]`) about the payment before it
/// approves it, and records the verdict. `Some` (the outcome to return) when the
/// service holds or denies it: this member does not approve.
async fn screened(
    settings: &Settings,
    store: &Store,
    m: &isthmus_schema::MessageRecord,
    on: &str,
    origin: &str,
    args: &HoldDecisionArgs,
    out: &mut dyn Write,
) -> Result<Option<Outcome>, RelayerError> {
    let Some(config) = &settings.screening else {
        return Ok(None);
    };
    let Some(request) = ScreeningRequest::for_payment(&m.id.0, origin, on, &m.body) else {
        writeln!(
            out,
            "{} carries no payment: nothing for the screening service to check",
            m.id
        )?;
        return Ok(None);
    };
    let screening = Screening::new(&config.url, config.timeout).map_err(RelayerError::Usage)?;
    let (verdict, took) = screening.screen(&request).await;
    store
        .log_hold_step(
            m.id,
            &serde_json::json!({
                "step": "screened",
                "verdict": verdict.as_str(),
                "reason": verdict.reason(),
                "took_ms": took.as_millis() as u64,
                "service": isthmus_schema::redact_url(&config.url),
                "request": request,
                "operator": args.operator,
            }),
            &args.operator,
        )
        .await?;
    let word = verdict.as_str();
    match verdict {
        Verdict::Pass => {
            writeln!(out, "screening passed {} ({} ms)", m.id, took.as_millis())?;
            Ok(None)
        }
        Verdict::Hold(reason) | Verdict::Deny(reason) => {
            writeln!(
                out,
                "refused: this member's screening says {word} for {} ({reason}); this member \
                 does not approve it and signed nothing. `isthmus reject {} --reason ...` \
                 records a rejection",
                m.id, m.id
            )?;
            Ok(Some(Outcome::Problems))
        }
    }
}

/// Submits a quorum's decision and records it.
async fn submit(
    target: &Target<'_>,
    store: &Store,
    decision: &HoldDecision,
    signatures: &[Attestation],
    signed_by: &[String],
    args: &HoldDecisionArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let destination = &target.handle.destination;
    let id = MessageId(decision.id);
    let result = send_retrying(
        || destination.decide_hold(decision, signatures),
        || async {
            Ok(destination
                .hold(id)
                .await?
                .is_none_or(|h| h.state != HoldState::Held))
        },
    )
    .await?;
    let mut evidence = serde_json::json!({
        "step": "submit",
        "decision": decision.action.as_str(),
        "destination": target.destination.name,
        "origin": target.origin.name,
        "signed_by": signed_by,
        "operator": args.operator,
    });
    match result {
        Ok(at) => {
            evidence["tx_hash"] = hex0x(&at.tx_hash).into();
            evidence["block_number"] = at.block.number.into();
            store.hold_decided(id, &evidence, &args.operator).await?;
            writeln!(
                out,
                "{} {id} on {} with the signatures of {}: transaction {} in block {}; its next \
                 submission {}",
                if decision.action == HoldAction::Release {
                    "released"
                } else {
                    "rejected"
                },
                target.destination.name,
                signed_by.join(", "),
                hex0x(&at.tx_hash),
                at.block.number,
                if decision.action == HoldAction::Release {
                    "executes it"
                } else {
                    "ends it refused and its receipt returns it"
                }
            )?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            evidence["refused"] = e.to_string().into();
            store.hold_decided(id, &evidence, &args.operator).await?;
            writeln!(
                out,
                "refused: {} did not take the {}: {e}",
                target.destination.name,
                decision.action.as_str()
            )?;
            Ok(Outcome::Problems)
        }
    }
}

/// The signed decisions one member's endpoint answers with.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<SignedDecision>, String> {
    let response = http
        .get(url)
        .timeout(PEER_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!(
            "answered {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("unreadable answer: {e}"))?;
    if body.len() > 64 * 1024 {
        return Err(format!("answer of {} bytes, more than 64 KiB", body.len()));
    }
    serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;
    use isthmus_protocol::attestation::address_of;
    use k256::ecdsa::SigningKey;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_slice(&isthmus_protocol::keccak256(&[i])).unwrap()
    }

    fn handed(i: u8, digest: &[u8; 32]) -> SignedDecision {
        let k = key(i);
        SignedDecision {
            member: format!("bank-{i}"),
            signer: hex0x(&address_of(k.verifying_key())),
            digest: hex0x(digest),
            signature: hex0x(&Attestation::sign(&k, digest).unwrap().0),
            reason: "reviewed".into(),
        }
    }

    #[test]
    fn only_current_signers_over_this_digest_count_once_each() {
        let digest = [7u8; 32];
        let id = MessageId([1; 32]);
        let current: Vec<EvmAddress> = (0..3).map(|i| address_of(key(i).verifying_key())).collect();
        let ok = checked(
            &handed(1, &digest),
            id,
            HoldAction::Release,
            &digest,
            &current,
        )
        .unwrap();
        assert_eq!((ok.signer, ok.member.as_str()), (current[1], "bank-1"));
        // Another digest, a stranger, a signer that is not the one named, a bad
        // signature: each refused with why.
        let other = handed(1, &[8u8; 32]);
        assert!(checked(&other, id, HoldAction::Release, &digest, &current)
            .unwrap_err()
            .contains("another digest"));
        assert!(checked(
            &handed(5, &digest),
            id,
            HoldAction::Release,
            &digest,
            &current
        )
        .unwrap_err()
        .contains("not in the origin's current signer set"));
        let mut misnamed = handed(1, &digest);
        misnamed.signer = hex0x(&current[2]);
        assert!(
            checked(&misnamed, id, HoldAction::Release, &digest, &current)
                .unwrap_err()
                .contains("recovers to")
        );
        let mut short = handed(1, &digest);
        short.signature = "0x1234".into();
        assert!(checked(&short, id, HoldAction::Release, &digest, &current)
            .unwrap_err()
            .contains("65 bytes"));
        // One signature per signer, in the set's order.
        let records: Vec<HoldDecisionRecord> = [2u8, 0, 2]
            .iter()
            .map(|i| {
                checked(
                    &handed(*i, &digest),
                    id,
                    HoldAction::Release,
                    &digest,
                    &current,
                )
                .unwrap()
            })
            .collect();
        let quorum = quorum_of(&records, &current);
        assert_eq!(quorum.len(), 2);
        assert_eq!(quorum[0].0, records[1].signature);
        assert_eq!(quorum[1].0, records[0].signature);
    }
}
