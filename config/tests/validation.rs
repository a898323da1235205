//! Every validation rule, parse errors, environment overrides and redaction.
//!
//! Each test runs inside `figment::Jail`, which serializes tests that touch the
//! process environment and gives each a fresh working directory.
#![expect(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error"
)]

use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Jail};
use isthmus_config::{
    Config, ConfigError, ConsensusStep, EvmFinality, KeySource, LedgerKindSettings, Problem,
    SealProtocol, Settings, DEFAULT_BFT_EPOCH,
};

/// anvil account 3: its address is the consortium signer of `bank-a` below.
const MEMBER_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const MEMBER_ADDRESS: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
/// anvil account 0.
const EVM_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

const BASE: &str = r#"
[database]
url = "postgres://isthmus:db-password-xyz@127.0.0.1:5432/isthmus"

[member]
name = "bank-a"
key = { env = "TEST_MEMBER_KEY" }

[[ledgers]]
name = "alpha"
id = 10
kind = "evm"
rpc = ["http://127.0.0.1:8545", "http://127.0.0.1:8546"]
chain_id = 1337
outbox = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
inbox = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
finality = "finalized-tag"
submitter = { env = "TEST_EVM_KEY" }

[[ledgers]]
name = "beta"
id = 20
kind = "substrate"
rpc = ["ws://127.0.0.1:9944"]
finality = "grandpa"
submitter = { env = "TEST_SUB_SEED" }
justifications = "rpc"
anchor = { block = "0x1111111111111111111111111111111111111111111111111111111111111111", number = 5, set_id = 2, authorities = ["0x2222222222222222222222222222222222222222222222222222222222222222", "0x3333333333333333333333333333333333333333333333333333333333333333"] }

[[routes]]
source = "alpha"
destination = "beta"

[[routes]]
source = "beta"
destination = "alpha"
batch_size = 8

[consortium]
network = "0xe9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664"
threshold = 2

[[consortium.members]]
name = "bank-a"
signer = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
attestation_url = "https://127.0.0.1:7201"

[[consortium.members]]
name = "bank-b"
signer = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
attestation_url = "https://bank-b.example:7102"

[[consortium.members]]
name = "bank-c"
signer = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
attestation_url = "https://127.0.0.1:7203"

[attestation]
listen = "127.0.0.1:7201"
certificate = "tls/bank-a.pem"
key = { file = "tls/bank-a.key" }
ca = "tls/ca.pem"
"#;

fn set_keys(jail: &mut Jail) {
    jail.set_env("TEST_MEMBER_KEY", MEMBER_KEY);
    jail.set_env("TEST_EVM_KEY", EVM_KEY);
    jail.set_env("TEST_SUB_SEED", "//Alice");
}

/// Copies the devnet's TLS files (config/examples/tls) into the jail's `tls/`, where
/// the `[attestation]` table of the test configurations points.
fn tls_files(jail: &mut Jail) -> figment::Result<()> {
    tls_files_in(jail, "tls")
}

/// [`tls_files`] into `dir`, relative to the jail.
fn tls_files_in(jail: &mut Jail, dir: &str) -> figment::Result<()> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tls");
    std::fs::create_dir_all(jail.directory().join(dir)).map_err(|e| e.to_string())?;
    for name in [
        "ca.pem",
        "bank-a.pem",
        "bank-a.key",
        "bank-b.pem",
        "bank-b.key",
    ] {
        let text = std::fs::read_to_string(examples.join(name)).map_err(|e| e.to_string())?;
        jail.create_file(format!("{dir}/{name}"), &text)?;
    }
    Ok(())
}

/// Writes `toml` as `isthmus.toml` in the jail and loads it.
fn load(jail: &mut Jail, toml: &str) -> figment::Result<Config> {
    tls_files(jail)?;
    jail.create_file("isthmus.toml", toml)?;
    Config::load(Path::new("isthmus.toml")).map_err(|e| e.to_string().into())
}

/// Loads `toml` with all key variables set and returns its validation problems.
fn problems(toml: &str) -> Vec<Problem> {
    let mut found = Vec::new();
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, toml)?;
        found = config.validate().err().unwrap_or_default();
        Ok(())
    });
    found
}

/// Validates `config`, panicking with the problems if there are any.
fn valid(config: &Config) -> Settings {
    config.validate().unwrap_or_else(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        panic!("unexpected problems:\n{}", text.join("\n"))
    })
}

fn find<'a>(problems: &'a [Problem], key: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.key == key)
        .unwrap_or_else(|| panic!("no problem for `{key}` among {problems:#?}"))
}

#[test]
fn base_config_is_valid_and_has_defaults() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, BASE)?;
        valid(&config);
        assert!(config.warnings().is_empty());
        assert_eq!(config.database.pool_size, isthmus_config::DEFAULT_POOL_SIZE);
        assert_eq!(config.http.listen, isthmus_config::DEFAULT_LISTEN);
        assert_eq!(config.log.level, "info");
        assert_eq!(config.log.format, None);
        assert_eq!(
            config.routes[0].batch_size(),
            isthmus_config::DEFAULT_BATCH_SIZE
        );
        assert_eq!(config.routes[1].batch_size(), 8);
        assert_eq!(
            config.routes[0].in_flight(),
            isthmus_config::DEFAULT_IN_FLIGHT
        );
        assert!(config.routes[0].enabled);
        assert_eq!(config.ledgers[1].pallet_name(), "Isthmus");
        assert_eq!(config.source_file(), Some(Path::new("isthmus.toml")));
        Ok(())
    });
}

#[test]
fn problems_name_key_file_and_fix() {
    let toml = BASE.replace("destination = \"beta\"", "destination = \"gamma\"");
    let found = problems(&toml);
    assert_eq!(found.len(), 1, "{found:#?}");
    let p = &found[0];
    assert_eq!(p.key, "routes[0].destination");
    assert_eq!(p.location, "isthmus.toml");
    assert_eq!(p.message, "route names ledger `gamma` which is not defined");
    assert_eq!(
        p.fix,
        "define it under [[ledgers]] or use one of: alpha, beta"
    );
    assert_eq!(
        p.to_string(),
        "routes[0].destination (isthmus.toml): route names ledger `gamma` which is not defined\n  \
         fix: define it under [[ledgers]] or use one of: alpha, beta"
    );
}

