//! The admin CLI, run as the real `auth-server` binary against a database that a running token
//! service shares.

#[macro_use]
mod support;
mod api_key_clients;
mod certificate_clients;
mod certificate_rotation;
mod clients_as_code;
mod key_clients;
mod operator_slips;

use std::process::Command;

use clap::CommandFactory;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Backend, TestAuth, TestDb, http, spawn_auth_server};

on_both_backends!(
    the_cli_round_trip_creates_uses_disables_and_audits_a_client,
    cli_errors_are_one_line_and_non_zero,
    key_commands_refuse_clearly_and_warn_about_loose_permissions,
    secret_rotation_and_token_revocation_from_the_cli,
    keys_rotate_alg_rs256_publishes_a_2048_bit_rsa_key_and_later_rotations_keep_rsa,
);

/// Runs `auth-server ARGS` against the test's database and master key.
fn cli(app: &TestAuth, args: &[&str]) -> std::process::Output {
    cli_on(&app.db, args)
}

/// Runs `auth-server ARGS` against `db` and its master key file, with no token service.
fn cli_on(db: &TestDb, args: &[&str]) -> std::process::Output {
    cli_command(db, args).output().expect("run auth-server")
}

/// The command [`cli_on`] runs, for a test that sets more of its environment.
fn cli_command(db: &TestDb, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auth-server"));
    command
        .args(args)
        .env("AUTH_DATABASE_URL", &db.url)
        .env("AUTH_MASTER_KEY_FILE", db.master_key_path())
        .env_remove("RUST_LOG");
    command
}

