//! The typed settings that validation produces: every field parsed, defaults applied,
//! route endpoints resolved to ledger ids, no secret in `Debug`.
#![expect(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Jail;
use isthmus_config::{
    Config, EvmAddress, EvmFinality, KeySource, LedgerKind, LedgerKindSettings, LogFormat,
    Settings, DEFAULT_ATTEST_BURST, DEFAULT_ATTEST_RATE, DEFAULT_BATCH_SIZE, DEFAULT_IN_FLIGHT,
    DEFAULT_POLL_INTERVAL_MS, DEFAULT_POOL_SIZE, DEFAULT_TAKEOVER_S,
};

/// anvil account 3: its address is the consortium signer of `bank-a` below.
const MEMBER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const MEMBER_ADDRESS: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
/// anvil account 0.
const EVM_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Two EVM ledgers (one with every optional key, one with none) and a Substrate
/// ledger; routes with and without their optional keys; non-default sections.
const FULL: &str = r#"
[database]
url = "postgres://isthmus:db-password-xyz@127.0.0.1:5432/isthmus"
pool_size = 7

[member]
name = "bank-a"
key = { env = "TEST_MEMBER_KEY" }

[[ledgers]]
name = "alpha"
id = 10
kind = "evm"
rpc = ["http://127.0.0.1:8545", "http://127.0.0.1:8546"]
chain_id = 1337
outbox = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
inbox = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
finality = "finalized-tag"
confirmations = 3
poll_interval_ms = 250
submitter = { file = "evm.key" }

[[ledgers]]
name = "gamma"
id = 30
kind = "evm"
rpc = ["https://gamma.example"]
chain_id = 31338
outbox = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
inbox = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
finality = "finalized-tag"
submitter = { env = "TEST_EVM_KEY" }

[[ledgers]]
name = "beta"
id = 20
kind = "substrate"
rpc = ["ws://127.0.0.1:9944"]
finality = "grandpa"
justifications = "rpc"
anchor = { block = "0x1111111111111111111111111111111111111111111111111111111111111111", number = 5, set_id = 2, authorities = ["0x2222222222222222222222222222222222222222222222222222222222222222"] }
pallet = "Isthmus"
submitter = { env = "TEST_SUB_SEED" }

[[routes]]
source = "alpha"
destination = "beta"

[[routes]]
source = "beta"
destination = "alpha"
batch_size = 8
in_flight = 2

[[routes]]
source = "gamma"
destination = "alpha"
in_flight = 6

[[routes]]
source = "alpha"
destination = "gamma"
enabled = false

[consortium]
network = "0xe9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664"
threshold = 2
takeover_s = 45

[[consortium.members]]
name = "bank-a"
signer = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
attestation_url = "https://127.0.0.1:7201"

[[consortium.members]]
name = "bank-b"
signer = "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65"
attestation_url = "https://bank-b.example:7102"

[[consortium.members]]
name = "bank-c"
signer = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
attestation_url = "https://127.0.0.1:7203"

[http]
listen = "127.0.0.1:7101"

[attestation]
listen = "127.0.0.1:7201"
certificate = "tls/bank-a.pem"
key = { file = "tls/bank-a.key" }
ca = "tls/ca.pem"

[log]
format = "json"
level = "info,isthmus=debug"
"#;

fn address(text: &str) -> EvmAddress {
    text.parse()
        .unwrap_or_else(|e| panic!("`{text}` is an address: {e}"))
}

/// Copies the devnet's TLS files (config/examples/tls) into the jail's `tls/`, where
/// the `[attestation]` table of the test configurations points.
fn tls_files(jail: &mut Jail) -> figment::Result<()> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tls");
    jail.create_dir("tls")?;
    for name in ["ca.pem", "bank-a.pem", "bank-a.key"] {
        let text = std::fs::read_to_string(examples.join(name)).map_err(|e| e.to_string())?;
        jail.create_file(format!("tls/{name}"), &text)?;
    }
    Ok(())
}

/// Validates `toml` (written to `isthmus.toml` beside the key file) and returns the
/// settings, panicking with the problems if there are any.
fn settings_of(jail: &mut Jail, toml: &str) -> figment::Result<Settings> {
    jail.set_env("TEST_MEMBER_KEY", MEMBER_KEY);
    jail.set_env("TEST_EVM_KEY", EVM_KEY);
    jail.set_env("TEST_SUB_SEED", "//Alice");
    jail.create_file("evm.key", EVM_KEY)?;
    tls_files(jail)?;
    jail.create_file("isthmus.toml", toml)?;
    let config = Config::load(Path::new("isthmus.toml")).map_err(|e| e.to_string())?;
    Ok(config.validate().unwrap_or_else(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        panic!("unexpected problems:\n{}", text.join("\n"))
    }))
}