#[test]
fn ledger_names_and_ids_must_be_unique() {
    let toml = BASE.replace("name = \"beta\"\nid = 20", "name = \"alpha\"\nid = 10");
    let found = problems(&toml);
    assert!(find(&found, "ledgers[1].name")
        .message
        .contains("already used by ledgers[0]"));
    assert!(find(&found, "ledgers[1].id")
        .message
        .contains("ledger id 10 is already used"));
}

#[test]
fn routes_must_join_two_defined_distinct_ledgers_once() {
    let toml = format!(
        "{BASE}\n[[routes]]\nsource = \"alpha\"\ndestination = \"alpha\"\n\
         [[routes]]\nsource = \"alpha\"\ndestination = \"beta\"\nbatch_size = 0\nin_flight = 33\n\
         [[routes]]\nsource = \"nowhere\"\ndestination = \"beta\"\n"
    );
    let found = problems(&toml);
    assert!(find(&found, "routes[2].destination")
        .message
        .contains("to itself"));
    assert!(find(&found, "routes[3]")
        .message
        .contains("already defined by routes[0]"));
    assert!(find(&found, "routes[3].batch_size")
        .fix
        .contains("between 1 and 1000"));
    assert_eq!(
        find(&found, "routes[3].in_flight").message,
        "in_flight 33 is outside 1..=32"
    );
    assert!(find(&found, "routes[4].source")
        .fix
        .ends_with("use one of: alpha, beta"));
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn max_message_gas_is_for_evm_destinations_and_above_a_transactions_base_cost() {
    // routes[0] goes to the Substrate ledger, routes[1] to the EVM one.
    let toml = BASE
        .replace(
            "destination = \"beta\"\n",
            "destination = \"beta\"\nmax_message_gas = 1000000\n",
        )
        .replace("batch_size = 8", "batch_size = 8\nmax_message_gas = 100");
    let found = problems(&toml);
    assert!(
        find(&found, "routes[0].max_message_gas")
            .fix
            .contains("weight it declares"),
        "{found:#?}"
    );
    assert_eq!(
        find(&found, "routes[1].max_message_gas").message,
        "max_message_gas 100 is below 21000, less than any delivery needs"
    );
    assert_eq!(found.len(), 2, "{found:#?}");

    let toml = BASE.replace(
        "batch_size = 8",
        "batch_size = 8\nmax_message_gas = 2000000",
    );
    Jail::expect_with(|jail| {
        set_keys(jail);
        let settings = valid(&load(jail, &toml)?);
        assert_eq!(settings.routes[0].max_message_gas, None);
        assert_eq!(settings.routes[1].max_message_gas, Some(2_000_000));
        Ok(())
    });
}

#[test]
fn threshold_must_be_within_member_count() {
    let zero = problems(&BASE.replace("threshold = 2", "threshold = 0"));
    assert!(find(&zero, "consortium.threshold")
        .message
        .contains("outside 1..=3"));
    let high = problems(&BASE.replace("threshold = 2", "threshold = 4"));
    assert_eq!(
        find(&high, "consortium.threshold").fix,
        "set threshold between 1 and 3; a majority is 2"
    );
}

#[test]
fn takeover_must_be_positive_and_bounded() {
    let zero = problems(&BASE.replace("threshold = 2", "threshold = 2\ntakeover_s = 0"));
    assert_eq!(
        find(&zero, "consortium.takeover_s").message,
        "takeover_s 0 is outside 1..=3600"
    );
    assert_eq!(zero.len(), 1, "{zero:#?}");
    assert!(problems(&BASE.replace("threshold = 2", "threshold = 2\ntakeover_s = 90")).is_empty());
}

#[test]
fn the_network_id_is_32_bytes_and_never_zero() {
    const DEVNET: &str =
        "network = \"0xe9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664\"";
    let short = problems(&BASE.replace(DEVNET, "network = \"0xe978\""));
    let p = find(&short, "consortium.network");
    assert_eq!(p.message, "network id `0xe978` is not 32 bytes of hex");
    assert!(p.fix.contains("64 hex digits"), "{p}");
    assert_eq!(short.len(), 1, "{short:#?}");
    let zero = problems(&BASE.replace(DEVNET, &format!("network = \"0x{}\"", "0".repeat(64))));
    assert_eq!(
        find(&zero, "consortium.network").message,
        "network id is all zero"
    );
    assert_eq!(zero.len(), 1, "{zero:#?}");
    // Missing: a parse error that names the key.
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.create_file("isthmus.toml", &BASE.replace(&format!("{DEVNET}\n"), ""))?;
        let err = Config::load(Path::new("isthmus.toml")).expect_err("no network");
        let ConfigError::Parse(found) = err else {
            panic!("expected a parse error, got {err}")
        };
        assert!(
            found
                .iter()
                .any(|p| p.key == "consortium.network" && p.fix.contains("add `network`")),
            "{found:#?}"
        );
        Ok(())
    });
}

#[test]
fn payment_apps_are_each_ledgers_own_kind_of_address_listed_once() {
    const EVM_APP: &str = "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9";
    let sub_app = format!("0x{}", "ab".repeat(32));
    let with = |evm: &str, sub: &str| {
        BASE.replace(
            "finality = \"finalized-tag\"\n",
            &format!("finality = \"finalized-tag\"\npayment_apps = [{evm}]\n"),
        )
        .replace(
            "justifications = \"rpc\"\n",
            &format!("justifications = \"rpc\"\npayment_apps = [{sub}]\n"),
        )
    };
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(
            jail,
            &with(&format!("\"{EVM_APP}\""), &format!("\"{sub_app}\"")),
        )?;
        let settings = valid(&config);
        let mut padded = [0u8; 32];
        padded[12..].copy_from_slice(&hex::decode(&EVM_APP[2..]).expect("hex"));
        assert_eq!(settings.ledgers[0].payment_apps, [padded]);
        assert_eq!(settings.ledgers[1].payment_apps, [[0xab; 32]]);
        let none = valid(&load(jail, BASE)?);
        assert!(none.ledgers.iter().all(|l| l.payment_apps.is_empty()));
        Ok(())
    });
    // Each ledger's own kind: a Substrate account id on the EVM ledger, an EVM
    // address on the Substrate ledger.
    let swapped = problems(&with(&format!("\"{sub_app}\""), &format!("\"{EVM_APP}\"")));
    let p = find(&swapped, "ledgers[0].payment_apps[0]");
    assert!(p.message.starts_with("payment app `0xabab"), "{p}");
    assert!(p.fix.contains("40 hex digits"), "{p}");
    let p = find(&swapped, "ledgers[1].payment_apps[0]");
    assert!(p.message.contains("is not a 32-byte account id"), "{p}");
    assert!(p.fix.contains("64 hex digits"), "{p}");
    assert_eq!(swapped.len(), 2, "{swapped:#?}");
    let twice = problems(&with(
        &format!("\"{EVM_APP}\", \"{}\"", EVM_APP.to_lowercase()),
        &format!("\"{sub_app}\""),
    ));
    assert!(
        find(&twice, "ledgers[0].payment_apps[1]")
            .message
            .contains("is listed twice"),
        "{twice:#?}"
    );
    assert_eq!(twice.len(), 1, "{twice:#?}");
}

