//! Runs the real `isthmus` binary: configuration validation and database migration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_isthmus");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples")
}

/// A command for the binary with no inherited `ISTHMUS_*` or `RUST_LOG` variables, so
/// the test's own environment cannot change the outcome.
fn isthmus() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ISTHMUS_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The `KEY=VALUE` lines of an example env file.
fn env_file(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(examples().join(name)).expect("example env file exists");
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_describes_every_command() {
    let top = isthmus().arg("--help").output().expect("runs");
    assert!(top.status.success());
    let text = stdout(&top);
    // Every command is listed with its description (clap aligns the columns).
    for (command, description) in [
        ("config", "Inspect the configuration file"),
        ("db", "Manage the Postgres database"),
        ("devnet", "Run local development ledgers"),
        ("run", "Run the relayer"),
        ("send", "Dispatch a message"),
        ("status", "Show a message's lifecycle"),
        ("messages", "List messages by route, status and time"),
        ("retry", "Put a failed or dead-lettered message back"),
        ("audit", "Check the history for tampering"),
        ("signers", "Signer-set updates governed by the consortium"),
        ("route", "Route pause and resume on a destination"),
    ] {
        assert!(
            text.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with(command) && l[command.len()..].trim_start().starts_with(description)
            }),
            "`{command}` is not listed with \"{description}\":\n{text}"
        );
    }
    assert!(text.contains("--log-format"), "{text}");

    let validate = isthmus()
        .args(["config", "validate", "--help"])
        .output()
        .expect("runs");
    let text = stdout(&validate);
    assert!(
        text.contains("every problem with its key, file and fix"),
        "{text}"
    );
    assert!(text.contains("ISTHMUS_CONFIG"), "{text}");
    assert!(text.contains("isthmus.toml"), "{text}");

    let migrate = isthmus()
        .args(["db", "migrate", "--help"])
        .output()
        .expect("runs");
    let text = stdout(&migrate);
    assert!(text.contains("--database-url <URL>"), "{text}");
    assert!(text.contains("--config <FILE>"), "{text}");
}

#[test]
fn validate_accepts_the_devnet_example_with_its_keys() {
    let output = isthmus()
        .args(["config", "validate", "--config"])
        .arg(examples().join("devnet.toml"))
        .envs(env_file("devnet-bank-a.env"))
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(text.contains("is valid"), "{text}");
    assert!(
        text.contains("ledgers:   3: evm-a (evm #1), evm-b (evm #2), sub (substrate #3)"),
        "{text}"
    );
    assert!(text.contains("routes:    4 (4 enabled)"), "{text}");
    assert!(
        text.contains("members:   3: bank-a, bank-b, bank-c"),
        "{text}"
    );
    assert!(text.contains("threshold: 2 of 3"), "{text}");
    for (_, value) in env_file("devnet-bank-a.env") {
        assert!(!text.contains(&value), "output shows a key: {text}");
    }
}

#[test]
fn validate_reads_the_path_from_isthmus_config() {
    let output = isthmus()
        .args(["config", "validate"])
        .env("ISTHMUS_CONFIG", examples().join("devnet.toml"))
        .envs(env_file("devnet-bank-b.env"))
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(
        text.contains("this relayer: member bank-b, http on 127.0.0.1:7102"),
        "{text}"
    );
}

#[test]
fn validate_reports_every_problem_with_its_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        r#"
[database]
url = "postgres://relayer:pw-not-shown@127.0.0.1/isthmus"

[member]
name = "bank-x"
key = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"

[[ledgers]]
name = "a"
id = 1
kind = "evm"
rpc = ["http://127.0.0.1:8545"]
chain_id = 1
outbox = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
inbox = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
finality = "grandpa"
submitter = { file = "no-such.key" }

[[routes]]
source = "a"
destination = "b"

[consortium]
network = "0xe9782fbc43c20cd40d46fc1c0c2f539f7817c8b111c8295f174a353611727664"
threshold = 3