#[test]
fn sections_are_parsed_into_settings() {
    Jail::expect_with(|jail| {
        let s = settings_of(jail, FULL)?;
        assert_eq!(
            s.database.url.expose(),
            "postgres://isthmus:db-password-xyz@127.0.0.1:5432/isthmus"
        );
        assert_eq!(s.database.pool_size, 7);

        assert_eq!(s.member.name, "bank-a");
        assert_eq!(s.member.key, KeySource::Env("TEST_MEMBER_KEY".into()));
        assert_eq!(s.member.signer, address(MEMBER_ADDRESS));

        assert_eq!(s.consortium.threshold, 2);
        assert_eq!(s.consortium.takeover, Duration::from_secs(45));
        let members: Vec<(&str, String, &str)> = s
            .consortium
            .members
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.signer.to_string(),
                    m.attestation_url.as_str(),
                )
            })
            .collect();
        assert_eq!(
            members,
            vec![
                (
                    "bank-a",
                    MEMBER_ADDRESS.to_owned(),
                    "https://127.0.0.1:7201"
                ),
                (
                    "bank-b",
                    // Written in lowercase, held as bytes, shown checksummed.
                    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65".to_owned(),
                    "https://bank-b.example:7102"
                ),
                (
                    "bank-c",
                    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc".to_owned(),
                    "https://127.0.0.1:7203"
                ),
            ]
        );
        assert_eq!(
            s.consortium
                .member_by_signer(&s.member.signer)
                .map(|m| m.name.as_str()),
            Some("bank-a")
        );
        assert_eq!(
            s.consortium.member("bank-c").map(|m| m.signer),
            Some(address("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"))
        );

        assert_eq!(
            s.http.listen,
            "127.0.0.1:7101"
                .parse::<SocketAddr>()
                .map_err(|e| e.to_string())?
        );
        assert_eq!(s.log.format, Some(LogFormat::Json));
        assert_eq!(s.log.level, "info,isthmus=debug");
        Ok(())
    });
}

#[test]
fn ledgers_are_an_enum_per_kind() {
    Jail::expect_with(|jail| {
        let s = settings_of(jail, FULL)?;
        let names: Vec<(&str, u32, LedgerKind)> = s
            .ledgers
            .iter()
            .map(|l| (l.name.as_str(), l.id, l.ledger_kind()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("alpha", 10, LedgerKind::Evm),
                ("gamma", 30, LedgerKind::Evm),
                ("beta", 20, LedgerKind::Substrate),
            ]
        );

        let alpha = &s.ledgers[0];
        assert_eq!(
            alpha.rpc,
            ["http://127.0.0.1:8545", "http://127.0.0.1:8546"]
        );
        assert_eq!(alpha.poll_interval, Duration::from_millis(250));
        assert!(matches!(&alpha.submitter, KeySource::File(_)));
        let LedgerKindSettings::Evm(evm) = &alpha.kind else {
            panic!("alpha is evm: {alpha:?}")
        };
        assert_eq!(evm.chain_id, 1337);
        assert_eq!(
            evm.outbox,
            address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
        );
        assert_eq!(
            evm.inbox,
            address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
        );
        assert_eq!(evm.finality, EvmFinality::FinalizedTag);
        assert_eq!(evm.finality.to_string(), "finalized-tag");
        assert_eq!(evm.confirmations, 3);
        assert!(alpha.substrate().is_none());

        // Defaults.
        let gamma = s.ledger("gamma").ok_or("gamma is defined")?;
        assert_eq!(
            gamma.poll_interval,
            Duration::from_millis(DEFAULT_POLL_INTERVAL_MS)
        );
        assert_eq!(gamma.submitter, KeySource::Env("TEST_EVM_KEY".into()));
        let evm = gamma.evm().ok_or("gamma is evm")?;
        assert_eq!(evm.chain_id, 31338);
        assert_eq!(evm.confirmations, 0);

        let beta = s.ledger_by_id(20).ok_or("ledger 20 is defined")?;
        assert_eq!(beta.name, "beta");
        assert_eq!(beta.rpc, ["ws://127.0.0.1:9944"]);
        assert_eq!(beta.submitter, KeySource::Env("TEST_SUB_SEED".into()));
        let substrate = beta.substrate().ok_or("beta is substrate")?;
        assert_eq!((substrate.anchor.number, substrate.anchor.set_id), (5, 2));
        assert_eq!(substrate.anchor.block, [0x11; 32]);
        assert_eq!(substrate.anchor.authorities, [([0x22; 32], 1)]);
        assert_eq!(substrate.pallet(), "Isthmus");
        assert!(beta.evm().is_none());

        assert!(s.ledger("delta").is_none());
        assert!(s.ledger_by_id(40).is_none());
        Ok(())
    });
}

