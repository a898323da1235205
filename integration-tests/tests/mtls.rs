//! Mutual TLS between members: the attestation endpoint answers members only, bounds
//! what each may ask, answers repeated requests from its cache, and a flood from
//! outside the consortium costs it no light-client work, bounded memory and no
//! deliveries.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::{Duration, Instant};

use ethers::providers::Middleware;
use ethers::types::BlockNumber;
use isthmus_integration_tests::*;

const DELIVERY: Duration = Duration::from_secs(150);

/// The resident memory of the member listening on `port`, in KiB.
fn member_rss_kib(port: u16) -> u64 {
    pid_listening_on(port)
        .and_then(rss_kib)
        .expect("the member runs")
}

/// The sum of every series of `name` whose labels contain `labels`.
fn total(exposition: &str, name: &str, labels: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attestation_endpoint_serves_members_only_and_bounds_a_flood() {
    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "mtls").await;
    // bank-1 allows each member one request per second, three at once.
    consortium.members[1].env.extend([
        ("ISTHMUS_ATTESTATION__RATE_PER_S".to_owned(), "1".to_owned()),
        ("ISTHMUS_ATTESTATION__BURST".to_owned(), "3".to_owned()),
    ]);
    for m in &mut consortium.members {
        m.start();
    }
    // The whole path runs over mutual TLS.
    let first = vec![
        devnet
            .a
            .dispatch(2, devnet.b.deployment.echo, 0, b"over mutual TLS")
            .await,
    ];
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&first)).await,
        "{}",
        consortium.logs()
    );

    // A real request: evm-a's outbox at its finalized block.
    let block = devnet
        .a
        .admin
        .get_block(BlockNumber::Finalized)
        .await
        .unwrap()
        .unwrap();
    let request = serde_json::json!({
        "network": isthmus_adapter_evm::devnet::NETWORK.to_string(),
        "origin": 1,
        "block_number": block.number.unwrap().as_u64(),
        "block_hash": format!("{:?}", block.hash.unwrap()),
    });
    let bank0 = &consortium.members[0];
    let url = format!("https://127.0.0.1:{}/v1/attest", bank0.attest_port);

    // No client certificate: refused at the handshake.
    let anonymous = consortium.tls_client(None);
    let err = anonymous.post(&url).json(&request).send().await;
    assert!(err.is_err(), "answered without a certificate: {err:?}");

    // A certificate for a member's name, issued by another CA: refused at the handshake.
    let other = consortium.dir.path().join("other-ca");
    isthmus_relayer::devnet::DevnetCa::new("another CA")
        .and_then(|ca| ca.write(&other, &["bank-2".to_owned()]))
        .unwrap();
    let mut pem = std::fs::read(other.join("bank-2.pem")).unwrap();
    pem.extend(std::fs::read(other.join("bank-2.key")).unwrap());
    let impostor = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(consortium.tls_dir().join("ca.pem")).unwrap(),
            )
            .unwrap(),
        )
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let err = impostor.post(&url).json(&request).send().await;
    assert!(err.is_err(), "answered another CA's certificate: {err:?}");

    // The consortium CA's certificate for a name no member has: 403.
    let stranger = consortium.tls_client(Some(STRANGER));
    let answer = stranger.post(&url).json(&request).send().await.unwrap();
    assert_eq!(answer.status(), 403);

    // A member: signed, then the same request again from the cache.
    let member = consortium.tls_client(Some("bank-2"));
    let attest = || async {
        member
            .post(&url)
            .json(&request)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let signed = attest().await;
    assert_eq!(signed["member"], "bank-0");
    let before = bank0.metrics().await;
    let again = attest().await;
    assert_eq!(again, signed, "the same checkpoint, the same signature");
    let after = bank0.metrics().await;
    let cached = |m: &str| {
        total(
            m,
            "isthmus_attestation_requests_total",
            "member=\"bank-2\",outcome=\"cached\"",
        )
    };
    assert!(cached(&after) >= cached(&before) + 1.0, "{after}");

    // A member asking for another network's signature (a staging relayer given a
    // production member's address): refused before anything is verified, and not
    // served from the cache either.
    let mut staging = request.clone();
    staging["network"] = isthmus_protocol::Network::named("isthmus staging")
        .to_string()
        .into();
    let answer = member.post(&url).json(&staging).send().await.unwrap();
    assert_eq!(answer.status(), 422);
    let reason = answer.text().await.unwrap();
    assert!(
        reason.contains(&format!(
            "this member signs for network {}",
            isthmus_adapter_evm::devnet::NETWORK
        )),
        "{reason}"
    );

    // A body above the limit: 413, before any JSON is read.
    let huge = format!("{{\"origin\":1,\"pad\":\"{}\"}}", "x".repeat(8 * 1024));
    let answer = member
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);

    // bank-1's limit: three at once, then 429.
    let bank1 = format!(
        "https://127.0.0.1:{}/v1/attest",
        consortium.members[1].attest_port
    );
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            member
                .post(&bank1)
                .json(&request)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() <= 4,
        "{statuses:?}"
    );

    let refused = bank0.metrics().await;
    for (reason, at_least) in [
        ("no_certificate", 1.0),
        ("bad_certificate", 1.0),
        ("not_member", 1.0),
        ("too_large", 1.0),
    ] {
        let n = total(
            &refused,
            "isthmus_attestation_refused_total",
            &format!("reason=\"{reason}\""),
        );
        assert!(n >= at_least, "{reason}: {n}\n{refused}");
    }
    let limited = total(
        &consortium.members[1].metrics().await,
        "isthmus_attestation_refused_total",
        "reason=\"rate_limited\"",
    );
    assert!(limited >= 1.0);

    // A flood from outside the consortium: 2,000 requests with a stranger's
    // certificate and 1,000 connections without one, 32 at a time, while messages
    // are sent. The member does no light-client work for any of them.
    let signed_before = total(
        &bank0.metrics().await,
        "isthmus_attestation_requests_total",
        "outcome=\"signed\"",
    );
    let rss_before = member_rss_kib(bank0.port);
    let flood_started = Instant::now();
    let during: Vec<[u8; 32]> = {
        let mut ids = Vec::new();
        for i in 0..4u8 {
            ids.push(
                devnet
                    .a
                    .dispatch(2, devnet.b.deployment.echo, 0, &[b'f', i])
                    .await,
            );
        }
        ids
    };
    let flood = {
        let stranger = stranger.clone();
        let url = url.clone();
        let request = request.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            futures::stream::iter(0..3000u32)
                .map(|i| {
                    let stranger = stranger.clone();
                    let url = url.clone();
                    let request = request.clone();
                    async move {
                        if i % 3 == 2 {
                            // A fresh client: a new connection without a certificate.
                            // Bounded like the other clients: a request without an
                            // answer is not served either, and must not hang the test.
                            let bare = reqwest::Client::builder()
                                .use_rustls_tls()
                                .danger_accept_invalid_certs(true)
                                .timeout(Duration::from_secs(10))
                                .build()
                                .unwrap();
                            bare.post(&url).json(&request).send().await.is_err()
                        } else {
                            stranger
                                .post(&url)
                                .json(&request)
                                .send()
                                .await
                                .is_ok_and(|r| r.status() == 403)
                        }
                    }
                })
                .buffer_unordered(32)
                .filter(|refused| futures::future::ready(*refused))
                .count()
                .await
        })
    };
    let mut rss_peak = rss_before;
    while !flood.is_finished() {
        rss_peak = rss_peak.max(member_rss_kib(bank0.port));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = flood.await.unwrap();
    let flood_seconds = flood_started.elapsed().as_secs_f64();
    assert_eq!(refused, 3000, "every flood request is refused");
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&during)).await,
        "{}",
        consortium.logs()
    );
    let delivered_after = flood_started.elapsed().as_secs_f64();
    let metrics = bank0.metrics().await;
    let signed_after = total(
        &metrics,
        "isthmus_attestation_requests_total",
        "outcome=\"signed\"",
    );
    // The members' own requests for the four messages' checkpoints are all the
    // signing bank-0 did: a handful, not thousands.
    assert!(
        signed_after - signed_before <= 16.0,
        "{signed_before} -> {signed_after}"
    );
    let growth_mib = (rss_peak.saturating_sub(rss_before)) as f64 / 1024.0;
    eprintln!(
        "flood: 3000 refused in {flood_seconds:.1} s; bank-0 RSS {:.1} MiB before, peak {:.1} MiB (+{growth_mib:.1}); \
         4 messages sent during the flood delivered {delivered_after:.1} s after it began",
        rss_before as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
    );
    assert!(growth_mib < 64.0, "bank-0 grew {growth_mib:.1} MiB");
    for reason in ["not_member", "no_certificate"] {
        assert!(
            total(
                &metrics,
                "isthmus_attestation_refused_total",
                &format!("reason=\"{reason}\"")
            ) >= 1000.0,
            "{reason}\n{metrics}"
        );
    }
}
