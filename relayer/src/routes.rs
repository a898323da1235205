//! `isthmus route`: the consortium stops a route on its destination at once and
//! starts it again together.
//!
//! - `pause`, run by any one member of the origin's current signer set, signs the
//!   destination's pause digest with the member's attestation key and submits it
//!   with the member's submitter key: from that block on, the destination refuses
//!   every submission of the origin's checkpoints, whoever makes it.
//! - `sign-resume`, run by each member that agrees, signs the resume digest and
//!   writes a signature file; `resume` submits a quorum's signatures.
//!
//! Both digests name the route's epoch (the resumes so far), so a pause or a resume
//! signature is spent by the resume that ends its epoch. The files travel between
//! members like signer-set signatures: they hold no secret, and `resume` checks them
//! again. Every step is an operator action in the member's hash-chained history
//! (`pause_route`, `resume_route` with `details.step`), with the digest, the signer
//! and the transaction or the refusal. `show` prints the route's state.

use std::io::Write;

use isthmus_config::Settings;
use isthmus_protocol::{Attestation, RouteAction, RouteControl, RouteState};
use isthmus_schema::OperatorActionKind;

use crate::cli::{RouteDecisionArgs, RouteResumeArgs, RouteShowArgs, RouteSignResumeArgs};
use crate::commands::Outcome;
use crate::signers::{
    connect, counted, hex0x, read_json, send_retrying, sign_digest, write_json, SignatureFile,
    Target,
};
use crate::RelayerError;

/// What a resume signature file says it is.
pub const RESUME_SIGNATURE_KIND: &str = "isthmus route resume signature v1";

/// `open` or `paused`, with the epoch.
fn describe(state: &RouteState) -> String {
    format!(
        "{} (epoch {})",
        if state.paused { "paused" } else { "open" },
        state.epoch
    )
}

/// The route's state and the control that would change it, with its digest.
async fn next(target: &Target<'_>) -> Result<(RouteState, RouteControl, [u8; 32]), RelayerError> {
    let destination = &target.handle.destination;
    let state = destination.route_state(target.origin.id).await?;
    let control = state.next(target.origin.id);
    let digest = destination.route_control_digest(&control).await?;
    Ok((state, control, digest))
}

/// What the history keeps of a control.
fn details(target: &Target<'_>, control: &RouteControl, digest: &[u8; 32]) -> serde_json::Value {
    serde_json::json!({
        "destination": target.destination.name,
        "origin": target.origin.name,
        "action": control.action.as_str(),
        "epoch": control.epoch,
        "digest": hex0x(digest),
    })
}

/// `--reason` must say something: it is the record's why.
fn reason_given(reason: &str, what: &str) -> Result<(), RelayerError> {
    if reason.trim().is_empty() {
        return Err(RelayerError::Usage(format!(
            "--reason: say why the route {what} (it is recorded)"
        )));
    }
    Ok(())
}

/// This member's attestation key, if the origin's current set holds it; else `None`,
/// the refusal printed to `out`.
async fn member_key(
    settings: &Settings,
    target: &Target<'_>,
    out: &mut dyn Write,
) -> Result<Option<std::sync::Arc<dyn isthmus_keys::EcdsaKey>>, RelayerError> {
    let key = settings.member.key.open_secp256k1()?;
    let sets = target.sets().await?;
    if sets.current.signers().contains(&key.address()) {
        return Ok(Some(key));
    }
    writeln!(
        out,
        "refused: this member's attestation key {} is not in {}'s current set for {} ({}): \
         only a signer of the origin controls its route",
        hex0x(&key.address()),
        target.destination.name,
        target.origin.name,
        target.describe(&sets.current)
    )?;
    Ok(None)
}

/// Prints that the route is not paused (nothing to resume).
fn not_paused(
    target: &Target<'_>,
    state: &RouteState,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    writeln!(
        out,
        "refused: {} is not paused on {} ({}): there is nothing to resume",
        name(target),
        target.destination.name,
        describe(state)
    )?;
    Ok(Outcome::Problems)
}

/// `origin->destination`.
fn name(target: &Target<'_>) -> String {
    format!("{}->{}", target.origin.name, target.destination.name)
}

/// Submits `control` and records the step (`Ok` with the transaction or `Err` with
/// the destination's refusal, both recorded); returns the operator action's id.
async fn submit(
    target: &Target<'_>,
    args: &RouteDecisionArgs,
    control: &RouteControl,
    signatures: &[Attestation],
    mut recorded: serde_json::Value,
) -> Result<(Result<isthmus_protocol::DeliveryRef, String>, i64), RelayerError> {
    let destination = &target.handle.destination;
    let result = send_retrying(
        || destination.control_route(control, signatures),
        || async {
            let now = destination.route_state(control.origin).await?;
            Ok(now.epoch > control.epoch || now.paused == (control.action == RouteAction::Pause))
        },
    )
    .await?
    .map_err(|e| e.to_string());
    match &result {
        Ok(at) => {
            recorded["tx_hash"] = hex0x(&at.tx_hash).into();
            recorded["block_number"] = at.block.number.into();
        }
        Err(e) => recorded["refused"] = e.clone().into(),
    }
    recorded["step"] = "submit".into();
    recorded["signatures"] = signatures.len().into();
    let kind = match control.action {
        RouteAction::Pause => OperatorActionKind::PauseRoute,
        RouteAction::Resume => OperatorActionKind::ResumeRoute,
    };
    let action = target
        .record(&args.operator, kind, args.reason.clone(), recorded)
        .await?;
    Ok((result, action))
}