[[consortium.members]]
name = "bank-a"
signer = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
attestation_url = "http://127.0.0.1:7101"
"#,
    )
    .expect("writes config");
    let output = isthmus()
        .args(["config", "validate", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let file = path.display().to_string();
    for (key, fix) in [
        (
            "ledgers[0].finality",
            "fix: use one of: qbft, ibft2, ibft, clique, finalized-tag",
        ),
        ("ledgers[0].submitter", "fix: create `"),
        (
            "routes[0].destination",
            "fix: define it under [[ledgers]] or use one of: a",
        ),
        ("consortium.threshold", "fix: set threshold between 1 and 1"),
        (
            "member.name",
            "fix: add it as a [[consortium.members]] entry or use one of: bank-a",
        ),
        (
            "member.key",
            "fix: never write a key into the configuration",
        ),
        (
            "consortium.members[0].attestation_url",
            "fix: use a URL starting with one of: https://",
        ),
        ("attestation", "fix: add an [attestation] table"),
    ] {
        let line = format!("error: {key} ({file}): ");
        let at = text
            .find(&line)
            .unwrap_or_else(|| panic!("no `{line}` in:\n{text}"));
        let next_line = text[at..].lines().nth(1).unwrap_or_default();
        assert!(
            next_line.trim_start().starts_with(fix),
            "{key}: `{next_line}` in:\n{text}"
        );
    }
    assert!(text.contains(": 8 problem(s)"), "{text}");
    assert!(!text.contains("pw-not-shown"), "{text}");
    assert!(!text.contains("7c852118294e51e6"), "{text}");
}

#[test]
fn validate_names_an_unknown_key_and_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typo.toml");
    let devnet = std::fs::read_to_string(examples().join("devnet.toml")).expect("example");
    std::fs::write(
        &path,
        devnet.replace("pool_size = 5", "pool_size = 5\npool_sise = 6"),
    )
    .expect("writes config");
    let output = isthmus()
        .args(["config", "validate", "-c"])
        .arg(&path)
        .envs(env_file("devnet-bank-a.env"))
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "error: database.pool_sise ({}): unknown key `pool_sise`",
            path.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("fix: remove it, or use one of the keys accepted here: url, pool_size"),
        "{text}"
    );

    // The same mistake made in the environment names the variable.
    let output = isthmus()
        .args(["config", "validate", "-c"])
        .arg(examples().join("devnet.toml"))
        .envs(env_file("devnet-bank-a.env"))
        .env("ISTHMUS_HTTP__LISTEM", "127.0.0.1:1")
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: http.listem (environment variable `ISTHMUS_HTTP__LISTEM`): unknown key `listem`"),
        "{text}"
    );
}