#[test]
fn routes_are_resolved_to_ledger_ids_with_defaults() {
    Jail::expect_with(|jail| {
        let s = settings_of(jail, FULL)?;
        let routes: Vec<(u32, u32, &str, &str, u32, u32, bool)> = s
            .routes
            .iter()
            .map(|r| {
                (
                    r.source,
                    r.destination,
                    r.source_name.as_str(),
                    r.destination_name.as_str(),
                    r.batch_size,
                    r.in_flight,
                    r.enabled,
                )
            })
            .collect();
        assert_eq!(
            routes,
            vec![
                (
                    10,
                    20,
                    "alpha",
                    "beta",
                    DEFAULT_BATCH_SIZE,
                    DEFAULT_IN_FLIGHT,
                    true
                ),
                (20, 10, "beta", "alpha", 8, 2, true),
                (30, 10, "gamma", "alpha", DEFAULT_BATCH_SIZE, 6, true),
                (
                    10,
                    30,
                    "alpha",
                    "gamma",
                    DEFAULT_BATCH_SIZE,
                    DEFAULT_IN_FLIGHT,
                    false
                ),
            ]
        );
        assert_eq!(s.route(20, 10).map(|r| r.batch_size), Some(8));
        assert_eq!(s.route(10, 30).map(|r| r.enabled), Some(false));
        assert!(s.route(30, 20).is_none());
        assert_eq!(s.enabled_routes().count(), 3);
        let from_alpha: Vec<u32> = s.routes_from(10).map(|r| r.destination).collect();
        assert_eq!(
            from_alpha,
            vec![20],
            "the disabled alpha -> gamma is left out"
        );
        let into_alpha: Vec<u32> = s.routes_into(10).map(|r| r.source).collect();
        assert_eq!(into_alpha, vec![20, 30]);
        assert_eq!(s.in_flight_towards(10), Some(6));
        assert_eq!(s.in_flight_towards(20), Some(DEFAULT_IN_FLIGHT));
        assert_eq!(
            s.in_flight_towards(30),
            None,
            "only a disabled route goes there"
        );
        Ok(())
    });
}

#[test]
fn absent_sections_and_keys_get_their_defaults() {
    let minimal = FULL
        .replace("pool_size = 7\n", "")
        .replace("takeover_s = 45\n", "")
        .replace("[http]\nlisten = \"127.0.0.1:7101\"\n", "")
        .replace(
            "[log]\nformat = \"json\"\nlevel = \"info,isthmus=debug\"\n",
            "",
        );
    Jail::expect_with(|jail| {
        let s = settings_of(jail, &minimal)?;
        assert_eq!(s.database.pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(
            s.consortium.takeover,
            Duration::from_secs(DEFAULT_TAKEOVER_S)
        );
        assert_eq!(s.http.listen, isthmus_config::DEFAULT_LISTEN);
        assert_eq!(s.log.format, None);
        assert_eq!(s.log.level, isthmus_config::DEFAULT_LOG_LEVEL);
        Ok(())
    });
}

#[test]
fn settings_debug_shows_no_secret() {
    Jail::expect_with(|jail| {
        let s = settings_of(jail, FULL)?;
        let debug = format!("{s:?}");
        assert!(!debug.contains("db-password-xyz"), "{debug}");
        assert!(
            debug.contains("postgres://isthmus:[redacted]@127.0.0.1:5432/isthmus"),
            "{debug}"
        );
        assert!(!debug.contains(&MEMBER_KEY[2..]), "{debug}");
        assert!(!debug.contains(EVM_KEY), "{debug}");
        assert!(!debug.contains("//Alice"), "{debug}");
        // Every member is identified by its name unless it says otherwise; the
        // attestation endpoint gets the defaults for its limits.
        assert!(s.consortium.members.iter().all(|m| m.tls_name == m.name));
        assert_eq!(s.attestation.listen.to_string(), "127.0.0.1:7201");
        assert_eq!(s.attestation.tls.certificate, Path::new("tls/bank-a.pem"));
        assert_eq!(s.attestation.tls.ca, Path::new("tls/ca.pem"));
        assert_eq!(
            (s.attestation.rate_per_s, s.attestation.burst),
            (DEFAULT_ATTEST_RATE, DEFAULT_ATTEST_BURST)
        );
        Ok(())
    });
}

#[test]
fn a_config_with_problems_yields_no_settings() {
    Jail::expect_with(|jail| {
        jail.set_env("TEST_MEMBER_KEY", MEMBER_KEY);
        jail.set_env("TEST_EVM_KEY", EVM_KEY);
        jail.set_env("TEST_SUB_SEED", "//Alice");
        jail.create_file("evm.key", EVM_KEY)?;
        tls_files(jail)?;
        jail.create_file(
            "isthmus.toml",
            &FULL.replace("number = 5, set_id = 2", "set_id = 2"),
        )?;
        let config = Config::load(Path::new("isthmus.toml")).map_err(|e| e.to_string())?;
        let problems = config
            .validate()
            .expect_err("an anchor without its number is refused");
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].key, "ledgers[2].anchor.number");
        Ok(())
    });
}
