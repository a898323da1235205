//! A member rotates its attestation key in the middle of a burst of messages, by the
//! consortium's procedure (`isthmus signers propose`, `sign` by a quorum of the
//! current set, `submit`): every message is delivered exactly once, every step is in
//! the members' histories, and once the overlap is over a signature by the old key
//! is refused on-chain and by the relayers, which record the refusal.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use ethers::types::Address;
use isthmus_adapter_evm::contracts::inbox::{Checkpoint as CheckpointArg, InboxErrors};
use isthmus_integration_tests::*;
use isthmus_protocol::Attestation;
use k256::ecdsa::SigningKey;

const DELIVERY: Duration = Duration::from_secs(180);
/// How long the replaced set stays valid: long enough to check it counts, short
/// enough to see it stop counting.
const OVERLAP_S: u64 = 30;

fn new_secret() -> [u8; 32] {
    isthmus_protocol::keccak256(b"isthmus test signer 0, rotated")
}

fn address(secret: &[u8; 32]) -> Address {
    let key = SigningKey::from_bytes(secret.into()).unwrap();
    Address::from(isthmus_protocol::attestation::address_of(
        key.verifying_key(),
    ))
}

/// `isthmus signers ARGS --config CONFIG` in a blocking task, with its output.
async fn signers(config: PathBuf, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(isthmus_bin())
            .arg("signers")
            .args(&args)
            .arg("--config")
            .arg(&config)
            .env("USER", "rotation-test")
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn ok(step: &str, out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{step}: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The latest checkpoint of evm-a that `member` recorded.
async fn latest_checkpoint(member: &Member) -> CheckpointArg {
    let pool = member.db().await;
    let row: (i64, Vec<u8>, Vec<u8>, i64, i64, Vec<u8>) = sqlx::query_as(
        "SELECT origin, outbox, root, count, block_number, block_hash FROM checkpoints \
         WHERE origin = 1 ORDER BY block_number DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    CheckpointArg {
        origin: u32::try_from(row.0).unwrap(),
        outbox: row.1.try_into().unwrap(),
        root: row.2.try_into().unwrap(),
        count: u32::try_from(row.3).unwrap(),
        block_number: u64::try_from(row.4).unwrap(),
        block_hash: row.5.try_into().unwrap(),
    }
}

/// Submits `checkpoint` to evm-b's Inbox with no message, signed by `secrets`: the
/// Inbox checks the quorum and nothing else. The Inbox's refusal, if any.
async fn quorum_check(
    devnet: &Devnet,
    checkpoint: &CheckpointArg,
    secrets: &[[u8; 32]],
) -> Option<String> {
    let inbox = devnet.b.inbox();
    let digest = inbox
        .checkpoint_digest(checkpoint.clone())
        .call()
        .await
        .unwrap();
    let signatures = secrets
        .iter()
        .map(|s| {
            let key = SigningKey::from_bytes(s.into()).unwrap();
            ethers::types::Bytes::from(Attestation::sign(&key, &digest).unwrap().0.to_vec())
        })
        .collect();
    match inbox
        .process_batch(checkpoint.clone(), signatures, vec![], vec![])
        .send()
        .await
    {
        Ok(pending) => {
            pending.await.unwrap().unwrap();
            None
        }
        Err(e) => Some(
            e.as_revert()
                .and_then(|data| <InboxErrors as ethers::abi::AbiDecode>::decode(data).ok())
                .map_or_else(|| e.to_string(), |d| format!("{d:?}")),
        ),
    }
}

/// bank-0's key rotation: its old and new signer, the new key's file, where the
/// proposal goes.
struct Rotation {
    dir: PathBuf,
    old: Address,
    new: Address,
    new_key: PathBuf,
    proposal: PathBuf,
}

impl Rotation {
    /// Starts the members and writes bank-0's new key next to their files.
    fn start(consortium: &mut Consortium) -> Self {
        for m in &mut consortium.members {
            m.start();
        }
        let dir = consortium.dir.path().to_owned();
        let new_key = dir.join("bank-0-rotated.key");
        std::fs::write(&new_key, hex::encode(new_secret())).unwrap();
        Self {
            old: member_address(0),
            new: address(&new_secret()),
            new_key,
            proposal: dir.join("proposal.json"),
            dir,
        }
    }
}

/// Rewrites `member`'s configuration to sign with the key in `key_file`, whose
/// address is `to` (its own `[[consortium.members]]` entry said `from`), and
/// restarts it.
fn switch_key(member: &mut Member, key_file: &Path, from: Address, to: Address) {
    member.stop();
    let config = std::fs::read_to_string(&member.config).unwrap();
    let dir = member.config.parent().unwrap().to_owned();
    let current = ["bank-0.key", "bank-0-rotated.key"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| config.contains(&p.display().to_string()))
        .unwrap();
    let config = config
        .replace(
            &current.display().to_string(),
            &key_file.display().to_string(),
        )
        .replace(
            &format!("signer = \"{from:?}\""),
            &format!("signer = \"{to:?}\""),
        );
    std::fs::write(&member.config, config).unwrap();
    member.start();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_rotates_its_key_mid_burst_and_every_message_is_delivered_once() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "rotation").await;
    let Rotation {
        dir,
        old,
        new,
        new_key,
        proposal,
    } = Rotation::start(&mut consortium);
    let old_key = dir.join("bank-0.key");
    let config = |i: usize| consortium.members[i].config.clone();
    let mut ids = Vec::new();
    let wave = |n: usize| devnet.a.dispatch_burst(2, devnet.b.deployment.echo, n);

    // bank-0 proposes replacing its key on evm-b, while messages flow.
    let (sent, proposed) = tokio::join!(
        wave(40),
        signers(
            config(0),
            vec![
                "propose".into(),
                "--on".into(),
                "evm-b".into(),
                "--origin".into(),
                "evm-a".into(),
                "--replace".into(),
                format!("{old:?}={new:?}"),
                "--overlap".into(),
                format!("{OVERLAP_S}s"),
                "--reason".into(),
                "yearly key rotation".into(),
                "--out".into(),
                proposal.display().to_string(),
            ],
        )
    );
    ids.extend(sent);
    let text = ok("propose", &proposed);
    assert!(text.contains("version 1"), "{text}");

    // bank-0 and bank-1 sign it (a quorum of the current set); bank-2's signature
    // is not needed.
    let sign = |i: usize| {
        let out = dir.join(format!("signature-{i}.json"));
        let args = vec![
            "sign".into(),
            proposal.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        (out, signers(config(i), args))
    };
    let (sig0, signing0) = sign(0);
    let (sig1, signing1) = sign(1);
    let (sent, s0, s1) = tokio::join!(wave(40), signing0, signing1);
    ids.extend(sent);
    ok("sign by bank-0", &s0);
    ok("sign by bank-1", &s1);

    // One signature is not a quorum: refused before anything is sent, and recorded
    // only as what it is (no submission).
    let short = signers(
        config(2),
        vec![
            "submit".into(),
            proposal.display().to_string(),
            sig0.display().to_string(),
        ],
    )
    .await;
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stdout)
            .contains("1 signature(s) of the current set count, 2 needed"),
        "{}",
        String::from_utf8_lossy(&short.stdout)
    );

    // A checkpoint of evm-a the members attested, for checking quorums on-chain.
    let attested = wait_until(DELIVERY, || async {
        consortium.members[1]
            .count("SELECT count(*) FROM checkpoints WHERE origin = 1")
            .await
            > 0
    })
    .await;
    assert!(
        attested,
        "no checkpoint of evm-a recorded\n{}",
        consortium.logs()
    );
    let checkpoint = latest_checkpoint(&consortium.members[1]).await;

    // bank-2 submits the update with the two signatures, mid-burst.
    let (sent, submitted) = tokio::join!(
        wave(40),
        signers(
            config(2),
            vec![
                "submit".into(),
                proposal.display().to_string(),
                sig0.display().to_string(),
                sig1.display().to_string(),
            ],
        )
    );
    ids.extend(sent);
    ok("submit", &submitted);
    let (version, signers_now, _, previous, _, until) =
        devnet.b.inbox().signer_sets(1).call().await.unwrap();
    assert_eq!(version, 1);
    assert_eq!(signers_now, vec![new, member_address(1), member_address(2)]);
    assert_eq!(previous, vec![old, member_address(1), member_address(2)]);
    // The same proposal cannot be applied twice.
    let again = signers(
        config(2),
        vec![
            "submit".into(),
            proposal.display().to_string(),
            sig0.display().to_string(),
            sig1.display().to_string(),
        ],
    )
    .await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("at version 1"));

    // During the overlap, the old key with bank-1 is still a quorum on-chain, and
    // so is the new key with bank-1; the old and the new key of bank-0 are not.
    assert!(
        devnet.b.chain_time().await < until,
        "the overlap ended before it was checked"
    );
    assert_eq!(
        quorum_check(&devnet, &checkpoint, &[member_secret(0), member_secret(1)]).await,
        None
    );
    assert_eq!(
        quorum_check(&devnet, &checkpoint, &[new_secret(), member_secret(1)]).await,
        None
    );
    let mixed = quorum_check(&devnet, &checkpoint, &[member_secret(0), new_secret()]).await;
    assert!(
        mixed
            .as_deref()
            .is_some_and(|r| r.contains("QuorumNotReached")),
        "{mixed:?}"
    );

    // bank-0 switches to its new key (a restart), while messages flow; the other
    // members' configurations still name its old key.
    let (sent, ()) = tokio::join!(wave(40), async {
        switch_key(&mut consortium.members[0], &new_key, old, new);
    });
    ids.extend(sent);
    ids.extend(wave(40).await);
    // Once the others have read the new set again, bank-0's new key counts for them.
    tokio::time::sleep(isthmus_relayer::pipeline::signer_sets::REFRESH + Duration::from_secs(1))
        .await;
    ids.extend(wave(40).await);

    devnet
        .b
        .expect_delivered_once(&ids, DELIVERY, || consortium.logs())
        .await;
    // bank-0's new key took part in deliveries once the others read the new set.
    let new_hex = format!("{new:?}").trim_start_matches("0x").to_owned();
    for m in &consortium.members[1..] {
        let counted = m
            .count(&format!(
                "SELECT count(*) FROM attestations WHERE outcome = 'accepted' \
                 AND signer = decode('{new_hex}', 'hex')"
            ))
            .await;
        assert!(counted > 0, "{} never accepted bank-0's new key", m.name);
    }

    // Every step is in the members' hash-chained histories.
    for (i, expected) in [
        (0, vec!["signer_set_propose", "signer_set_sign"]),
        (1, vec!["signer_set_sign"]),
        (2, vec!["signer_set_submit"]),
    ] {
        let pool = consortium.members[i].db().await;
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM operator_actions WHERE action LIKE 'signer_set_%' ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(actions, expected, "bank-{i}");
        let logged: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM lifecycle_log WHERE event = 'operator' \
             AND evidence->>'action' LIKE 'signer_set_%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(logged, expected.len() as i64, "bank-{i}");
        pool.close().await;
        let verified = consortium.members[i].isthmus(&["audit", "verify"]);
        assert!(verified.status.success(), "bank-{i}: {verified:?}");
    }

    // After the overlap: the old key no longer counts on-chain...
    assert!(
        wait_until(Duration::from_secs(OVERLAP_S + 30), || async {
            devnet.b.chain_time().await > until
        })
        .await
    );
    let refusal = quorum_check(&devnet, &checkpoint, &[member_secret(0), member_secret(1)]).await;
    assert!(
        refusal
            .as_deref()
            .is_some_and(|r| r.contains("QuorumNotReached")),
        "{refusal:?}"
    );
    assert_eq!(
        quorum_check(&devnet, &checkpoint, &[new_secret(), member_secret(1)]).await,
        None
    );

    // ...nor for the relayers: bank-0 back on its old key (a botched roll-back) is
    // refused by the others and by itself, each recording why, and delivery goes on.
    switch_key(&mut consortium.members[0], &old_key, new, old);
    let late = wave(12).await;
    assert!(wait_until(DELIVERY, || devnet.b.all_delivered(&late)).await);
    let old_hex = format!("{old:?}").trim_start_matches("0x").to_owned();
    for m in &consortium.members {
        let sql = format!(
            "SELECT count(*) FROM attestations WHERE outcome = 'refused' \
             AND signer = decode('{old_hex}', 'hex') AND reason LIKE '%version 1%'"
        );
        let recorded = wait_until(Duration::from_secs(60), || async {
            m.count(&sql).await > 0
        })
        .await;
        assert!(
            recorded,
            "{} recorded no refusal of the old key\n{}",
            m.name,
            m.log_tail()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pallet_takes_a_rotation_signed_by_a_quorum_and_delivery_goes_on() {
    let devnet = Devnet::start_with_substrate().await;
    let sub = devnet.sub.as_ref().unwrap();
    let mut consortium = Consortium::new(&devnet, "rotation_sub").await;
    let Rotation {
        dir,
        old,
        new,
        new_key,
        proposal,
    } = Rotation::start(&mut consortium);
    let config = |i: usize| consortium.members[i].config.clone();
    let app = pallet_clearing_address();
    let pay = |n: u8| payment(n, SUB_BANK_A, SUB_BANK_B, u64::from(n));
    let mut ids = vec![devnet.a.dispatch_raw(SUB_LEDGER, app, 0, &pay(1)).await];

    let proposed = signers(
        config(1),
        vec![
            "propose".into(),
            "--on".into(),
            "sub".into(),
            "--origin".into(),
            "evm-a".into(),
            "--replace".into(),
            format!("{old:?}={new:?}"),
            "--overlap".into(),
            "1h".into(),
            "--reason".into(),
            "bank-0 key rotation".into(),
            "--out".into(),
            proposal.display().to_string(),
        ],
    )
    .await;
    ok("propose on the pallet", &proposed);
    let mut files = Vec::new();
    for i in [0, 2] {
        let out = dir.join(format!("signature-{i}.json"));
        let signed = signers(
            config(i),
            vec![
                "sign".into(),
                proposal.display().to_string(),
                "--out".into(),
                out.display().to_string(),
            ],
        )
        .await;
        ok("sign for the pallet", &signed);
        files.push(out.display().to_string());
    }
    ids.push(devnet.a.dispatch_raw(SUB_LEDGER, app, 0, &pay(2)).await);
    // A proposal altered after signing (another overlap) is refused by its digest.
    let mut altered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proposal).unwrap()).unwrap();
    altered["overlap_s"] = 7.into();
    let altered_path = dir.join("altered.json");
    std::fs::write(&altered_path, altered.to_string()).unwrap();
    let mut args = vec!["submit".into(), altered_path.display().to_string()];
    args.extend(files.clone());
    let refused = signers(config(1), args).await;
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stdout);
    assert!(text.contains("is not the one sub computes"), "{text}");

    let mut args = vec!["submit".into(), proposal.display().to_string()];
    args.extend(files);
    ok("submit to the pallet", &signers(config(1), args).await);
    let shown = ok(
        "show",
        &signers(
            config(2),
            vec![
                "show".into(),
                "--on".into(),
                "sub".into(),
                "--origin".into(),
                "evm-a".into(),
            ],
        )
        .await,
    );
    let hex = |a: Address| format!("{a:?}");
    assert!(
        shown.contains(&format!(
            "version 1: 2 of [{}, {} (bank-1), {} (bank-2)]",
            hex(new),
            hex(member_address(1)),
            hex(member_address(2))
        )) && shown.contains("version 0 (replaced; accepted for"),
        "{shown}"
    );

    // bank-0 switches to its new key; payments keep arriving.
    switch_key(&mut consortium.members[0], &new_key, old, new);
    for n in 3..6 {
        ids.push(devnet.a.dispatch_raw(SUB_LEDGER, app, 0, &pay(n)).await);
    }
    let all = wait_until(DELIVERY, || async {
        sub.delivered_count(&ids).await == ids.len()
    })
    .await;
    assert!(
        all,
        "{} of {} delivered\n{}",
        sub.delivered_count(&ids).await,
        ids.len(),
        consortium.logs()
    );
    assert_eq!(
        sub.clearing_balance(SUB_BANK_B).await,
        1_000_000 + (1..6).sum::<u128>()
    );
    let pool = consortium.members[1].db().await;
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM operator_actions WHERE action LIKE 'signer_set_%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(actions, vec!["signer_set_propose", "signer_set_submit"]);
    pool.close().await;
}