/// `devnet pay` names what is wrong with its input before it connects to anything.
#[test]
fn devnet_pay_refuses_bad_input_with_the_flag_and_the_fix() {
    let config = examples().join("devnet.toml");
    let bank = format!("0x{}", "0b".repeat(32));
    let pay = |args: &[&str]| {
        let mut all = vec![
            "devnet",
            "pay",
            "-c",
            config.to_str().expect("a UTF-8 path"),
        ];
        all.extend_from_slice(args);
        isthmus().args(&all).output().expect("runs")
    };
    for (args, expected) in [
        (
            vec!["--ledger", "evm-a", "--to", "sub", "--uetr", &bank],
            "ledgers `evm-a`",
        ),
        (
            vec!["--ledger", "sub", "--to", "nowhere", "--uetr", &bank],
            "--to nowhere: no such ledger",
        ),
        (
            vec!["--ledger", "sub", "--to", "evm-a", "--uetr", "0x12"],
            "--uetr 0x12: write 0x followed by 64 hex digits",
        ),
        (
            vec![
                "--ledger", "sub", "--to", "evm-a", "--uetr", &bank, "--debtor", "0a",
            ],
            "--debtor 0a: write 0x followed by 64 hex digits",
        ),
        (
            vec![
                "--ledger",
                "sub",
                "--to",
                "evm-a",
                "--uetr",
                &bank,
                "--key-env",
                "ISTHMUS_TEST_UNSET_SEED",
            ],
            "ISTHMUS_TEST_UNSET_SEED",
        ),
    ] {
        let mut full = args.clone();
        full.extend_from_slice(&["--creditor", &bank, "--amount", "5"]);
        if !full.contains(&"--key-env") {
            full.extend_from_slice(&["--key-env", "ISTHMUS_TEST_UNSET_SEED"]);
        }
        let output = pay(&full);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn validate_fails_cleanly_on_a_missing_file() {
    let output = isthmus()
        .args(["config", "validate", "-c", "/nonexistent/isthmus.toml"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(
            "error: cannot read configuration file `/nonexistent/isthmus.toml`: No such file"
        ),
        "{err}"
    );
}

#[test]
fn migrate_refuses_both_a_config_and_a_url() {
    let output = isthmus()
        .args([
            "db",
            "migrate",
            "--config",
            "x.toml",
            "--database-url",
            "postgres://h/d",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
}

/// A fresh database on the test server, dropped when the guard goes away.
struct TempDatabase {
    runtime: tokio::runtime::Runtime,
    admin_url: String,
    name: String,
    url: String,
}

impl TempDatabase {
    fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let name = format!("isthmus_cli_test_{}_{nanos}", std::process::id());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async {
            let pool = sqlx::PgPool::connect(&admin_url)
                .await
                .expect("connect to DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
        });
        let url = with_database(&admin_url, &name);
        TempDatabase {
            runtime,
            admin_url,
            name,
            url,
        }
    }

    fn migration_count(&self) -> i64 {
        self.runtime.block_on(async {
            let pool = sqlx::PgPool::connect(&self.url)
                .await
                .expect("connect to test database");
            let (count,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&pool)
                    .await
                    .expect("count migrations");
            pool.close().await;
            count
        })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        self.runtime.block_on(async move {
            if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                let dropped =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                if let Err(e) = dropped {
                    eprintln!("could not drop test database {name}: {e}");
                }
                pool.close().await;
            }
        });
    }
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..path_start])
}

#[test]
fn migrate_applies_the_schema_once_and_is_idempotent() {
    let db = TempDatabase::create();
    let expected = isthmus_schema::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .count();
    assert!(expected > 0, "the schema crate ships migrations");

    // A password in the URL: trust authentication ignores it, and it must never show.
    let url_with_password = db
        .url
        .replacen("://postgres@", "://postgres:never-printed-pw@", 1);
    let first = isthmus()
        .args([
            "--log-format",
            "json",
            "db",
            "migrate",
            "--database-url",
            &url_with_password,
        ])
        .output()
        .expect("runs");
    let text = stdout(&first);
    let logs = stderr(&first);
    assert_eq!(first.status.code(), Some(0), "{text}\n{logs}");
    assert!(
        text.contains(&format!("applied {expected} migration(s)")),
        "{text}"
    );
    for m in isthmus_schema::MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        assert!(
            text.contains(&format!("  {} {}", m.version, m.description)),
            "{text}"
        );
    }
    assert_eq!(
        db.migration_count(),
        i64::try_from(expected).expect("small count")
    );
    // JSON logs: every stderr line is an object; the start is logged with the URL redacted.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "applying schema migrations"),
        "{logs}"
    );
    assert!(
        !format!("{text}{logs}").contains("never-printed-pw"),
        "{text}{logs}"
    );

    // Second run, through a configuration file whose URL comes from the environment,
    // with RUST_LOG overriding the configured level: nothing to apply, nothing logged
    // below WARN.
    let second = isthmus()
        .args(["db", "migrate", "--config"])
        .arg(examples().join("devnet.toml"))
        .env("ISTHMUS_DATABASE__URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    let text = stdout(&second);
    assert_eq!(second.status.code(), Some(0), "{text}\n{}", stderr(&second));
    assert!(
        text.contains(&format!(
            "is up to date ({expected} migration(s) applied earlier)"
        )),
        "{text}"
    );
    assert!(
        !stderr(&second).contains("applying schema migrations"),
        "{}",
        stderr(&second)
    );
    assert_eq!(
        db.migration_count(),
        i64::try_from(expected).expect("small count")
    );
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/postgres?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

/// `isthmus devnet evm` starts anvil on the configured port, deploys the endpoints at
/// the addresses the example configuration names, writes them, and stops on SIGTERM.
/// The devnet example, written into `dir` with evm-a's node at 127.0.0.1:`port`.
fn devnet_config_with_evm_a_at(dir: &Path, port: u16) -> PathBuf {
    // The copy lives elsewhere: its TLS files stay the example's.
    let example = std::fs::read_to_string(examples().join("devnet.toml"))
        .expect("example")
        .replace("\"tls/", &format!("\"{}/tls/", examples().display()));
    let config = dir.join("devnet.toml");
    std::fs::write(
        &config,
        example.replace("http://127.0.0.1:8545", &format!("http://127.0.0.1:{port}")),
    )
    .expect("write");
    config
}

#[test]
fn devnet_evm_deploys_writes_the_addresses_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = devnet_config_with_evm_a_at(dir.path(), port);
    let out = dir.path().join("evm-a.json");
    let mut child = isthmus()
        .args(["devnet", "evm", "--ledger", "evm-a", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exits");
    let json: serde_json::Value = serde_json::from_str(&written).expect("addresses file is JSON");
    assert_eq!(json["ledger_id"], 1);
    assert_eq!(json["chain_id"], 31337);
    assert_eq!(json["rpc"], format!("http://127.0.0.1:{port}"));
    assert_eq!(
        json["deployment"]["outbox"],
        "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    );
    assert_eq!(
        json["deployment"]["inbox"],
        "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
    );
    assert!(status.success(), "exit status {status}");
    // The ledger is gone with the command.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "anvil outlived the command"
    );
}

/// `isthmus run` whose node does not answer yet keeps trying (a restart of the node
/// or an overloaded endpoint must not end the relayer), says so, and stops cleanly
/// on SIGTERM meanwhile.
#[test]
fn run_waits_for_a_node_that_does_not_answer_yet_and_stops_on_sigterm() {
    let db = TempDatabase::create();
    let dir = tempfile::tempdir().expect("temp dir");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = devnet_config_with_evm_a_at(dir.path(), dead);
    let log = dir.path().join("run.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut child = isthmus()
        .args(["run", "--config"])
        .arg(&config)
        .envs(env_file("devnet-bank-a.env"))
        .env("ISTHMUS_DATABASE__URL", &db.url)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starts");
    // Two failed starts at least (1 s, then 2 s apart), and still running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut attempts = 0;
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        attempts = text.matches("a dependency does not answer").count();
        if attempts >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "run ended: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        attempts >= 2,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("exits");
    assert!(status.success(), "exit status {status}");
}

/// `isthmus send` refuses, before it connects to anything, a message that every
/// member would reject: a 32-byte account as the recipient on an EVM ledger.
#[test]
fn send_refuses_a_32_byte_recipient_for_an_evm_ledger_before_dispatch() {
    let output = isthmus()
        .args(["send", "--from", "evm-a", "--to", "evm-b", "--recipient"])
        .arg(format!("0x{}", "77".repeat(32)))
        .args(["--body", "x", "--config"])
        .arg(examples().join("devnet.toml"))
        .envs(env_file("devnet-bank-a.env"))
        .output()
        .expect("runs");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("--recipient 0x7777"), "{err}");
    assert!(err.contains("EVM ledger `evm-b`"), "{err}");
    assert!(err.contains("give a 20-byte address"), "{err}");
    // Nothing was tried on a node (none runs here): the refusal came first.
    assert!(!err.contains("dispatch on"), "{err}");
}

/// `route` refuses what it cannot record or count before it reaches a node or the
/// database: an empty reason, a signature file it cannot read or that is not one.
#[test]
fn route_commands_refuse_bad_input_before_any_node() {
    let run = |args: &[&str]| {
        isthmus()
            .arg("route")
            .args(args)
            .args(["--on", "evm-b", "--origin", "evm-a", "--config"])
            .arg(examples().join("devnet.toml"))
            .envs(env_file("devnet-bank-a.env"))
            .output()
            .expect("runs")
    };
    let blank = run(&["pause", "--reason", "  "]);
    assert_eq!(blank.status.code(), Some(1), "{}", stderr(&blank));
    assert!(
        stderr(&blank).contains("--reason: say why the route is paused"),
        "{}",
        stderr(&blank)
    );
    let missing = run(&["pause"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("--reason"),
        "{}",
        stderr(&missing)
    );

    let dir = tempfile::tempdir().expect("temporary directory");
    let absent = dir.path().join("absent.json");
    let out = run(&[
        "resume",
        "--reason",
        "cleared",
        absent.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("signature {}: cannot read it", absent.display())),
        "{}",
        stderr(&out)
    );
    let proposal = dir.path().join("not-a-signature.json");
    std::fs::write(&proposal, r#"{"kind": "isthmus signer-set update v1"}"#).expect("file written");
    let out = run(&[
        "resume",
        "--reason",
        "cleared",
        proposal.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a signature file"),
        "{}",
        stderr(&out)
    );
    // Nothing was tried on a node (none runs here): the refusals came first.
    for err in [stderr(&blank), stderr(&out)] {
        assert!(!err.contains("evm-b:"), "{err}");
    }
}

/// A body too large for an argument comes from a file; a file that cannot be read
/// is named, and a body over the protocol's limit is refused before dispatch.
#[test]
fn send_takes_the_body_from_a_file_and_checks_it_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let send = |body_file: &Path| {
        isthmus()
            .args(["send", "--from", "evm-a", "--to", "evm-b", "--recipient"])
            .arg(format!("0x{}", "77".repeat(20)))
            .arg("--body-file")
            .arg(body_file)
            .arg("--config")
            .arg(examples().join("devnet.toml"))
            .envs(env_file("devnet-bank-a.env"))
            .output()
            .expect("runs")
    };
    let missing = dir.path().join("missing.bin");
    let output = send(&missing);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--body-file {}", missing.display())),
        "{err}"
    );

    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; isthmus_protocol::MAX_BODY_LEN + 1]).expect("write");
    let output = send(&big);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "the body is {} bytes; the protocol allows {}",
            isthmus_protocol::MAX_BODY_LEN + 1,
            isthmus_protocol::MAX_BODY_LEN
        )),
        "{err}"
    );
}

