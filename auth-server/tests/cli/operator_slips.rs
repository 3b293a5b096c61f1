//! The slips an operator makes at the command line, caught: a comma between scopes, a character
//! that `client list` would print invisibly, a partner id or scope nobody else has (accepted,
//! with a warning), and errors that arrive as exactly one line whatever a library logs.

use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::{Backend, TestDb, test_db};
use crate::{cli_command, cli_on, failure_line, json_of, write_file_in};

on_both_backends!(
    a_scope_with_a_comma_is_refused_with_the_spelling_meant,
    names_and_scopes_with_control_or_format_characters_are_refused,
    a_partner_or_scope_no_other_client_has_is_accepted_with_a_warning,
    a_clients_file_warns_about_partners_and_scopes_no_other_client_has,
);

/// `client create --name NAME --partner PARTNER --scopes SCOPES --json`.
fn create(db: &TestDb, name: &str, partner: &str, scopes: &str) -> std::process::Output {
    cli_on(
        db,
        &[
            "client",
            "create",
            "--name",
            name,
            "--partner",
            partner,
            "--scopes",
            scopes,
            "--json",
        ],
    )
}

/// A created client's id, asserting that nothing was written on stderr.
fn created_quietly(output: &std::process::Output) -> String {
    let doc = json_of(output);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "no warning");
    assert_eq!(doc["warnings"], json!([]));
    doc["client_id"].as_str().expect("a client id").to_owned()
}

/// The lines of stderr.
fn stderr_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn client_count(db: &TestDb) -> usize {
    json_of(&cli_on(db, &["client", "list", "--json"]))
        .as_array()
        .expect("a list")
        .len()
}

async fn a_scope_with_a_comma_is_refused_with_the_spelling_meant(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let refused = failure_line(&create(&db, "Acme ERP", "acme", "orders:read,catalog:read"));
    assert_eq!(
        refused,
        "error: --scopes: scope \"orders:read,catalog:read\" contains a comma: scopes are \
         separated by spaces, as in \"orders:read catalog:read\"\n"
    );
    // With a space after the comma the offending value is the one holding it.
    let refused = failure_line(&create(
        &db,
        "Acme ERP",
        "acme",
        "orders:read, catalog:read",
    ));
    assert!(
        refused.contains("scope \"orders:read,\" contains a comma")
            && refused.contains("as in \"orders:read catalog:read\""),
        "{refused}"
    );
    assert_eq!(client_count(&db), 0, "nothing was created");

    let id = created_quietly(&create(&db, "Acme ERP", "acme", "orders:read"));
    let refused = failure_line(&cli_on(
        &db,
        &[
            "client",
            "update",
            &id,
            "--scopes",
            "orders:read,catalog:read",
        ],
    ));
    assert!(
        refused.starts_with("error: --scopes: scope \"orders:read,catalog:read\" contains a comma")
            && refused.contains("scopes are separated by spaces"),
        "{refused}"
    );
    let shown = json_of(&cli_on(&db, &["client", "show", &id, "--json"]));
    assert_eq!(shown["scopes"], "orders:read", "the update changed nothing");

    // A clients file names its entry and field, and the spelling a file uses.
    let file = write_file_in(
        &db,
        "clients.toml",
        "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"orders:read,catalog:read\"]\n",
    );
    for command in ["plan", "apply"] {
        let refused = failure_line(&cli_on(&db, &["clients", command, "--file", &file]));
        assert_eq!(
            refused,
            format!(
                "error: {file}:3: clients.acme-erp.scopes: scope \"orders:read,catalog:read\" \
                 contains a comma: write one scope per string, as in [\"orders:read\", \
                 \"catalog:read\"]\n"
            )
        );
    }
    assert_eq!(client_count(&db), 1, "the apply created nothing");
}

