//! The shipped devnet example is valid for each of its three members.
#![expect(
    clippy::result_large_err,
    reason = "figment::Jail closures return figment::Error"
)]

use std::path::{Path, PathBuf};

use isthmus_config::{Config, Finality, LedgerKind, LedgerKindSettings};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Reads a `KEY=VALUE` env file, skipping comments and blank lines.
fn env_file(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(example(name)).expect("example env file exists");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE line");
            // Paths in the env files start at the repository root (where the demo
            // runs); tests run elsewhere.
            let v = if v.starts_with("config/examples/") {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(v)
                    .display()
                    .to_string()
            } else {
                v.to_owned()
            };
            (k.to_owned(), v)
        })
        .collect()
}

fn validate_as(member_env: &str, expected_member: &str, expected_listen: &str) {
    figment::Jail::expect_with(|jail| {
        for (k, v) in env_file(member_env) {
            jail.set_env(k, v);
        }
        let config = Config::load(&example("devnet.toml")).map_err(|e| e.to_string())?;
        let settings = config.validate().unwrap_or_else(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!(
                "devnet.toml is invalid for {member_env}:\n{}",
                text.join("\n")
            );
        });
        assert_eq!(settings.member.name, expected_member);
        assert_eq!(settings.http.listen.to_string(), expected_listen);
        let signer = settings
            .consortium
            .member(expected_member)
            .map(|m| m.signer);
        assert_eq!(Some(settings.member.signer), signer);
        // The devnet runs the modes `isthmus run` supports.
        let modes: Vec<(&str, String)> = settings
            .ledgers
            .iter()
            .map(|l| {
                let mode = match &l.kind {
                    LedgerKindSettings::Evm(evm) => evm.finality.to_string(),
                    LedgerKindSettings::Substrate(sub) => format!(
                        "grandpa from block {} of set {} ({})",
                        sub.anchor.number, sub.anchor.set_id, sub.anchor.source
                    ),
                };
                (l.name.as_str(), mode)
            })
            .collect();
        assert_eq!(
            modes,
            vec![
                ("evm-a", "finalized-tag".to_owned()),
                ("evm-b", "finalized-tag".to_owned()),
                (
                    "sub",
                    "grandpa from block 0 of set 0 (configuration)".to_owned()
                ),
            ]
        );
        let routes: Vec<(u32, u32)> = settings
            .routes
            .iter()
            .map(|r| (r.source, r.destination))
            .collect();
        assert_eq!(routes, vec![(1, 2), (1, 3), (3, 1), (2, 1)]);
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());
        Ok(())
    });
}

#[test]
fn devnet_example_is_valid_for_bank_a() {
    validate_as("devnet-bank-a.env", "bank-a", "127.0.0.1:7101");
}

#[test]
fn devnet_example_is_valid_for_bank_b() {
    validate_as("devnet-bank-b.env", "bank-b", "127.0.0.1:7102");
}

#[test]
fn devnet_example_is_valid_for_bank_c() {
    validate_as("devnet-bank-c.env", "bank-c", "127.0.0.1:7103");
}

#[test]
fn devnet_example_has_the_documented_shape() {
    figment::Jail::expect_with(|_jail| {
        let config = Config::load(&example("devnet.toml")).map_err(|e| e.to_string())?;
        let ledgers: Vec<(&str, u32, LedgerKind, Finality)> = config
            .ledgers
            .iter()
            .map(|l| (l.name.as_str(), l.id, l.kind, l.finality))
            .collect();
        assert_eq!(
            ledgers,
            vec![
                ("evm-a", 1, LedgerKind::Evm, Finality::FinalizedTag),
                ("evm-b", 2, LedgerKind::Evm, Finality::FinalizedTag),
                ("sub", 3, LedgerKind::Substrate, Finality::Grandpa),
            ]
        );
        assert_eq!(config.ledgers[0].chain_id, Some(31337));
        assert_eq!(config.ledgers[1].chain_id, Some(31338));
        let routes: Vec<(&str, &str)> = config
            .routes
            .iter()
            .map(|r| (r.source.as_str(), r.destination.as_str()))
            .collect();
        assert_eq!(
            routes,
            vec![
                ("evm-a", "evm-b"),
                ("evm-a", "sub"),
                ("sub", "evm-a"),
                ("evm-b", "evm-a")
            ]
        );
        assert_eq!(config.consortium.threshold, 2);
        assert_eq!(config.consortium.members.len(), 3);
        Ok(())
    });
}

#[test]
fn devnet_example_without_keys_reports_each_missing_variable() {
    figment::Jail::expect_with(|_jail| {
        let config = Config::load(&example("devnet.toml")).map_err(|e| e.to_string())?;
        let problems = config.validate().expect_err("no key variables are set");
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "ledgers[0].submitter",
                "ledgers[1].submitter",
                "ledgers[2].submitter",
                "member.key"
            ]
        );
        assert!(
            problems[3].message.contains("DEVNET_ATTESTATION_KEY"),
            "{}",
            problems[3]
        );
        assert!(
            problems[3].fix.contains("export DEVNET_ATTESTATION_KEY"),
            "{}",
            problems[3]
        );
        Ok(())
    });
}