/// `status --json` answers JSON for an unknown message too (exit status 1).
#[test]
fn status_json_names_an_unknown_message_in_json() {
    let db = TempDatabase::create();
    let migrate = isthmus()
        .args(["db", "migrate", "--database-url", &db.url])
        .output()
        .expect("runs");
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let id = format!("0x{}", "ab".repeat(32));
    let output = isthmus()
        .args(["status", "--json", &id, "--config"])
        .arg(examples().join("devnet.toml"))
        .env("ISTHMUS_DATABASE__URL", &db.url)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(stdout(&output).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&output)));
    assert_eq!(json["status"], "unknown");
    assert_eq!(json["id"], "ab".repeat(32));
}

/// An auditor recomputes every row of an `audit export` outside Postgres, with a
/// program that shares no code with the relayer or the database
/// (`schema/audit/recompute_row_hashes.py`, following `docs/schema.md`), and a row
/// altered in the export is named.
#[test]
fn an_audit_export_is_recomputed_outside_postgres() {
    use isthmus_schema::{
        BlockRef, CursorKey, FinalityMode, Ledger, LedgerKind, MessageStatus, RejectedEntry, Stage,
        Store,
    };
    let db = TempDatabase::create();
    let migrate = isthmus()
        .args(["db", "migrate", "--database-url", &db.url])
        .output()
        .expect("runs");
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    db.runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
        let store = Store::new(pool.clone());
        for (id, name) in [(1, "evm-a"), (2, "evm-b")] {
            store
                .upsert_ledger(&Ledger {
                    id,
                    name: name.into(),
                    kind: LedgerKind::Evm,
                    finality: FinalityMode::FinalizedTag,
                })
                .await
                .expect("ledger");
        }
        let block = BlockRef {
            number: 7,
            hash: [0x07; 32],
        };
        let messages: Vec<_> = (0..2u64)
            .map(|nonce| {
                let m = isthmus_protocol::Message {
                    nonce,
                    origin: 1,
                    sender: isthmus_protocol::Address32([0x11; 32]),
                    destination: 2,
                    recipient: isthmus_protocol::Address32::from_evm([0x22; 20]),
                    deadline: 0,
                    body: "Zürich → Genève".as_bytes().to_vec(),
                };
                isthmus_schema::NewMessage::from_protocol(&m, m.id(), block, Some([0x33; 32]))
            })
            .collect();
        let key = CursorKey {
            ledger: 1,
            destination: None,
            stage: Stage::Observe,
        };
        let rejected = RejectedEntry {
            block,
            tx_hash: None,
            index: 4,
            reason: "payload \"short\" — 3 bytes\n\tand a control \u{1} character".into(),
            raw: vec![1, 2, 3],
        };
        store
            .record_observed_with_rejected(key, block, &messages, &[rejected], "bank-a/1")
            .await
            .expect("observed");
        store
            .transition(
                messages[0].id,
                MessageStatus::Observed,
                MessageStatus::Verified,
                &serde_json::json!({
                    "checkpoint_digest": "0xab",
                    "nested": {"k": [1, null, true, false], "ß": "Zürich", "a": {}},
                    "count": 12345678901234567890u64,
                }),
                "bank-a/1",
            )
            .await
            .expect("transition");
        // Numbers as an operator tool might write them: Postgres keeps `1.50` and
        // writes `1e3` as 1000; the hash covers that text.
        sqlx::query(
            "INSERT INTO lifecycle_log (event, evidence, actor) \
             VALUES ('operator', '{\"amount\": 1.50, \"limit\": 1e3, \"ratio\": -0.25}', 'ops')",
        )
        .execute(&pool)
        .await
        .expect("operator row");
        pool.close().await;
    });
    let export = isthmus()
        .args(["audit", "export", "--format", "json", "--config"])
        .arg(examples().join("devnet.toml"))
        .env("ISTHMUS_DATABASE__URL", &db.url)
        .output()
        .expect("runs");
    assert!(export.status.success(), "{}", stderr(&export));
    let text = stdout(&export);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("\"message_id\":null"), "{text}");

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/audit/recompute_row_hashes.py");
    let recompute = |export: &str| {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("log.jsonl");
        std::fs::write(&file, export).expect("write");
        Command::new("python3")
            .arg(&script)
            .arg(&file)
            .output()
            .expect("python3 runs")
    };
    let checked = recompute(&text);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}{}",
        stdout(&checked),
        stderr(&checked)
    );
    assert!(
        stdout(&checked).contains("5 rows (seq 1..5): every row_hash recomputed and equal"),
        "{}",
        stdout(&checked)
    );

    // One character of one row's evidence changed in the export: that row is named.
    let tampered = text.replacen("\"Zürich\"", "\"Zurich\"", 1);
    assert_ne!(tampered, text, "the export holds the value to alter");
    let checked = recompute(&tampered);
    assert_eq!(checked.status.code(), Some(1), "{}", stdout(&checked));
    assert!(
        stdout(&checked).contains("row 4: row_hash"),
        "{}",
        stdout(&checked)
    );
}