async fn names_and_scopes_with_control_or_format_characters_are_refused(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let id = created_quietly(&create(&db, "Acme ERP", "acme", "orders:read"));
    // A right-to-left override, a bell, a zero-width space: each invisible in `client list`.
    for (c, code) in [
        ('\u{202E}', "U+202E"),
        ('\u{0007}', "U+0007"),
        ('\u{200B}', "U+200B"),
    ] {
        let name = format!("Acme{c}ERP");
        let scopes = format!("orders:read{c}");
        let refusals = [
            create(&db, &name, "acme", "orders:read"),
            create(&db, "Acme ERP", "acme", &scopes),
            cli_on(&db, &["client", "update", &id, "--name", &name]),
            cli_on(&db, &["client", "update", &id, "--scopes", &scopes]),
        ];
        for refused in &refusals {
            let line = failure_line(refused);
            assert!(
                line.starts_with("error: ")
                    && line.contains(&format!("contains {code}, an invisible control or format"))
                    && !line.contains(c),
                "{code}: named, never printed raw: {line:?}"
            );
        }
        // Written as TOML escapes: the file holds no raw control character.
        let escaped = format!("\\u{:04X}", u32::from(c));
        let file = write_file_in(
            &db,
            "clients.toml",
            &format!(
                "[clients.\"Acme{escaped}ERP\"]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n"
            ),
        );
        let line = failure_line(&cli_on(&db, &["clients", "plan", "--file", &file]));
        assert!(
            line.contains(":1: clients.Acme") && line.contains(code) && !line.contains(c),
            "{line:?}"
        );
        let file = write_file_in(
            &db,
            "clients.toml",
            &format!(
                "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"orders:read{escaped}\"]\n"
            ),
        );
        let line = failure_line(&cli_on(&db, &["clients", "plan", "--file", &file]));
        assert!(
            line.contains(":3: clients.acme-erp.scopes: ") && line.contains(code),
            "{line:?}"
        );
    }
    assert_eq!(client_count(&db), 1, "nothing was created");
    let shown = json_of(&cli_on(&db, &["client", "show", &id, "--json"]));
    assert_eq!(
        (&shown["name"], &shown["scopes"]),
        (&json!("Acme ERP"), &json!("orders:read"))
    );
}

async fn a_partner_or_scope_no_other_client_has_is_accepted_with_a_warning(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // The first client has nothing to be compared with: no warning about each of its scopes.
    created_quietly(&create(&db, "Acme ERP", "acme", "orders:read catalog:read"));
    // A partner and scopes another client has: none either.
    let second = created_quietly(&create(&db, "Acme shop", "acme", "catalog:read"));

    let typo = create(&db, "Acme typo", "acme-typo", "orders:read ordrs:read");
    let doc = json_of(&typo);
    assert_eq!(
        stderr_lines(&typo),
        [
            "warning: no other client has partner \"acme-typo\"",
            "warning: no other client has scope \"ordrs:read\"",
        ]
    );
    assert_eq!(
        doc["warnings"],
        json!([
            "no other client has partner \"acme-typo\"",
            "no other client has scope \"ordrs:read\"",
        ])
    );
    assert_eq!(
        (&doc["partner_id"], &doc["scopes"]),
        (&json!("acme-typo"), &json!("orders:read ordrs:read")),
        "accepted as given"
    );

    // An update warns about the scopes it adds that no other client has, in text output too.
    let update = cli_on(
        &db,
        &[
            "client",
            "update",
            &second,
            "--scopes",
            "catalog:read orders:read invoices:write",
        ],
    );
    assert!(
        update.status.success(),
        "{}",
        String::from_utf8_lossy(&update.stderr)
    );
    assert_eq!(
        stderr_lines(&update),
        ["warning: no other client has scope \"invoices:write\""]
    );
    assert!(String::from_utf8_lossy(&update.stdout).contains("CLIENT ID"));
    // Scopes it holds already are not looked at again, and other changes never warn.
    let update = json_of(&cli_on(
        &db,
        &[
            "client",
            "update",
            &second,
            "--scopes",
            "invoices:write catalog:read",
            "--json",
        ],
    ));
    assert_eq!(update["warnings"], json!([]));
    let renamed = cli_on(
        &db,
        &[
            "client",
            "update",
            &second,
            "--name",
            "Acme store",
            "--json",
        ],
    );
    assert_eq!(json_of(&renamed)["warnings"], json!([]));
    assert_eq!(String::from_utf8_lossy(&renamed.stderr), "");
}