/// Runs `auth-server ARGS` with an empty temporary folder for its database and master key, for
/// help and for refusals that must come before anything is opened or created. The folder is
/// returned so a test can check that nothing appeared in it.
fn cli_without_data(args: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(args)
        .env(
            "AUTH_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("auth.db").display()),
        )
        .env("AUTH_MASTER_KEY_FILE", dir.path().join("master.key"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run auth-server");
    (output, dir)
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

async fn token_status(app: &TestAuth, id: &str, secret: &str) -> StatusCode {
    let status = http()
        .post(app.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status();
    // The server batches its audit events (up to 50 ms); store them before the next CLI command
    // writes its own, so the trail's order is the order of events.
    app.state.audit.flush().await;
    status
}

/// The status the token endpoint settles on: a change made by the CLI (another process) reaches
/// the running server's in-memory clients within its reload interval (200 ms in tests). Polled
/// until `want` or a 30 s deadline for a hang, so a slow machine only makes it wait longer.
async fn settled_token_status(
    app: &TestAuth,
    id: &str,
    secret: &str,
    want: StatusCode,
) -> StatusCode {
    let began = std::time::Instant::now();
    loop {
        let status = token_status(app, id, secret).await;
        if status == want || began.elapsed() > std::time::Duration::from_secs(30) {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn the_cli_round_trip_creates_uses_disables_and_audits_a_client(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let created = json_of(&cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "Acme ERP",
            "--partner",
            "acme",
            "--scopes",
            "orders:read catalog:read",
            "--access-ttl",
            "300",
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pcs_"));
    assert_eq!(created["partner_id"], "acme");
    assert_eq!(created["scopes"], "catalog:read orders:read");
    assert_eq!(created["audiences"], serde_json::json!(["partner-api"]));
    assert_eq!(created["access_token_ttl"], 300);

    // The running server uses the new client at once.
    assert_eq!(token_status(&app, &id, &secret).await, StatusCode::OK);

    let listed = json_of(&cli(&app, &["client", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        listed[0].get("client_secret").is_none(),
        "a listing never shows secrets"
    );
    let table = String::from_utf8(cli(&app, &["client", "list"]).stdout).unwrap();
    assert!(table.contains("CLIENT ID") && table.contains(&id) && !table.contains(&secret));

    let updated = json_of(&cli(
        &app,
        &[
            "client",
            "update",
            &id,
            "--scopes",
            "catalog:read",
            "--json",
        ],
    ));
    assert_eq!(updated["scopes"], "catalog:read");
    let disabled = json_of(&cli(&app, &["client", "disable", &id, "--json"]));
    assert_eq!(disabled["disabled"], true);
    // The CLI's change moved the client generation, so a reload brings it in.
    app.sync_clients().await;
    assert_eq!(
        token_status(&app, &id, &secret).await,
        StatusCode::UNAUTHORIZED
    );
    json_of(&cli(&app, &["client", "enable", &id, "--json"]));
    assert_eq!(token_status(&app, &id, &secret).await, StatusCode::OK);

    let keys = json_of(&cli(&app, &["keys", "list", "--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 2, "active and pending");
    let rotated = json_of(&cli(
        &app,
        &["keys", "rotate", "--alg", "EdDSA", "--force", "--json"],
    ));
    let pending = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "pending")
        .unwrap();
    assert_eq!(rotated["active"], pending["kid"]);

    app.state.audit.flush().await;
    let trail = json_of(&cli(&app, &["audit", "--client", &id, "--json"]));
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.issue",
            "client.enable",
            "client.auth_failed",
            "client.disable",
            "client.update",
            "token.issue",
            "client.create",
        ]
    );
    let all = json_of(&cli(&app, &["audit", "--limit", "100", "--json"]));
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "key.rotate")
    );
    let raw = serde_json::to_string(&all).unwrap();
    assert!(
        !raw.contains(&secret),
        "the audit trail never holds a secret"
    );

    json_of(&cli(&app, &["client", "delete", &id, "--json"]));
    // No explicit reload: the server's own refresher picks the deletion up.
    assert_eq!(
        settled_token_status(&app, &id, &secret, StatusCode::UNAUTHORIZED).await,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

async fn cli_errors_are_one_line_and_non_zero(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let cases: [(&[&str], &str); 9] = [
        (
            &["client", "show", "cl_doesnotexist"],
            "no client with id cl_doesnotexist",
        ),
        (
            &[
                "client",
                "create",
                "--name",
                "x",
                "--partner",
                "Bad Partner",
                "--scopes",
                "a",
            ],
            "partner id",
        ),
        (
            &[
                "client",
                "create",
                "--name",
                "x",
                "--partner",
                "acme",
                "--scopes",
                "a  b",
            ],
            "--scopes",
        ),
        (
            &[
                "client",
                "create",
                "--name",
                "x",
                "--partner",
                "acme",
                "--scopes",
                "a",
                "--access-ttl",
                "0",
            ],
            "lifetime",
        ),
        (&["client", "update", "cl_x"], "nothing to update"),
        (&["client", "disable", "bad:id"], "not a client id"),
        (&["client", "show", "~decoy~"], "not a client id"),
        (&["keys", "rotate", "--alg", "HS256"], "--alg"),
        (&["audit", "--limit", "0"], "--limit"),
    ];
    for (args, expected) in cases {
        let output = cli(&app, args);
        assert!(!output.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {stderr}"
        );
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    app.stop().await;
}

fn failure_line(output: &std::process::Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal, got: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Writes `text` to `name` in the test's folder and returns the path, for a `--…-file` flag.
fn write_file(app: &TestAuth, name: &str, text: &str) -> String {
    write_file_in(&app.db, name, text)
}

/// [`write_file`] in the folder of a database without a token service.
fn write_file_in(db: &TestDb, name: &str, text: &str) -> String {
    let path = db.dir.path().join(name);
    std::fs::write(&path, text).expect("write a test file");
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// How many clients `client list` shows.
fn client_count(app: &TestAuth) -> usize {
    json_of(&cli(app, &["client", "list", "--json"]))
        .as_array()
        .expect("a list")
        .len()
}

/// The actions of the audit trail about `client_id`, newest first, once the server has stored
/// its own events.
async fn audit_actions(app: &TestAuth, client_id: &str) -> Vec<String> {
    app.state.audit.flush().await;
    json_of(&cli(app, &["audit", "--client", client_id, "--json"]))
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| e["action"].as_str().expect("an action").to_owned())
        .collect()
}

async fn key_commands_refuse_clearly_and_warn_about_loose_permissions(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    // Right after the first start the pending key is brand new: rotating now is refused.
    let refused = failure_line(&cli(&app, &["keys", "rotate"]));
    assert!(
        refused.contains("too early") && refused.contains("--force") && refused.contains("in "),
        "{refused}"
    );
    let unknown = failure_line(&cli(&app, &["keys", "revoke", "no-such-kid"]));
    assert!(
        unknown.contains("no signing key with kid no-such-kid"),
        "{unknown}"
    );
    let nothing = cli(&app, &["keys", "purge"]);
    assert!(nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("nothing to purge"));

    // Loose permissions on the master key file are warned about, and the command still runs.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            app.db.master_key_path(),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let rotated = cli(&app, &["keys", "rotate", "--force", "--json"]);
        assert!(
            rotated.status.success(),
            "{}",
            String::from_utf8_lossy(&rotated.stderr)
        );
        let warning = String::from_utf8_lossy(&rotated.stderr);
        assert!(warning.contains("readable by group or others"), "{warning}");
        std::fs::set_permissions(
            app.db.master_key_path(),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let purged = json_of(&cli(&app, &["keys", "purge", "--json"]));
    assert_eq!(purged["purged"], serde_json::json!([]));
    assert!(
        purged["next_purge_at"].is_i64(),
        "a retired key becomes purgeable later"
    );

    // Import an RSA key made elsewhere, then revoke the pending key it became: its replacement is
    // an RSA key too.
    let pem = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/rsa-2048-test-only.pem"
    );
    let imported = json_of(&cli(&app, &["keys", "import", "--pem", pem, "--json"]));
    let kid = imported["pending"].as_str().unwrap().to_owned();
    let listed = json_of(&cli(&app, &["keys", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str() && k["alg"] == "RS256" && k["state"] == "pending")
    );
    let revoked = json_of(&cli(&app, &["keys", "revoke", &kid, "--json"]));
    assert_eq!(revoked["was"], "pending");
    let replacement = revoked["pending"].as_str().unwrap();
    let listed = json_of(&cli(&app, &["keys", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == replacement && k["alg"] == "RS256" && k["state"] == "pending")
    );

    // Master-key rotation through the CLI: the new file opens everything, the old one nothing.
    let new_key = app.db.dir.path().join("rotated.key");
    let rewrapped = json_of(&cli(
        &app,
        &[
            "keys",
            "rewrap",
            "--new-master-key-file",
            new_key.to_str().unwrap(),
            "--json",
        ],
    ));
    let listed = json_of(&cli(&app, &["keys", "list", "--json"]));
    assert_eq!(rewrapped["rewrapped"], listed.as_array().unwrap().len());
    // The old file no longer opens the keys: a command that needs a private key says so.
    let stale = failure_line(&cli(&app, &["keys", "rotate", "--force"]));
    assert!(stale.contains("master key cannot open"), "{stale}");
    app.stop().await;
}

async fn secret_rotation_and_token_revocation_from_the_cli(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let created = json_of(&cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "n",
            "--partner",
            "acme",
            "--scopes",
            "orders:read",
            "--json",
        ],
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let old = created["client_secret"].as_str().unwrap().to_owned();
    let body: serde_json::Value = http()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&old))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    let rotated = json_of(&cli(
        &app,
        &["client", "rotate-secret", &id, "--grace", "0", "--json"],
    ));
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("pcs_") && new != old);
    assert_eq!(token_status(&app, &id, &new).await, StatusCode::OK);
    assert_eq!(
        token_status(&app, &id, &old).await,
        StatusCode::UNAUTHORIZED
    );
    let table = String::from_utf8(cli(&app, &["client", "rotate-secret", &id]).stdout).unwrap();
    assert!(table.contains("shown only once") && table.contains("works until"));

    let revoked = json_of(&cli(&app, &["tokens", "revoke", "--client", &id, "--json"]));
    assert!(revoked["revoked_refresh_tokens"].as_u64().unwrap() >= 1);
    let refused = http()
        .post(app.url("/oauth2/token"))
        .basic_auth(&id, Some(&new))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let unknown = cli(&app, &["tokens", "revoke", "--client", "cl_nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no client with id cl_nobody"));
    app.stop().await;
}

#[test]
fn every_command_and_every_flag_is_described_in_its_help() {
    let mut root = auth_server::cli::Cli::command();
    // Building propagates the global flags and adds `--help`, as the binary sees them.
    root.build();
    check_help(&mut Vec::new(), &root);
}

/// Runs `auth-server PATH --help` and checks that it succeeds, opens with a description of the
/// command, and describes every flag and argument the command takes; then does the same for
/// each subcommand.
fn check_help(path: &mut Vec<String>, command: &clap::Command) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let (output, _dir) = cli_without_data(&args);
    assert!(output.status.success(), "{args:?} failed");
    let help = String::from_utf8(output.stdout).unwrap();
    let first = help.lines().next().unwrap_or_default();
    assert!(
        !first.trim().is_empty() && !first.starts_with("Usage:"),
        "{args:?} does not say what the command does:\n{help}"
    );
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        let spec = match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => format!("<{}>", arg.get_id().as_str().to_uppercase()),
        };
        assert!(
            describes(&help, &spec),
            "{args:?}: {spec} has no description:\n{help}"
        );
    }
    // clap's own `help` subcommand takes no `--help`.
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        path.push(sub.get_name().to_owned());
        check_help(path, sub);
        path.pop();
    }
}

/// Whether `help` describes the flag or argument `spec`: after it on the line that names it, or
/// on the more indented line below (clap's long layout).
fn describes(help: &str, spec: &str) -> bool {
    let lines: Vec<&str> = help.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let text = line.trim_start();
        // `-h, --help` names its short form first.
        let text = match text.split_once(", ") {
            Some((short, rest)) if short.len() == 2 && short.starts_with('-') => rest,
            _ => text,
        };
        let Some(rest) = text.strip_prefix(spec) else {
            return false;
        };
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return false;
        }
        // The value name follows the flag after one space; the description follows after two.
        let inline = rest
            .split_once("  ")
            .map_or("", |(_, description)| description.trim());
        let indent = line.len() - line.trim_start().len();
        !inline.is_empty()
            || lines.get(i + 1).is_some_and(|next| {
                let below = next.trim_start();
                !below.is_empty() && next.len() - below.len() > indent && !below.starts_with('-')
            })
    })
}

#[test]
fn keys_rotate_refuses_an_unknown_algorithm_in_one_line_before_creating_anything() {
    // With --force and no master key file, an accepted algorithm would start over under a new
    // master key: the refusal must come first.
    let (output, dir) = cli_without_data(&["keys", "rotate", "--alg", "HS256", "--force"]);
    let refused = failure_line(&output);
    assert!(
        refused.starts_with("error: ")
            && refused.contains("'HS256'")
            && refused.contains("[possible values: ES256, EdDSA, RS256]"),
        "{refused}"
    );
    assert!(
        !dir.path().join("master.key").exists() && !dir.path().join("auth.db").exists(),
        "a refused command creates nothing"
    );
    let (output, _dir) = cli_without_data(&["keys", "rotate", "--alg", "es256"]);
    assert!(failure_line(&output).contains("[possible values: ES256, EdDSA, RS256]"));
}

#[test]
fn a_cache_horizon_shorter_than_the_max_age_is_refused_before_anything_is_created() {
    let (output, dir) = cli_without_data(&[
        "keys",
        "list",
        "--auth-jwks-max-age",
        "300",
        "--auth-jwks-cache-horizon",
        "60",
    ]);
    let refused = failure_line(&output);
    assert!(
        refused.starts_with("error: ") && refused.contains("AUTH_JWKS_CACHE_HORIZON (60 s)"),
        "{refused}"
    );
    assert!(!dir.path().join("auth.db").exists());
}

/// The public RSA modulus of a JWK, in bits (leading zero bits not counted).
fn modulus_bits(jwk: &Value) -> usize {
    use base64::Engine;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("an RSA JWK has n"))
        .unwrap();
    let first = n.iter().position(|&b| b != 0).unwrap();
    (n.len() - first) * 8 - n[first].leading_zeros() as usize
}

/// The server's JWKS entry for `kid`, once the server has reloaded its keys (every 200 ms).
async fn published(app: &TestAuth, kid: &str) -> Value {
    let began = std::time::Instant::now();
    loop {
        let jwks: Value = http()
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(jwk) = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
        {
            return jwk.clone();
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(30),
            "{kid} was never published: {jwks}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn keys_rotate_alg_rs256_publishes_a_2048_bit_rsa_key_and_later_rotations_keep_rsa(
    backend: Backend,
) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    // The server generates the RSA key itself: no PEM, no openssl.
    let began = std::time::Instant::now();
    let rotated = json_of(&cli(
        &app,
        &["keys", "rotate", "--alg", "RS256", "--force", "--json"],
    ));
    eprintln!("keys rotate --alg RS256 took {:?}", began.elapsed());
    assert_eq!(rotated["alg"], "RS256");
    let rsa_kid = rotated["pending"].as_str().unwrap().to_owned();
    let jwk = published(&app, &rsa_kid).await;
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["e"], "AQAB");
    assert!(modulus_bits(&jwk) >= 2048, "{jwk}");
    assert_eq!(modulus_bits(&jwk), 2048);
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(jwk.get(private).is_none(), "{private} published");
    }
    let listed = json_of(&cli(&app, &["keys", "list", "--json"]));
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == rsa_kid.as_str()
                && k["alg"] == "RS256"
                && k["state"] == "pending")
    );

    // The next rotation, without --alg, promotes the RSA key and keeps RSA for its successor.
    let text = cli(&app, &["keys", "rotate", "--force"]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("active:  {rsa_kid}")), "{text}");
    assert!(text.contains("(RS256)"), "{text}");
    let listed = json_of(&cli(&app, &["keys", "list", "--json"]));
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] != "retired")
        .map(|k| (k["state"].as_str().unwrap(), k["alg"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 2, "{listed}");
    assert!(states.iter().all(|(_, alg)| *alg == "RS256"), "{listed}");

    // The running server signs RS256 tokens with it once it has reloaded.
    let id_secret = json_of(&cli(
        &app,
        &[
            "client",
            "create",
            "--name",
            "Gateway",
            "--partner",
            "acme",
            "--scopes",
            "orders:read",
            "--json",
        ],
    ));
    let (id, secret) = (
        id_secret["client_id"].as_str().unwrap(),
        id_secret["client_secret"].as_str().unwrap(),
    );
    let began = std::time::Instant::now();
    let header = loop {
        app.sync_clients().await;
        let response: Value = http()
            .post(app.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = response["access_token"].as_str().unwrap_or_default();
        let header: Value = token
            .split('.')
            .next()
            .and_then(|h| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h)
                    .ok()
            })
            .and_then(|h| serde_json::from_slice(&h).ok())
            .unwrap_or_default();
        if header["kid"] == rsa_kid.as_str() {
            break header;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(30),
            "{response}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(header["alg"], "RS256");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_waits_for_the_cache_horizon_not_only_the_max_age() {
    let app = spawn_auth_server(Backend::Sqlite).await.unwrap();
    // The pending key has been published for 10 minutes: twice the default max-age (300 s).
    app.db.age_pending_key(600).await;
    let before = json_of(&cli(&app, &["keys", "list", "--json"]));
    // API Gateway may cache the key set for two hours: the CLI, told so by the environment,
    // refuses, and says how long is left.
    let refused = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["keys", "rotate"])
        .env("AUTH_DATABASE_URL", &app.db.url)
        .env("AUTH_MASTER_KEY_FILE", app.db.master_key_path())
        .env("AUTH_JWKS_CACHE_HORIZON", "7200")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let refused = failure_line(&refused);
    assert!(refused.contains("too early"), "{refused}");
    let wait: i64 = refused
        .split("(in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {refused}"));
    // 7200 s of horizon plus the CLI's reload interval and slack, less the 600 s already passed.
    assert!((6590..=6610).contains(&wait), "{refused}");
    assert_eq!(json_of(&cli(&app, &["keys", "list", "--json"])), before);
    // With the horizon at its default (the max-age), the same rotation is safe now.
    let rotated = json_of(&cli(&app, &["keys", "rotate", "--json"]));
    assert!(rotated["active"].is_string() && rotated["retired"].is_string());
    app.stop().await;
}