#[test]
fn minority_threshold_is_only_a_warning() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, &BASE.replace("threshold = 2", "threshold = 1"))?;
        valid(&config);
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert_eq!(warnings[0].key, "consortium.threshold");
        assert!(warnings[0].message.contains("minority"));
        Ok(())
    });
}

#[test]
fn member_must_be_in_the_consortium() {
    let found = problems(&BASE.replace("name = \"bank-a\"\nkey", "name = \"bank-z\"\nkey"));
    let p = find(&found, "member.name");
    assert!(
        p.message
            .contains("`bank-z` is not in [consortium].members"),
        "{p}"
    );
    assert!(p.fix.ends_with("use one of: bank-a, bank-b, bank-c"), "{p}");
}

#[test]
fn member_names_and_signers_must_be_unique_and_well_formed() {
    let toml = BASE
        .replace("name = \"bank-c\"", "name = \"bank-b\"")
        .replace(
            "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
            "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
        )
        .replace(
            "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65\"\nattestation_url = \"https",
            "0x15D34AAf54267DB7D7c367839AAf71A00a2C6A65\"\nattestation_url = \"https",
        );
    let found = problems(&toml);
    assert!(find(&found, "consortium.members[2].name")
        .message
        .contains("already used"));
    let checksum = find(&found, "consortium.members[1].signer");
    assert!(checksum.message.contains("EIP-55"), "{checksum}");
    assert!(
        checksum
            .message
            .contains("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
        "{checksum}"
    );
    // members[2]'s lowercase address equals members[1]'s once members[1] is fixed; here
    // members[1] is invalid, so the duplicate is not double-reported.
    assert_eq!(found.len(), 2, "{found:#?}");

    let dup = BASE.replace(
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    );
    let found = problems(&dup);
    assert!(find(&found, "consortium.members[2].signer")
        .message
        .contains("already the signer of `bank-b`"));

    let short = problems(&BASE.replace("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "0x9965"));
    assert!(find(&short, "consortium.members[2].signer")
        .message
        .contains("expected 40"));
}

#[test]
fn urls_are_checked() {
    let toml = BASE
        .replace(
            "\"http://127.0.0.1:8546\"",
            "\"ftp://127.0.0.1\", \"not a url\"",
        )
        .replace("https://127.0.0.1:7203", "ws://127.0.0.1:7203")
        .replace("rpc = [\"ws://127.0.0.1:9944\"]", "rpc = []");
    let found = problems(&toml);
    assert!(find(&found, "ledgers[0].rpc[1]")
        .message
        .contains("scheme `ftp`"));
    assert!(find(&found, "ledgers[0].rpc[2]")
        .message
        .contains("not a valid URL"));
    // Each kind has its transport: HTTP for EVM nodes, WebSocket for Substrate ones.
    let swapped = problems(
        &BASE
            .replace("\"http://127.0.0.1:8546\"", "\"ws://127.0.0.1:8546\"")
            .replace("\"ws://127.0.0.1:9944\"", "\"http://127.0.0.1:9944\""),
    );
    assert!(find(&swapped, "ledgers[0].rpc[1]")
        .fix
        .contains("http://, https://"));
    assert!(find(&swapped, "ledgers[1].rpc[0]")
        .fix
        .contains("ws://, wss://"));
    assert_eq!(swapped.len(), 2, "{swapped:#?}");
    assert!(find(&found, "consortium.members[2].attestation_url")
        .fix
        .contains("one of: https://"));
    assert!(find(&found, "ledgers[1].rpc")
        .message
        .contains("no RPC URL"));
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn finality_must_suit_the_ledger_kind() {
    let toml = BASE
        .replace("finality = \"finalized-tag\"", "finality = \"grandpa\"")
        .replace(
            "finality = \"grandpa\"\nsubmitter = { env = \"TEST_SUB_SEED\" }",
            "finality = \"clique\"\nsubmitter = { env = \"TEST_SUB_SEED\" }",
        );
    let found = problems(&toml);
    assert_eq!(
        find(&found, "ledgers[0].finality").fix,
        "use one of: qbft, ibft2, ibft, clique, finalized-tag \
         (a consortium chain's protocol, or finalized-tag for a development chain)"
    );
    assert_eq!(
        find(&found, "ledgers[1].finality").fix,
        "use one of: grandpa"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn kind_specific_fields_are_required_and_exclusive() {
    let toml = BASE
        .replace("chain_id = 1337\n", "pallet = \"Isthmus\"\n")
        .replace(
            "inbox = \"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512\"\n",
            "",
        )
        .replace(
            "finality = \"grandpa\"",
            "finality = \"grandpa\"\nchain_id = 9\nconfirmations = 2",
        );
    let found = problems(&toml);
    assert!(find(&found, "ledgers[0].chain_id")
        .message
        .contains("has no chain_id"));
    assert!(find(&found, "ledgers[0].inbox")
        .message
        .contains("no inbox address"));
    assert!(find(&found, "ledgers[0].pallet")
        .fix
        .contains("remove `pallet`"));
    assert!(find(&found, "ledgers[1].chain_id")
        .message
        .contains("applies to evm ledgers"));
    assert!(find(&found, "ledgers[1].confirmations")
        .message
        .contains("applies to evm ledgers"));
    assert_eq!(found.len(), 5, "{found:#?}");
}

#[test]
fn inline_keys_are_rejected_without_being_kept() {
    let toml = BASE.replace(
        "key = { env = \"TEST_MEMBER_KEY\" }",
        &format!("key = \"{MEMBER_KEY}\""),
    );
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, &toml)?;
        assert_eq!(config.member.key, KeySource::Inline);
        let found = config.validate().expect_err("inline key is a problem");
        let p = find(&found, "member.key");
        assert!(p.fix.contains("key = { env = \"VAR\" }"), "{p}");
        assert!(p.fix.contains("key = { file = \"path\" }"), "{p}");
        let everything = format!("{found:?} {config:?}");
        assert!(
            !everything.contains(&MEMBER_KEY[2..]),
            "the key leaked: {everything}"
        );
        Ok(())
    });
}

#[test]
fn key_env_vars_must_be_set() {
    Jail::expect_with(|jail| {
        jail.set_env("TEST_MEMBER_KEY", MEMBER_KEY);
        let config = load(jail, BASE)?;
        let found = config
            .validate()
            .expect_err("submitter variables are unset");
        assert_eq!(
            find(&found, "ledgers[0].submitter").fix,
            "export TEST_EVM_KEY with the key, or point the key source at a file"
        );
        assert!(find(&found, "ledgers[1].submitter")
            .message
            .contains("`TEST_SUB_SEED`"));
        assert_eq!(found.len(), 2, "{found:#?}");
        Ok(())
    });
}

#[test]
fn key_files_are_read_relative_to_the_config_and_checked() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        std::fs::create_dir("conf").map_err(|e| e.to_string())?;
        tls_files_in(jail, "conf/tls")?;
        jail.create_file("conf/member.key", &format!("{MEMBER_KEY}\n"))?;
        jail.create_file(
            "conf/bad.key",
            "0xnothex-nothex-nothex-nothex-nothex-nothex-nothex-nothex-nothex12",
        )?;
        jail.create_file("conf/short.key", "abcd")?;
        jail.create_file("conf/zero.key", &"0".repeat(64))?;
        let toml = BASE.replace(
            "key = { env = \"TEST_MEMBER_KEY\" }",
            "key = { file = \"member.key\" }",
        );
        jail.create_file("conf/isthmus.toml", &toml)?;
        let config = Config::load(Path::new("conf/isthmus.toml")).map_err(|e| e.to_string())?;
        valid(&config);

        for (file, expect) in [
            ("bad.key", "not hex digits"),
            ("short.key", "found 4 hex digits, expected 64"),
            ("zero.key", "not a valid secp256k1 secret key"),
            ("absent.key", "cannot read key file"),
        ] {
            let toml = BASE.replace(
                "key = { env = \"TEST_MEMBER_KEY\" }",
                &format!("key = {{ file = \"{file}\" }}"),
            );
            jail.create_file("conf/isthmus.toml", &toml)?;
            let config = Config::load(Path::new("conf/isthmus.toml")).map_err(|e| e.to_string())?;
            let found = config.validate().expect_err("bad key file");
            let p = find(&found, "member.key");
            assert!(p.message.contains(expect), "{file}: {p}");
            assert!(p.message.contains(file), "{file}: {p}");
        }
        Ok(())
    });
}