#[test]
fn devnet_certificates_makes_a_ca_and_a_certificate_per_member_that_validate() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("tls");
    let output = isthmus()
        .args(["devnet", "certificates", "--config"])
        .arg(examples().join("devnet.toml"))
        .arg("--out")
        .arg(&out)
        .args(["--name", "stranger"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    for name in [
        "ca.pem",
        "bank-a.pem",
        "bank-a.key",
        "bank-b.pem",
        "bank-c.key",
        "stranger.pem",
    ] {
        assert!(listed.contains(name), "{listed}");
        assert!(out.join(name).exists(), "{name}");
    }
    let mode = std::fs::metadata(out.join("bank-b.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "a private key is readable by its owner only"
    );
    // bank-b runs with the new set: valid.
    let with_new_set = |member: &str| {
        isthmus()
            .args(["config", "validate", "--config"])
            .arg(examples().join("devnet.toml"))
            .envs(env_file("devnet-bank-b.env"))
            .env(
                "ISTHMUS_ATTESTATION__CERTIFICATE",
                out.join(format!("{member}.pem")),
            )
            .env(
                "ISTHMUS_ATTESTATION__KEY__FILE",
                out.join(format!("{member}.key")),
            )
            .env("ISTHMUS_ATTESTATION__CA", out.join("ca.pem"))
            .output()
            .expect("runs")
    };
    let output = with_new_set("bank-b");
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    // The stranger's certificate names no member: refused for bank-b.
    let output = with_new_set("stranger");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("not valid for name \"bank-b\""), "{text}");
    // The examples' CA (of the same name) did not issue the new certificates.
    let output = isthmus()
        .args(["config", "validate", "--config"])
        .arg(examples().join("devnet.toml"))
        .envs(env_file("devnet-bank-b.env"))
        .env("ISTHMUS_ATTESTATION__CERTIFICATE", out.join("bank-b.pem"))
        .env("ISTHMUS_ATTESTATION__KEY__FILE", out.join("bank-b.key"))
        .output()
        .expect("runs");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("under the CA") && text.contains("BadSignature"),
        "{text}"
    );
}