#[test]
fn keys_import_refuses_an_unknown_algorithm_and_names_the_known_ones() {
    let (output, _dir) =
        cli_without_data(&["keys", "import", "--alg", "nonsense", "--pem", "k.pem"]);
    let refused = failure_line(&output);
    assert!(
        refused.starts_with("error: ")
            && refused.contains("'nonsense'")
            && refused.contains("[possible values: ES256, EdDSA, RS256]"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_in_the_environment_is_used_and_never_replaced() {
    let app = spawn_auth_server(Backend::Sqlite).await.unwrap();
    let key = std::fs::read_to_string(app.db.master_key_path()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let missing_file = elsewhere.path().join("auth-master.key");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .args(args)
            .env("AUTH_DATABASE_URL", &app.db.url)
            .env("AUTH_MASTER_KEY", key.trim())
            .env("AUTH_MASTER_KEY_FILE", &missing_file)
            .env_remove("RUST_LOG")
            .output()
            .expect("run auth-server")
    };
    // A forced rotation with the key in the environment and no key file is a rotation, not the
    // recovery from a lost master key: the stored keys stay sealed under the same key.
    let rotated = json_of(&run(&["keys", "rotate", "--force", "--json"]));
    assert!(rotated["active"].is_string(), "{rotated}");
    assert!(!missing_file.exists(), "no new master key file was made");
    let listed = json_of(&run(&["keys", "list", "--json"]));
    assert!(listed.as_array().is_some_and(|keys| keys.len() >= 2));
    // The running server opens the new keys with the master key it has always had. (Its own
    // reload, every 200 ms here, may have picked them up already: then this finds nothing new,
    // and the active key below says the reload happened.)
    app.state
        .keys
        .refresh(&app.state.db, &app.state.master)
        .await
        .expect("the new keys open with the same master key");
    let active = app.state.keys.get();
    assert_eq!(
        active.active().map(|k| k.kid().to_owned()),
        rotated["active"].as_str().map(str::to_owned)
    );
    // A value that is not a master key is refused without being repeated.
    let bad = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["keys", "list"])
        .env("AUTH_DATABASE_URL", &app.db.url)
        .env("AUTH_MASTER_KEY", "not-a-key-hunter2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    app.stop().await;
}