#[test]
fn member_key_must_match_its_consortium_signer() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.set_env("TEST_MEMBER_KEY", EVM_KEY);
        let config = load(jail, BASE)?;
        let found = config.validate().expect_err("wrong key for bank-a");
        let p = find(&found, "member.key");
        assert!(
            p.message
                .contains("signs as 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            "{p}"
        );
        assert!(p.message.contains(MEMBER_ADDRESS), "{p}");
        assert!(!p.to_string().contains(EVM_KEY), "{p}");
        Ok(())
    });
}

#[test]
fn substrate_submitter_secret_is_checked() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.set_env("TEST_SUB_SEED", "0x1234");
        let config = load(jail, BASE)?;
        let found = config.validate().expect_err("bad seed");
        let p = find(&found, "ledgers[1].submitter");
        assert!(p.message.contains("32-byte hex seed"), "{p}");
        assert!(p.fix.contains("sr25519"), "{p}");
        Ok(())
    });
}

#[test]
fn database_log_and_interval_values_are_checked() {
    let toml =
        BASE.replace(
            "postgres://isthmus:db-password-xyz@127.0.0.1:5432/isthmus",
            "mysql://u:db-password-xyz@h/d",
        )
        .replace("[member]", "pool_size = 0\n\n[member]")
        .replace(
            "finality = \"finalized-tag\"",
            "finality = \"finalized-tag\"\npoll_interval_ms = 0",
        ) + "\n[log]\nlevel = \"isthmus=chatty,info\"\n";
    let found = problems(&toml);
    let url = find(&found, "database.url");
    assert!(url.message.contains("not a Postgres URL"), "{url}");
    assert!(!url.to_string().contains("db-password-xyz"), "{url}");
    assert!(find(&found, "database.pool_size")
        .message
        .contains("pool_size is 0"));
    assert!(find(&found, "ledgers[0].poll_interval_ms")
        .fix
        .contains("100 or more"));
    assert!(find(&found, "log.level")
        .message
        .contains("`isthmus=chatty`"));
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = BASE
        .replace("destination = \"beta\"", "destination = \"gamma\"")
        .replace("threshold = 2", "threshold = 9")
        .replace("https://127.0.0.1:7201", "bogus")
        .replace("finality = \"finalized-tag\"", "finality = \"grandpa\"");
    let keys: Vec<String> = problems(&toml).into_iter().map(|p| p.key).collect();
    assert_eq!(
        keys,
        vec![
            "ledgers[0].finality",
            "routes[0].destination",
            "consortium.members[0].attestation_url",
            "consortium.threshold",
        ]
    );
}