async fn a_clients_file_warns_about_partners_and_scopes_no_other_client_has(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    created_quietly(&create(&db, "Acme ERP", "acme", "orders:read"));
    // Two new clients of a new partner share it; a scope of the CLI's client is known.
    let file = write_file_in(
        &db,
        "clients.toml",
        "[clients.globex-erp]\npartner = \"globex\"\nscopes = [\"orders:read\", \"shipments:read\"]\n\
         [clients.globex-shop]\npartner = \"globex\"\nscopes = [\"orders:read\", \"shipments:read\"]\n\
         [clients.initech]\npartner = \"initech\"\nscopes = [\"orders:read\", \"ordrs:write\"]\n",
    );
    let expected = [
        "clients.initech: no other client has partner \"initech\"",
        "clients.initech: no other client has scope \"ordrs:write\"",
    ];
    let plan = cli_on(&db, &["clients", "plan", "--file", &file, "--json"]);
    assert_eq!(json_of(&plan)["warnings"], json!(expected));
    let apply = cli_on(&db, &["clients", "apply", "--file", &file, "--json"]);
    let applied: Value = json_of(&apply);
    assert_eq!(applied["warnings"], json!(expected));
    assert_eq!(applied["created"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        stderr_lines(&apply),
        expected.map(|w| format!("warning: {w}"))
    );

    // A change warns about the scopes it adds, only those; an unchanged file says nothing.
    let file = write_file_in(
        &db,
        "clients.toml",
        "[clients.globex-erp]\npartner = \"globex\"\nscopes = [\"orders:read\", \"shipments:read\"]\n\
         [clients.globex-shop]\npartner = \"globex\"\nscopes = [\"orders:read\", \"returns:write\"]\n\
         [clients.initech]\npartner = \"initech\"\nscopes = [\"orders:read\", \"ordrs:write\"]\n",
    );
    let apply = cli_on(&db, &["clients", "apply", "--file", &file]);
    assert!(
        apply.status.success(),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert_eq!(
        stderr_lines(&apply),
        ["warning: clients.globex-shop: no other client has scope \"returns:write\""]
    );
    let again = cli_on(&db, &["clients", "apply", "--file", &file, "--json"]);
    assert_eq!(json_of(&again)["warnings"], json!([]));
    assert_eq!(String::from_utf8_lossy(&again.stderr), "");
}

/// While another process holds SQLite's write lock, a writing command fails after its wait with
/// one `error:` line: no log line of a library (sqlx's slow-statement WARN) before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_waiting_on_a_locked_database_fails_with_one_error_line() {
    let db = test_db(Backend::Sqlite).await.expect("SQLite");
    json_of(&cli_on(&db, &["migrate", "--json"]));
    let mut holder = sqlx::SqliteConnection::connect(&db.url)
        .await
        .expect("a connection of its own");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("the write lock");
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, detail) VALUES (0, 'test', 'test.lock', '{}')",
    )
    .execute(&mut holder)
    .await
    .expect("a write inside the transaction");

    let mut command = cli_command(
        &db,
        &[
            "client",
            "create",
            "--name",
            "Acme ERP",
            "--partner",
            "acme",
            "--scopes",
            "orders:read",
        ],
    );
    command.env("AUTH_DATABASE_WAIT", "1");
    let output = tokio::task::spawn_blocking(move || command.output().expect("run auth-server"))
        .await
        .unwrap();
    let line = failure_line(&output);
    assert!(line.starts_with("error: "), "{line}");
    assert!(
        !line.contains("WARN") && !line.contains("slow statement"),
        "{line}"
    );

    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    holder.close().await.unwrap();
    assert_eq!(client_count(&db), 0, "the refused command wrote nothing");
    created_quietly(&create(&db, "Acme ERP", "acme", "orders:read"));
}

/// A master key file that is missing or malformed is named once, each clause once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_file_errors_say_each_thing_once() {
    let db = test_db(Backend::Sqlite).await.expect("SQLite");
    let path = db.master_key_path();
    assert!(!path.exists());
    let refused = failure_line(&cli_on(&db, &["keys", "rotate"]));
    assert_eq!(
        refused,
        format!("error: master key file {} does not exist\n", path.display())
    );
    std::fs::write(&path, "not a key\n").unwrap();
    let refused = failure_line(&cli_on(&db, &["keys", "rotate"]));
    assert_eq!(
        refused,
        format!(
            "error: master key file {} is not base64url without padding (expected 43 \
             characters encoding 32 bytes)\n",
            path.display()
        )
    );
    std::fs::write(&path, "").unwrap();
    let refused = failure_line(&cli_on(&db, &["keys", "revoke", "some-kid"]));
    assert_eq!(
        refused,
        format!("error: master key file {} is empty\n", path.display())
    );
}
