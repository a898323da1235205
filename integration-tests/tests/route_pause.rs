//! A member pauses the route evm-a -> evm-b mid-burst (`isthmus route pause`): from
//! that block on, nothing of it is delivered, by any member, and no relayer spends
//! its messages' attempts. Two members sign the resume (`route sign-resume`) and a
//! third submits it (`route resume`): every message, sent before, during or after
//! the pause, is delivered exactly once, and every step is in the members'
//! hash-chained histories. The same on the pallet, for the route evm-a -> sub.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(180);

/// `isthmus route VERB --on ON --origin evm-a REST --config CONFIG` in a blocking
/// task, with its output (the arguments are copied before it starts).
fn route_on(
    on: &str,
    config: PathBuf,
    verb: &str,
    rest: &[&str],
) -> impl std::future::Future<Output = Output> {
    let args: Vec<String> = [verb, "--on", on, "--origin", "evm-a"]
        .iter()
        .chain(rest)
        .map(|a| a.to_string())
        .collect();
    async move {
        tokio::task::spawn_blocking(move || {
            Command::new(isthmus_bin())
                .arg("route")
                .args(&args)
                .arg("--config")
                .arg(&config)
                .env("USER", "route-test")
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

/// [`route_on`] evm-b.
fn route(config: PathBuf, verb: &str, rest: &[&str]) -> impl std::future::Future<Output = Output> {
    route_on("evm-b", config, verb, rest)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(step: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{step}: {}\n{}\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_pauses_a_route_mid_burst_and_a_quorum_resumes_it_losing_nothing() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "route_pause").await;
    for m in &mut consortium.members {
        m.start();
    }
    let dir = consortium.dir.path().to_owned();
    let config = |i: usize| consortium.members[i].config.clone();
    let wave = |n: usize| devnet.a.dispatch_burst(2, devnet.b.deployment.echo, n);
    let mut ids = Vec::new();

    // bank-2 pauses the route while a burst is being delivered.
    let (sent, paused) = tokio::join!(
        wave(60),
        route(
            config(2),
            "pause",
            &["--reason", "suspected fraud on the route"]
        )
    );
    ids.extend(sent);
    let text = ok("pause", &paused);
    assert!(
        text.contains("paused evm-a->evm-b on evm-b (epoch 0)"),
        "{text}"
    );
    assert_eq!(
        devnet.b.inbox().route_state(1).call().await.unwrap(),
        (true, 0)
    );
    let shown = ok("show", &route(config(0), "show", &[]).await);
    assert!(shown.contains("paused (epoch 0)"), "{shown}");

    // While paused, nothing more is delivered, whatever is sent and however long
    // the members try.
    let at_pause = devnet.b.delivered_count(&ids).await;
    ids.extend(wave(30).await);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(devnet.b.delivered_count(&ids).await, at_pause);
    assert!(at_pause < ids.len());
    for m in &consortium.members {
        let dead = m
            .count("SELECT count(*) FROM messages WHERE status = 'dead_letter'")
            .await;
        assert_eq!(dead, 0, "{} gave up on messages of a paused route", m.name);
    }

    // A pause of a paused route changes nothing; a resume needs a quorum.
    let again = route(config(0), "pause", &["--reason", "again"]).await;
    assert!(ok("second pause", &again).contains("paused already"));
    let sig0 = dir.join("resume-0.json").display().to_string();
    let sig1 = dir.join("resume-1.json").display().to_string();
    let (s0, s1) = tokio::join!(
        route(config(0), "sign-resume", &["--out", &sig0]),
        route(config(1), "sign-resume", &["--out", &sig1])
    );
    ok("sign-resume by bank-0", &s0);
    ok("sign-resume by bank-1", &s1);
    let reason = "cleared by compliance";
    let short = route(config(2), "resume", &["--reason", reason, &sig0]).await;
    assert!(!short.status.success());
    assert!(
        stdout(&short).contains(
            "1 signature(s) of the current set over the resume of epoch 0 count, 2 needed"
        ),
        "{}",
        stdout(&short)
    );
    assert_eq!(
        devnet.b.inbox().route_state(1).call().await.unwrap(),
        (true, 0)
    );

    // bank-2 submits the two signatures, mid-burst: the route resumes, and everything
    // that waited is delivered with what comes after, each message once.
    let (sent, resumed) = tokio::join!(
        wave(30),
        route(config(2), "resume", &["--reason", reason, &sig0, &sig1])
    );
    ids.extend(sent);
    let text = ok("resume", &resumed);
    assert!(text.contains("now epoch 1"), "{text}");
    assert_eq!(
        devnet.b.inbox().route_state(1).call().await.unwrap(),
        (false, 1)
    );
    // The spent signatures cannot resume again.
    let replay = route(config(2), "resume", &["--reason", "replay", &sig0, &sig1]).await;
    assert!(
        stdout(&replay).contains("is not paused"),
        "{}",
        stdout(&replay)
    );

    devnet
        .b
        .expect_delivered_once(&ids, DELIVERY, || consortium.logs())
        .await;

    // Every decision is in the members' hash-chained histories, with who and why
    // (what was refused before anything was sent, a short quorum or a pause of a
    // paused route, is no decision and is not recorded).
    for (i, expected) in [
        (0, vec![("resume_route", "sign")]),
        (1, vec![("resume_route", "sign")]),
        (
            2,
            vec![("pause_route", "submit"), ("resume_route", "submit")],
        ),
    ] {
        let pool = consortium.members[i].db().await;
        let actions: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT action, details->>'step', reason FROM operator_actions \
             WHERE action IN ('pause_route', 'resume_route') ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let kinds: Vec<(&str, &str)> = actions
            .iter()
            .map(|(a, s, _)| (a.as_str(), s.as_str()))
            .collect();
        assert_eq!(kinds, expected, "bank-{i}: {actions:?}");
        pool.close().await;
        let verified = consortium.members[i].isthmus(&["audit", "verify"]);
        assert!(verified.status.success(), "bank-{i}: {verified:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pallet_holds_a_paused_route_until_a_quorum_resumes_it() {
    let devnet = Devnet::start_with_substrate().await;
    let sub = devnet.sub.as_ref().unwrap();
    let mut consortium = Consortium::new(&devnet, "route_pause_sub").await;
    for m in &mut consortium.members {
        m.start();
    }
    let dir = consortium.dir.path().to_owned();
    let config = |i: usize| consortium.members[i].config.clone();
    let app = pallet_clearing_address();
    let evm_a = &devnet.a;
    let send = |n: u8| {
        let body = payment(n, SUB_BANK_A, SUB_BANK_B, u64::from(n));
        async move { evm_a.dispatch_raw(SUB_LEDGER, app, 0, &body).await }
    };
    let mut ids = vec![send(1).await];
    assert!(wait_until(DELIVERY, || async { sub.delivered_count(&ids).await == 1 }).await);

    // bank-1 pauses evm-a -> sub on the pallet; what is sent meanwhile waits.
    let paused = route_on(
        "sub",
        config(1),
        "pause",
        &["--reason", "reconciliation break"],
    )
    .await;
    let text = ok("pause", &paused);
    assert!(
        text.contains("paused evm-a->sub on sub (epoch 0)"),
        "{text}"
    );
    for n in 2..=4 {
        ids.push(send(n).await);
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(sub.delivered_count(&ids).await, 1);
    let shown = ok("show", &route_on("sub", config(2), "show", &[]).await);
    assert!(shown.contains("paused (epoch 0)"), "{shown}");

    // bank-0 and bank-2 sign the resume; bank-1 submits it; everything is processed
    // once.
    let sig0 = dir.join("resume-0.json").display().to_string();
    let sig2 = dir.join("resume-2.json").display().to_string();
    ok(
        "sign-resume by bank-0",
        &route_on("sub", config(0), "sign-resume", &["--out", &sig0]).await,
    );
    ok(
        "sign-resume by bank-2",
        &route_on("sub", config(2), "sign-resume", &["--out", &sig2]).await,
    );
    let resumed = route_on(
        "sub",
        config(1),
        "resume",
        &["--reason", "reconciled", &sig0, &sig2],
    )
    .await;
    assert!(ok("resume", &resumed).contains("now epoch 1"));
    let all = wait_until(DELIVERY, || async {
        sub.delivered_count(&ids).await == ids.len()
    })
    .await;
    assert!(
        all,
        "{} of {} processed\n{}",
        sub.delivered_count(&ids).await,
        ids.len(),
        consortium.logs()
    );
    let shown = ok("show", &route_on("sub", config(2), "show", &[]).await);
    assert!(shown.contains("open (epoch 1)"), "{shown}");
    for m in &consortium.members {
        let verified = m.isthmus(&["audit", "verify"]);
        assert!(verified.status.success(), "{}: {verified:?}", m.name);
    }
}