#[test]
fn environment_overrides_the_file_and_is_named_in_problems() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.set_env(
            "ISTHMUS_DATABASE__URL",
            "postgres://other:env-secret-123@db:5432/x",
        );
        jail.set_env("ISTHMUS_DATABASE__POOL_SIZE", "3");
        jail.set_env("ISTHMUS_MEMBER__NAME", "bank-b");
        jail.set_env("ISTHMUS_MEMBER__KEY__ENV", "TEST_OTHER_KEY");
        jail.set_env("ISTHMUS_HTTP__LISTEN", "0.0.0.0:9000");
        jail.set_env("ISTHMUS_LOG__FORMAT", "json");
        jail.set_env("ISTHMUS_CONSORTIUM__THRESHOLD", "7");
        // Not a configuration key: the CLI's file selector must not be rejected.
        jail.set_env("ISTHMUS_CONFIG", "elsewhere.toml");
        let config = load(jail, BASE)?;
        assert_eq!(
            config.database.url.expose(),
            "postgres://other:env-secret-123@db:5432/x"
        );
        assert_eq!(config.database.pool_size, 3);
        assert_eq!(config.member.name, "bank-b");
        assert_eq!(config.member.key, KeySource::Env("TEST_OTHER_KEY".into()));
        assert_eq!(config.http.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.log.format, Some(isthmus_config::LogFormat::Json));
        let found = config
            .validate()
            .expect_err("threshold 7 and unset key variable");
        let threshold = find(&found, "consortium.threshold");
        assert_eq!(
            threshold.location,
            "environment variable `ISTHMUS_CONSORTIUM__THRESHOLD`"
        );
        let key = find(&found, "member.key");
        assert!(key.message.contains("TEST_OTHER_KEY"), "{key}");
        assert_eq!(key.location, "environment variable `ISTHMUS_MEMBER__KEY`");
        Ok(())
    });
}

#[test]
fn unknown_keys_are_named_with_their_file_or_variable() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.create_file(
            "isthmus.toml",
            &BASE.replace("threshold = 2", "threshold = 2\nquorum = 3"),
        )?;
        let err = Config::load(Path::new("isthmus.toml")).expect_err("unknown key");
        let ConfigError::Parse(found) = err else {
            panic!("expected a parse error, got {err}")
        };
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "consortium.quorum");
        assert_eq!(found[0].location, "isthmus.toml");
        assert_eq!(found[0].message, "unknown key `quorum`");
        assert_eq!(
            found[0].fix,
            "remove it, or use one of the keys accepted here: network, members, threshold, takeover_s"
        );

        jail.create_file("isthmus.toml", BASE)?;
        jail.set_env("ISTHMUS_HTTP__LISTN", "127.0.0.1:1");
        let err = Config::load(Path::new("isthmus.toml")).expect_err("unknown key from env");
        let ConfigError::Parse(found) = err else {
            panic!("expected a parse error, got {err}")
        };
        assert_eq!(found[0].key, "http.listn");
        assert_eq!(
            found[0].location,
            "environment variable `ISTHMUS_HTTP__LISTN`"
        );
        Ok(())
    });
}

#[test]
fn type_errors_and_bad_enums_name_the_key() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "isthmus.toml",
            &BASE
                .replace("id = 20", "id = \"twenty\"")
                .replace("finality = \"finalized-tag\"", "finality = \"pow\""),
        )?;
        let err = Config::load(Path::new("isthmus.toml")).expect_err("bad types");
        let ConfigError::Parse(found) = err else {
            panic!("expected a parse error, got {err}")
        };
        // Deserialization stops at the first type error; the file order decides which.
        assert_eq!(found[0].key, "ledgers[0].finality");
        assert_eq!(
            found[0].fix,
            "use one of: qbft, ibft2, ibft, clique, finalized-tag, grandpa"
        );
        assert_eq!(found[0].location, "isthmus.toml");

        jail.create_file(
            "isthmus.toml",
            &BASE.replace("[member]\n", "[member]\nname = 5\n"),
        )?;
        let err =
            Config::load(Path::new("isthmus.toml")).expect_err("duplicate key is a TOML error");
        assert!(matches!(err, ConfigError::Parse(_)), "{err}");
        Ok(())
    });
}

#[test]
fn missing_required_keys_and_files() {
    Jail::expect_with(|jail| {
        jail.create_file("isthmus.toml", "[database]\nurl = \"postgres://h/d\"\n")?;
        let err = Config::load(Path::new("isthmus.toml")).expect_err("no member");
        let ConfigError::Parse(found) = err else {
            panic!("expected a parse error, got {err}")
        };
        assert_eq!(found[0].key, "member");
        assert_eq!(found[0].fix, "add `member` under the top level");

        let err = Config::load(Path::new("absent.toml")).expect_err("no file");
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(!err.is_retryable());
        Ok(())
    });
}

#[test]
fn debug_output_never_contains_secrets() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, BASE)?;
        let debug = format!("{config:?}");
        assert!(!debug.contains("db-password-xyz"), "{debug}");
        assert!(
            debug.contains("postgres://isthmus:[redacted]@127.0.0.1:5432/isthmus"),
            "{debug}"
        );
        assert!(!debug.contains(&MEMBER_KEY[2..]), "{debug}");
        assert!(!debug.contains(EVM_KEY), "{debug}");
        let key = config
            .member
            .key
            .load_secp256k1()
            .map_err(|e| e.to_string())?;
        assert!(!format!("{key:?}").contains(&MEMBER_KEY[2..]));
        assert_eq!(key.address().to_string(), MEMBER_ADDRESS);
        let seed = config.ledgers[1]
            .submitter
            .load_substrate_secret()
            .map_err(|e| e.to_string())?;
        assert_eq!(format!("{seed:?} {seed}"), "[redacted] [redacted]");
        assert_eq!(seed.expose(), "//Alice");
        Ok(())
    });
}

#[test]
fn from_figment_accepts_explicit_providers() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        tls_files(jail)?;
        let figment = Figment::from(Toml::string(BASE))
            .merge(Serialized::default("database.url", "postgres://code@h/d"))
            .merge(Serialized::default("log.level", "debug"));
        let config = Config::from_figment(&figment).map_err(|e| e.to_string())?;
        assert_eq!(config.database.url.expose(), "postgres://code@h/d");
        assert_eq!(config.log.level, "debug");
        assert_eq!(config.source_file(), None);
        valid(&config);
        Ok(())
    });
}

#[test]
fn an_array_is_replaced_whole_from_the_environment() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.set_env(
            "ISTHMUS_ROUTES",
            "[{source = \"beta\", destination = \"alpha\", enabled = false}]",
        );
        let config = load(jail, BASE)?;
        assert_eq!(config.routes.len(), 1);
        assert_eq!(
            (config.routes[0].source.as_str(), config.routes[0].enabled),
            ("beta", false)
        );
        valid(&config);
        assert_eq!(config.warnings()[0].key, "routes");
        Ok(())
    });
}

