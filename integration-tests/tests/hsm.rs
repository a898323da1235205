//! A member whose attestation key and EVM submitter key live in a PKCS#11 token
//! (SoftHSM2): it attests and delivers like the others, and its keys never reach its
//! configuration, its logs or its database.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::Duration;

use ethers::providers::Middleware;
use ethers::types::BlockNumber;
use isthmus_integration_tests::*;
use isthmus_keys::softhsm::ThrowawayToken;

const DELIVERY: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_attestations_and_deliveries_in_its_hsm() {
    // bank-0's token: its attestation key and its submitter, imported in a key
    // ceremony (the contracts already trust the one, anvil funds the other).
    let token = ThrowawayToken::new("bank-0", "so-pin-0", "user-pin-0");
    let attestation = token.import_secp256k1("attestation", &member_secret(0));
    assert_eq!(ethers::types::Address::from(attestation), member_address(0));
    let submitter = token.import_secp256k1("submitter", &SUBMITTERS[0]);

    let devnet = Devnet::start().await;
    let mut consortium = Consortium::new(&devnet, "hsm").await;
    let member = &mut consortium.members[0];
    let dir = member.config.parent().unwrap().to_owned();
    let pkcs11 = |key: &str| {
        format!(
            "{{ pkcs11 = {{ module = \"{}\", token = \"bank-0\", key = \"{key}\", pin = {{ env = \"BANK0_HSM_PIN\" }} }} }}",
            token.module_path().display()
        )
    };
    let config = std::fs::read_to_string(&member.config)
        .unwrap()
        .replace(
            &format!(
                "key = {{ file = \"{}\" }}",
                dir.join("bank-0.key").display()
            ),
            &format!("key = {}", pkcs11("attestation")),
        )
        .replace(
            &format!(
                "submitter = {{ file = \"{}\" }}",
                dir.join("bank-0-submitter.key").display()
            ),
            &format!("submitter = {}", pkcs11("submitter")),
        );
    for file in ["bank-0.key", "bank-0-submitter.key"] {
        let path = dir.join(file).display().to_string();
        assert!(!config.contains(&path), "{config}");
    }
    std::fs::write(&member.config, &config).unwrap();
    // The keys are in the token only.
    std::fs::remove_file(dir.join("bank-0.key")).unwrap();
    std::fs::remove_file(dir.join("bank-0-submitter.key")).unwrap();
    member.env.extend([
        (
            "SOFTHSM2_CONF".to_owned(),
            token.conf_path().display().to_string(),
        ),
        ("BANK0_HSM_PIN".to_owned(), token.pin().to_owned()),
    ]);

    // `config validate` opens the token and checks the key is the member's signer.
    let output = std::process::Command::new(isthmus_bin())
        .args(["config", "validate", "--config"])
        .arg(&member.config)
        .envs(member.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");

    for m in &mut consortium.members {
        m.start();
    }
    let sent = || async {
        devnet
            .b
            .admin
            .get_transaction_count(
                ethers::types::Address::from(submitter),
                Some(BlockNumber::Latest.into()),
            )
            .await
            .unwrap()
    };
    let sent_before = sent().await;
    // Nine messages: members take turns by nonce, so bank-0 submits some of them.
    let mut ids = Vec::new();
    for i in 0..9u8 {
        ids.push(
            devnet
                .a
                .dispatch(2, devnet.b.deployment.echo, 0, &[b'h', i])
                .await,
        );
    }
    assert!(
        wait_until(DELIVERY, || devnet.b.all_delivered(&ids)).await,
        "{}",
        consortium.logs()
    );
    let sent_after = sent().await;
    assert!(
        sent_after > sent_before,
        "bank-0's token signed no delivery ({sent_before} -> {sent_after})\n{}",
        consortium.logs()
    );
    // Its attestations count: bank-0's signature is in the quorum of its own deliveries.
    let own = consortium.members[0]
        .count("SELECT count(*) FROM attestations WHERE member = 'bank-0' AND outcome = 'accepted'")
        .await;
    assert!(own >= 1, "{}", consortium.logs());

    let log = std::fs::read_to_string(&consortium.members[0].log).unwrap();
    assert!(
        log.contains("pkcs11 token `bank-0` key `attestation`"),
        "the log names the key source: {log}"
    );
    assert!(!log.contains(token.pin()), "the PIN reached the log");
    for secret in [member_secret(0), SUBMITTERS[0]] {
        assert!(!log.contains(&hex::encode(secret)), "a key reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_delivers_to_substrate_with_an_ecdsa_account_in_its_hsm() {
    use isthmus_keys::EcdsaKey;
    // bank-0's Substrate submitter: a secp256k1 key generated inside the token. Its
    // account is the blake2-256 of the compressed public key (MultiSignature::Ecdsa).
    let token = ThrowawayToken::new("bank-0-sub", "so-pin-0", "user-pin-0");
    token.generate_secp256k1("sub-submitter");
    let key = isthmus_keys::pkcs11::Pkcs11Key::open(&token.spec("sub-submitter")).unwrap();
    let account = isthmus_adapter_substrate::ecdsa_account(&key.public_key());

    let devnet = Devnet::start_with_substrate().await;
    let sub = devnet.sub.as_ref().unwrap();
    const FUNDS: u128 = 1_000_000_000_000_000;
    isthmus_adapter_substrate::devnet::fund_from_alice(&sub.client, account, FUNDS)
        .await
        .unwrap();
    let mut consortium = Consortium::new(&devnet, "hsm_sub").await;
    let member = &mut consortium.members[0];
    let dir = member.config.parent().unwrap().to_owned();
    let seed_file = dir.join("bank-0-sub-submitter.key");
    let config = std::fs::read_to_string(&member.config).unwrap().replace(
        &format!("submitter = {{ file = \"{}\" }}", seed_file.display()),
        &format!(
            "submitter = {{ pkcs11 = {{ module = \"{}\", token = \"bank-0-sub\", key = \"sub-submitter\", pin = {{ env = \"BANK0_HSM_PIN\" }} }} }}",
            token.module_path().display()
        ),
    );
    assert!(
        !config.contains(&seed_file.display().to_string()),
        "{config}"
    );
    std::fs::write(&member.config, &config).unwrap();
    std::fs::remove_file(&seed_file).unwrap();
    member.env.extend([
        (
            "SOFTHSM2_CONF".to_owned(),
            token.conf_path().display().to_string(),
        ),
        ("BANK0_HSM_PIN".to_owned(), token.pin().to_owned()),
    ]);
    for m in &mut consortium.members {
        m.start();
    }
    // Six payments evm-a -> sub: members take turns by nonce, so bank-0 submits some.
    let app = isthmus_protocol::keccak256(b"isthmus clearing app");
    let mut ids = Vec::new();
    for i in 0..6u8 {
        ids.push(
            devnet
                .a
                .dispatch_raw(
                    SUB_LEDGER,
                    app,
                    0,
                    &payment(10 + i, SUB_BANK_A, SUB_BANK_B, 5),
                )
                .await,
        );
    }
    assert!(
        wait_until(DELIVERY, || async {
            sub.delivered_count(&ids).await == ids.len()
        })
        .await,
        "{}",
        consortium.logs()
    );
    // bank-0's ECDSA account paid fees: it signed deliveries through the token.
    let submitter = isthmus_adapter_substrate::Destination::with_key(
        sub.client.clone(),
        isthmus_adapter_substrate::SubmitKey::Ecdsa(std::sync::Arc::new(key)),
    );
    assert_eq!(submitter.account(), account);
    let left = submitter.free_balance().await.unwrap();
    assert!(
        left < FUNDS,
        "bank-0's ECDSA account paid no fee ({left})\n{}",
        consortium.logs()
    );
    assert_eq!(sub.clearing_balance(SUB_BANK_B).await, 1_000_000 + 30);
}