/// `isthmus route show --on DEST --origin ORIGIN`.
pub async fn show(
    settings: Settings,
    args: &RouteShowArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let a = &args.route;
    let target = connect(&settings, &a.config.config, &a.on, &a.origin).await?;
    let state = target
        .handle
        .destination
        .route_state(target.origin.id)
        .await?;
    writeln!(
        out,
        "{} on {}: {}",
        name(&target),
        target.destination.name,
        describe(&state)
    )?;
    Ok(Outcome::Success)
}

/// `isthmus route pause --on DEST --origin ORIGIN --reason WHY`.
pub async fn pause(
    settings: Settings,
    args: &RouteDecisionArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    reason_given(&args.reason, "is paused")?;
    let a = &args.route;
    let target = connect(&settings, &a.config.config, &a.on, &a.origin).await?;
    let (state, control, digest) = next(&target).await?;
    if state.paused {
        writeln!(
            out,
            "{} is paused already on {} ({}): nothing to do",
            name(&target),
            target.destination.name,
            describe(&state)
        )?;
        return Ok(Outcome::Success);
    }
    let Some(key) = member_key(&settings, &target, out).await? else {
        return Ok(Outcome::Problems);
    };
    let signature = sign_digest(&key, digest).await?;
    let mut recorded = details(&target, &control, &digest);
    recorded["signer"] = hex0x(&key.address()).into();
    let (result, action) = submit(&target, args, &control, &[signature], recorded).await?;
    match result {
        Ok(at) => {
            writeln!(
                out,
                "paused {} on {} (epoch {}): nothing of it is delivered until a quorum \
                 resumes it. Transaction {} in block {} (operator action #{action})",
                name(&target),
                target.destination.name,
                control.epoch,
                hex0x(&at.tx_hash),
                at.block.number
            )?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(
                out,
                "refused: {} did not take the pause: {e} (operator action #{action})",
                target.destination.name
            )?;
            Ok(Outcome::Problems)
        }
    }
}

/// `isthmus route sign-resume --on DEST --origin ORIGIN --out FILE`.
pub async fn sign_resume(
    settings: Settings,
    args: &RouteSignResumeArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let a = &args.route;
    let target = connect(&settings, &a.config.config, &a.on, &a.origin).await?;
    let (state, control, digest) = next(&target).await?;
    if !state.paused {
        return not_paused(&target, &state, out);
    }
    let Some(key) = member_key(&settings, &target, out).await? else {
        return Ok(Outcome::Problems);
    };
    let attestation = sign_digest(&key, digest).await?;
    let file = SignatureFile {
        kind: RESUME_SIGNATURE_KIND.into(),
        member: settings.member.name.clone(),
        signer: hex0x(&key.address()),
        digest: hex0x(&digest),
        signature: hex0x(&attestation.0),
    };
    write_json(&args.out, &file)?;
    let mut recorded = details(&target, &control, &digest);
    recorded["step"] = "sign".into();
    recorded["signer"] = file.signer.clone().into();
    let action = target
        .record(
            &args.operator,
            OperatorActionKind::ResumeRoute,
            format!("signed the resume of epoch {}", control.epoch),
            recorded,
        )
        .await?;
    writeln!(
        out,
        "signed the resume of {} on {} (epoch {}) as {} ({}); signature written to {} \
         (operator action #{action}); `isthmus route resume` submits a quorum's signatures",
        name(&target),
        target.destination.name,
        control.epoch,
        settings.member.name,
        file.signer,
        args.out.display()
    )?;
    Ok(Outcome::Success)
}

/// `isthmus route resume --on DEST --origin ORIGIN --reason WHY SIGNATURE...`.
pub async fn resume(
    settings: Settings,
    args: &RouteResumeArgs,
    out: &mut dyn Write,
) -> Result<Outcome, RelayerError> {
    let decision = &args.decision;
    reason_given(&decision.reason, "resumes")?;
    let files = args
        .signatures
        .iter()
        .map(|p| read_json::<SignatureFile>(p, "signature"))
        .collect::<Result<Vec<_>, _>>()?;
    let a = &decision.route;
    let target = connect(&settings, &a.config.config, &a.on, &a.origin).await?;
    let (state, control, digest) = next(&target).await?;
    if !state.paused {
        return not_paused(&target, &state, out);
    }
    let sets = target.sets().await?;
    let (signatures, refused) = counted(&files, RESUME_SIGNATURE_KIND, &digest, &sets.current);
    for why in &refused {
        writeln!(out, "not counted: {why}")?;
    }
    let needed = control.action.signatures_needed(sets.current.threshold());
    if signatures.len() < needed {
        writeln!(
            out,
            "refused: {} signature(s) of the current set over the resume of epoch {} count, \
             {needed} needed ({})",
            signatures.len(),
            control.epoch,
            target.describe(&sets.current)
        )?;
        return Ok(Outcome::Problems);
    }
    let recorded = details(&target, &control, &digest);
    let (result, action) = submit(&target, decision, &control, &signatures, recorded).await?;
    match result {
        Ok(at) => {
            writeln!(
                out,
                "resumed {} on {} with {} signatures (now epoch {}). Transaction {} in \
                 block {} (operator action #{action})",
                name(&target),
                target.destination.name,
                signatures.len(),
                control.epoch + 1,
                hex0x(&at.tx_hash),
                at.block.number
            )?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(
                out,
                "refused: {} did not take the resume: {e} (operator action #{action})",
                target.destination.name
            )?;
            Ok(Outcome::Problems)
        }
    }
}