#[test]
fn url_credentials_are_not_echoed() {
    let toml = BASE.replace(
        "\"http://127.0.0.1:8546\"",
        "\"ftp://node:rpc-token-77@127.0.0.1\"",
    );
    let found = problems(&toml);
    let p = find(&found, "ledgers[0].rpc[1]");
    assert!(p.message.contains("ftp://node:[redacted]@127.0.0.1"), "{p}");
    assert!(!p.to_string().contains("rpc-token-77"), "{p}");
}

#[test]
fn sealed_finality_needs_a_checkpoint_and_says_so() {
    for mode in ["qbft", "ibft2", "ibft"] {
        let toml = BASE.replace(
            "finality = \"finalized-tag\"",
            &format!("finality = \"{mode}\""),
        );
        let found = problems(&toml);
        assert_eq!(found.len(), 1, "{mode}: {found:#?}");
        let p = find(&found, "ledgers[0].checkpoint");
        assert_eq!(p.location, "isthmus.toml");
        assert!(
            p.message.contains(&format!(
                "finality `{mode}` follows the header chain from a trusted checkpoint"
            )),
            "{p}"
        );
        assert!(p.fix.starts_with("add checkpoint = { number = N"), "{p}");
    }
    // Clique also needs its epoch and confirmations.
    let found = problems(&BASE.replace("finality = \"finalized-tag\"", "finality = \"clique\""));
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(find(&found, "ledgers[0].epoch")
        .message
        .contains("has no epoch"));
    assert!(find(&found, "ledgers[0].confirmations")
        .message
        .contains("Clique blocks are never final"));
    find(&found, "ledgers[0].checkpoint");
}

const HASH: &str = "0xac6d4694b39ddb55667c3fedb0cbbaf364b59be57f718e5eaa3ad2d6e76ed9d2";

#[test]
fn sealed_finality_is_validated_into_a_schedule() {
    let toml = BASE.replace(
        "finality = \"finalized-tag\"",
        &format!(
            "finality = \"ibft\"\nepoch = 100\ncheckpoint = {{ number = 0, hash = \"{HASH}\" }}\n\
             transitions = [{{ block = 101, finality = \"qbft\" }}]"
        ),
    );
    let mut settings = None;
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, &toml)?;
        settings = Some(valid(&config));
        Ok(())
    });
    let config = settings.expect("validated");
    let LedgerKindSettings::Evm(evm) = &config.ledgers[0].kind else {
        panic!("evm ledger")
    };
    let EvmFinality::Sealed(sealed) = &evm.finality else {
        panic!("sealed finality: {:?}", evm.finality)
    };
    assert_eq!(sealed.checkpoint.number, 0);
    assert_eq!(format!("0x{}", hex::encode(sealed.checkpoint.hash)), HASH);
    assert_eq!(
        sealed.schedule,
        vec![
            ConsensusStep {
                from_block: 0,
                protocol: SealProtocol::Ibft,
                epoch: 100
            },
            ConsensusStep {
                from_block: 101,
                protocol: SealProtocol::Qbft,
                epoch: DEFAULT_BFT_EPOCH
            },
        ]
    );
    assert_eq!(sealed.protocol_at(100), SealProtocol::Ibft);
    assert_eq!(sealed.protocol_at(101), SealProtocol::Qbft);
    assert_eq!(evm.finality.to_string(), "ibft");
}

#[test]
fn bad_sealed_finality_keys_name_the_key_and_the_fix() {
    let toml = BASE.replace(
        "finality = \"finalized-tag\"",
        "finality = \"qbft\"\nepoch = 0\nvalidator_selection = \"contract\"\n\
         checkpoint = { number = 5, hash = \"0x1234\", validators = [\"0x01\", \
         \"0x5fbdb2315678afecb367f032d93f642f64180aa3\", \"0x5fbdb2315678afecb367f032d93f642f64180aa3\"] }\n\
         transitions = [{ block = 0, finality = \"clique\", epoch = 30000 }, { block = 9, finality = \"finalized-tag\" }]",
    );
    let found = problems(&toml);
    assert!(find(&found, "ledgers[0].epoch").message.contains("epoch 0"));
    assert!(find(&found, "ledgers[0].validator_selection")
        .message
        .contains("selects validators with a contract"));
    assert!(find(&found, "ledgers[0].checkpoint.hash")
        .fix
        .contains("64 hex digits"));
    find(&found, "ledgers[0].checkpoint.validators[0]");
    assert!(find(&found, "ledgers[0].checkpoint.validators[2]")
        .message
        .contains("listed twice"));
    assert!(find(&found, "ledgers[0].transitions[0].block")
        .message
        .contains("not after"));
    assert!(find(&found, "ledgers[0].transitions[0].finality")
        .message
        .contains("from qbft to clique is not supported"));
    assert!(find(&found, "ledgers[0].transitions[1].finality")
        .message
        .contains("cannot be followed"));
    // The finalized-tag mode takes none of these keys.
    let found = problems(&BASE.replace(
        "finality = \"finalized-tag\"",
        &format!("finality = \"finalized-tag\"\ncheckpoint = {{ number = 0, hash = \"{HASH}\" }}"),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(find(&found, "ledgers[0].checkpoint")
        .message
        .contains("applies to sealed finality"));
}

/// The anchor line of `BASE`.
const ANCHOR: &str = "anchor = { block = \"0x1111111111111111111111111111111111111111111111111111111111111111\", number = 5, set_id = 2, authorities = [\"0x2222222222222222222222222222222222222222222222222222222222222222\", \"0x3333333333333333333333333333333333333333333333333333333333333333\"] }";

#[test]
fn a_substrate_ledger_needs_a_trust_anchor() {
    let found = problems(&BASE.replace(&format!("{ANCHOR}\n"), ""));
    assert_eq!(found.len(), 1, "{found:#?}");
    let p = find(&found, "ledgers[1].anchor");
    assert_eq!(p.location, "isthmus.toml");
    assert!(
        p.message
            .contains("substrate ledger `beta` has no trust anchor"),
        "{p}"
    );
    assert!(p.fix.contains("anchor = { chain_spec = "), "{p}");
    // The only justification source is the node's RPC: `devnet` is no value.
    let devnet = BASE.replace("justifications = \"rpc\"", "justifications = \"devnet\"");
    Jail::expect_with(|jail| {
        set_keys(jail);
        let error = load(jail, &devnet).expect_err("`devnet` does not parse");
        assert!(error.to_string().contains("devnet"), "{error}");
        Ok(())
    });
}

#[test]
fn an_inline_anchor_is_checked_field_by_field() {
    let found = problems(&BASE.replace(
        ANCHOR,
        "anchor = { block = \"0x12\", set_id = 1, authorities = [\"0xzz\", \"0x2222222222222222222222222222222222222222222222222222222222222222\", \"0x2222222222222222222222222222222222222222222222222222222222222222\"] }",
    ));
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "ledgers[1].anchor.number",
            "ledgers[1].anchor.block",
            "ledgers[1].anchor.authorities[0]",
            "ledgers[1].anchor.authorities[2]",
        ],
        "{found:#?}"
    );
    assert!(found[3].message.contains("listed twice"), "{:?}", found[3]);
}

/// Real published chain specs anchor the light client: Westend's and Polkadot's
/// `lightSyncState`; a file that is not one is refused with its reason.
#[test]
fn a_chain_spec_anchor_reads_the_published_light_sync_state() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/substrate");
    for (file, number, set_id, count) in [
        ("westend2-light-sync-state.json", 29_233_814, 10_077, 20),
        ("polkadot-light-sync-state.json", 29_378_183, 3_195, 600),
    ] {
        let path = fixtures.join(file);
        let config = BASE.replace(
            ANCHOR,
            &format!("anchor = {{ chain_spec = \"{}\" }}", path.display()),
        );
        Jail::expect_with(|jail| {
            set_keys(jail);
            let settings = valid(&load(jail, &config)?);
            let ledger = settings.ledger("beta").expect("beta");
            let anchor = &ledger.substrate().expect("substrate").anchor;
            assert_eq!(
                (anchor.number, anchor.set_id, anchor.authorities.len()),
                (number, set_id, count),
                "{file}"
            );
            assert!(anchor.source.contains(file));
            Ok(())
        });
    }
    let found = problems(&BASE.replace(
        ANCHOR,
        "anchor = { chain_spec = \"isthmus.toml\", set_id = 4 }",
    ));
    let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["ledgers[1].anchor.set_id", "ledgers[1].anchor.chain_spec"],
        "{found:#?}"
    );
    assert!(found[1].message.contains("not JSON"), "{:?}", found[1]);
}

#[test]
fn pallet_other_than_isthmus_and_pallet_index_are_refused() {
    let named = |extra: &str| {
        BASE.replace(
            "justifications = \"rpc\"\n",
            &format!("justifications = \"rpc\"\n{extra}\n"),
        )
    };
    // The name the relayer uses anyway is accepted.
    assert!(problems(&named("pallet = \"Isthmus\"")).is_empty());

    let found = problems(&named("pallet = \"Bridge\"\npallet_index = 42"));
    assert_eq!(found.len(), 2, "{found:#?}");
    let pallet = find(&found, "ledgers[1].pallet");
    assert_eq!(pallet.location, "isthmus.toml");
    assert_eq!(
        pallet.message,
        "pallet `Bridge` cannot be used: the relayer addresses the pallet by its metadata name \
         `Isthmus`"
    );
    assert!(pallet.fix.starts_with("remove `pallet`"), "{pallet}");
    let index = find(&found, "ledgers[1].pallet_index");
    assert_eq!(
        index.message,
        "pallet_index 42 is not used: the relayer addresses the pallet by its metadata name \
         `Isthmus` and never checks an index"
    );
    assert_eq!(index.fix, "remove `pallet_index`");
}

#[test]
fn listening_on_every_interface_is_a_warning() {
    for (listen, shown) in [("0.0.0.0:7101", "0.0.0.0:7101"), ("[::]:7101", "[::]:7101")] {
        Jail::expect_with(|jail| {
            set_keys(jail);
            let config = load(jail, &format!("{BASE}\n[http]\nlisten = \"{listen}\"\n"))?;
            let settings = valid(&config);
            assert_eq!(settings.http.listen.to_string(), shown);
            let warnings = config.warnings();
            assert_eq!(warnings.len(), 1, "{warnings:#?}");
            let w = &warnings[0];
            assert_eq!(w.key, "http.listen");
            assert_eq!(w.location, "isthmus.toml");
            assert!(
                w.message
                    .contains(&format!("{shown} is an unspecified address")),
                "{w}"
            );
            assert!(
                w.message.contains(
                    "health, readiness and metrics are then reachable from every network the host is on"
                ),
                "{w}"
            );
            assert!(
                w.fix
                    .starts_with("bind to the interface Prometheus scrapes from"),
                "{w}"
            );
            Ok(())
        });
    }
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(
            jail,
            &format!("{BASE}\n[http]\nlisten = \"10.0.0.5:7101\"\n"),
        )?;
        assert!(config.warnings().is_empty(), "{:#?}", config.warnings());
        Ok(())
    });
}

/// A CA of its own and a certificate it issues for `name` (server and client use).
fn foreign_certificate(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec![name.to_owned()]).expect("params");
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn the_attestation_endpoint_needs_a_certificate_the_members_accept() {
    // No [attestation] at all: the endpoint is served only with mutual TLS.
    let without = BASE[..BASE.find("[attestation]").expect("BASE has [attestation]")].to_owned();
    let found = problems(&without);
    let p = find(&found, "attestation");
    assert!(p.message.contains("served only with mutual TLS"), "{p}");
    assert!(p.fix.contains("isthmus devnet certificates"), "{p}");
    assert_eq!(found.len(), 1, "{found:#?}");

    // Peers are reached over https only.
    let found = problems(&BASE.replace("https://127.0.0.1:7203", "http://127.0.0.1:7203"));
    let p = find(&found, "consortium.members[2].attestation_url");
    assert!(p.message.contains("uses scheme `http`"), "{p}");
    assert_eq!(found.len(), 1, "{found:#?}");

    Jail::expect_with(|jail| {
        set_keys(jail);
        // Another member's certificate: valid, but not for this member's name.
        let config = load(
            jail,
            &BASE
                .replace("tls/bank-a.pem", "tls/bank-b.pem")
                .replace("tls/bank-a.key", "tls/bank-b.key"),
        )?;
        let found = config.validate().expect_err("bank-b's certificate");
        let p = find(&found, "attestation.certificate");
        assert!(p.message.contains("not valid for name \"bank-a\""), "{p}");
        assert!(p.fix.contains("for the DNS name `bank-a`"), "{p}");
        // ...unless the consortium names bank-a by the name in that certificate.
        let renamed = BASE
            .replace("tls/bank-a.pem", "tls/bank-b.pem")
            .replace("tls/bank-a.key", "tls/bank-b.key")
            .replace(
                "attestation_url = \"https://127.0.0.1:7201\"",
                "attestation_url = \"https://127.0.0.1:7201\"\ntls_name = \"bank-b\"",
            );
        let found = load(jail, &renamed)?
            .validate()
            .expect_err("two members, one name");
        let p = find(&found, "consortium.members[1].tls_name");
        assert!(p.message.contains("also the TLS name of `bank-a`"), "{p}");

        // A key that is not the certificate's.
        let config = load(jail, &BASE.replace("tls/bank-a.key", "tls/bank-b.key"))?;
        let found = config.validate().expect_err("bank-b's key");
        let p = find(&found, "attestation.key");
        assert!(
            p.message.contains("does not belong to the certificate"),
            "{p}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");

        // A certificate for the right name from another CA.
        let (_, leaf, key) = foreign_certificate("bank-a");
        jail.create_file("tls/foreign.pem", &leaf)?;
        jail.create_file("tls/foreign.key", &key)?;
        let config = load(
            jail,
            &BASE
                .replace("tls/bank-a.pem", "tls/foreign.pem")
                .replace("tls/bank-a.key", "tls/foreign.key"),
        )?;
        let found = config.validate().expect_err("another CA");
        let p = find(&found, "attestation.certificate");
        assert!(p.message.contains("UnknownIssuer"), "{p}");

        // Missing and unreadable files, an inline key, a shared listener, zero limits.
        jail.create_file("tls/empty.pem", "not a certificate\n")?;
        let config = load(
            jail,
            &BASE
                .replace("ca = \"tls/ca.pem\"", "ca = \"tls/empty.pem\"")
                .replace(
                    "listen = \"127.0.0.1:7201\"",
                    "listen = \"127.0.0.1:7100\"\nrate_per_s = 0\nburst = 0",
                ),
        )?;
        let found = config.validate().expect_err("bad CA file");
        let p = find(&found, "attestation.ca");
        assert!(p.message.contains("holds no PEM certificate"), "{p}");
        let p = find(&found, "attestation.listen");
        assert!(p.message.contains("also http.listen"), "{p}");
        assert!(find(&found, "attestation.rate_per_s")
            .message
            .contains("refuse every request"));
        assert!(find(&found, "attestation.burst")
            .message
            .contains("refuse every request"));
        let config = load(
            jail,
            &BASE.replace(
                "key = { file = \"tls/bank-a.key\" }",
                "key = \"-----BEGIN PRIVATE KEY-----\"",
            ),
        )?;
        let found = config.validate().expect_err("inline key");
        let p = find(&found, "attestation.key");
        assert!(
            p.message
                .contains("may not be written into the configuration"),
            "{p}"
        );
        let config = load(jail, &BASE.replace("tls/bank-a.pem", "tls/absent.pem"))?;
        let found = config.validate().expect_err("no file");
        let p = find(&found, "attestation.certificate");
        assert!(
            p.message
                .contains("cannot read the certificate file `tls/absent.pem`"),
            "{p}"
        );
        Ok(())
    });
}

#[test]
fn a_certificate_close_to_its_expiry_is_a_warning() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "expiry test CA");
    let ca = ca.self_signed(&ca_key).expect("CA");
    let issue = |days: i64| {
        let key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(vec!["bank-a".to_owned()]).expect("params");
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(days);
        let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
        (leaf.pem(), key.serialize_pem())
    };
    Jail::expect_with(|jail| {
        set_keys(jail);
        jail.create_dir("soon")?;
        jail.create_file("soon/ca.pem", &ca.pem())?;
        for (days, warned) in [(10, true), (90, false)] {
            let (certificate, key) = issue(days);
            jail.create_file("soon/bank-a.pem", &certificate)?;
            jail.create_file("soon/bank-a.key", &key)?;
            let config = load(jail, &BASE.replace("\"tls/", "\"soon/"))?;
            valid(&config);
            let warnings = config.warnings();
            let expiry = warnings.iter().find(|w| w.key == "attestation.certificate");
            assert_eq!(expiry.is_some(), warned, "{days} days: {warnings:#?}");
            if let Some(w) = expiry {
                assert!(w.message.contains("expires on"), "{w}");
                assert!(
                    w.message.contains("in 9 day(s)") || w.message.contains("in 10 day(s)"),
                    "{w}"
                );
                assert!(w.fix.contains("issue a new certificate"), "{w}");
            }
        }
        Ok(())
    });
}

#[test]
fn screening_needs_a_url_and_a_sane_timeout_and_is_optional() {
    Jail::expect_with(|jail| {
        set_keys(jail);
        let config = load(jail, BASE)?;
        assert_eq!(valid(&config).screening, None, "unset: no screening");
        Ok(())
    });
    Jail::expect_with(|jail| {
        set_keys(jail);
        let toml = format!("{BASE}\n[screening]\nurl = \"https://screening.bank-a.example/v1\"\n");
        let settings = valid(&load(jail, &toml)?);
        let screening = settings.screening.expect("set");
        assert_eq!(screening.url, "https://screening.bank-a.example/v1");
        assert_eq!(
            screening.timeout,
            std::time::Duration::from_millis(isthmus_config::DEFAULT_SCREENING_TIMEOUT_MS)
        );
        Ok(())
    });
    let found = problems(&format!(
        "{BASE}\n[screening]\nurl = \"ftp://screening.example\"\ntimeout_ms = 0\n"
    ));
    assert!(find(&found, "screening.url")
        .message
        .contains("uses scheme `ftp`"));
    let timeout = find(&found, "screening.timeout_ms");
    assert!(timeout.message.contains("outside 1..=60000"), "{timeout:?}");
    assert!(timeout.fix.contains("no answer in time holds the payment"));
}
