//! Clients as code: `clients plan --file` and `clients apply --file`, run as the real binary
//! against a database a running token service shares. A file manages only the clients it
//! created; an apply is one transaction with one audit event per change.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::certificate_clients::cert;
use crate::support::{Backend, TestAuth, spawn_auth_server};
use crate::{cli, failure_line, json_of, settled_token_status, token_status, write_file};

on_both_backends!(
    apply_creates_the_files_clients_once_and_a_second_plan_is_empty,
    removing_an_entry_deletes_its_client_only_with_allow_delete,
    an_apply_that_fails_part_way_changes_nothing,
    two_concurrent_applies_create_each_client_once,
);

/// Writes the clients file (`clients.toml` in the test's folder) and returns its path.
fn clients_file(app: &TestAuth, text: &str) -> String {
    write_file(app, "clients.toml", text)
}

fn plan(app: &TestAuth, file: &str) -> Value {
    json_of(&cli(app, &["clients", "plan", "--file", file, "--json"]))
}

fn plan_text(app: &TestAuth, file: &str) -> String {
    let output = cli(app, &["clients", "plan", "--file", file]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn apply(app: &TestAuth, file: &str, more: &[&str]) -> std::process::Output {
    let mut args = vec!["clients", "apply", "--file", file];
    args.extend(more);
    cli(app, &args)
}

/// Every client as `client list --json` prints it, by id.
fn clients(app: &TestAuth) -> BTreeMap<String, Value> {
    json_of(&cli(app, &["client", "list", "--json"]))
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

fn show(app: &TestAuth, id: &str) -> Value {
    json_of(&cli(app, &["client", "show", id, "--json"]))
}

/// The whole audit trail the CLI wrote (the server's own events left out), oldest first.
async fn cli_audit(app: &TestAuth) -> Vec<Value> {
    app.state.audit.flush().await;
    let mut events: Vec<Value> = json_of(&cli(app, &["audit", "--limit", "10000", "--json"]))
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["actor"] == "cli")
        .cloned()
        .collect();
    events.reverse();
    events
}

/// `(action, client_id)` of each event.
fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["client_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// What `plan --json` prints when the clients match the file.
fn empty_plan() -> Value {
    json!({ "create": [], "update": [], "delete": [], "changes": {}, "warnings": [] })
}

/// The plan's three lists, without the field-by-field changes.
fn lists(plan: &Value) -> Value {
    json!({ "create": plan["create"], "update": plan["update"], "delete": plan["delete"] })
}

const TWO_CLIENTS: &str = r#"# Partners' clients, managed by `auth-server clients apply`.
[clients.acme-erp]
partner = "acme"
scopes = ["orders:read", "invoices:read"]
audiences = ["partner-api", "reports"]
access_ttl = 300

[clients.globex-mtls]
partner = "globex"
scopes = ["catalog:read"]
auth_method = "self_signed_tls_client_auth"
cert_files = ["globex.pem"]
refresh = false
"#;

async fn apply_creates_the_files_clients_once_and_a_second_plan_is_empty(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let globex = cert("globex-2026");
    // Relative to the clients file's folder, not to the working directory.
    write_file(&app, "globex.pem", &globex.cert_pem);
    let file = clients_file(&app, TWO_CLIENTS);

    let planned = plan(&app, &file);
    assert_eq!(
        lists(&planned),
        json!({ "create": ["acme-erp", "globex-mtls"], "update": [], "delete": [] })
    );
    let text = plan_text(&app, &file);
    assert!(text.contains("+ create acme-erp\n"), "{text}");
    assert!(
        text.contains("    scopes: \"invoices:read orders:read\"\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 2 to create, 0 to change, 0 to delete.\n"),
        "{text}"
    );
    assert!(!text.contains("pcs_"), "a plan shows no secret: {text}");
    assert!(clients(&app).is_empty(), "a plan changes nothing");

    let applied = json_of(&apply(&app, &file, &["--json"]));
    assert_eq!(applied["updated"], json!([]));
    assert_eq!(applied["deleted"], json!([]));
    let created = applied["created"].as_array().unwrap();
    assert_eq!(created.len(), 2, "{applied}");
    assert_eq!(created[0]["name"], "acme-erp");
    assert_eq!(created[1]["name"], "globex-mtls");
    let acme_id = created[0]["client_id"].as_str().unwrap().to_owned();
    let secret = created[0]["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pcs_"), "{secret}");
    assert_eq!(
        created[1]["client_secret"],
        Value::Null,
        "a certificate client has no secret"
    );
    let globex_id = created[1]["client_id"].as_str().unwrap().to_owned();

    // The clients carry the file's values, and the secret works at the running server.
    let acme = show(&app, &acme_id);
    assert_eq!(acme["name"], "acme-erp");
    assert_eq!(acme["partner_id"], "acme");
    assert_eq!(acme["scopes"], "invoices:read orders:read");
    assert_eq!(acme["audiences"], json!(["partner-api", "reports"]));
    assert_eq!(acme["access_token_ttl"], 300);
    assert_eq!(acme["refresh_enabled"], true);
    assert_eq!(acme["auth_method"], "client_secret_basic");
    let globex_shown = show(&app, &globex_id);
    assert_eq!(globex_shown["auth_method"], "self_signed_tls_client_auth");
    assert_eq!(globex_shown["refresh_enabled"], false);
    assert_eq!(globex_shown["audiences"], json!(["partner-api"]));
    assert_eq!(globex_shown["certs"][0]["thumbprint"], globex.x5t_s256());
    assert_eq!(
        settled_token_status(&app, &acme_id, &secret, StatusCode::OK).await,
        StatusCode::OK
    );

    // One audit event per created client, in the trail without the secret.
    let events = cli_audit(&app).await;
    assert_eq!(
        actions(&events),
        [
            ("client.create".to_owned(), acme_id.clone()),
            ("client.create".to_owned(), globex_id.clone()),
        ]
    );
    assert!(!serde_json::to_string(&events).unwrap().contains(&secret));
    assert_eq!(
        events[0]["detail"]
            .as_str()
            .map(|d| d.contains("\"managed_name\":\"acme-erp\"")),
        Some(true)
    );

    // Nothing left to do: the plan is empty, and so is a second apply.
    assert_eq!(plan(&app, &file), empty_plan());
    assert_eq!(
        plan_text(&app, &file),
        "No changes: the clients the file manages match it.\n"
    );
    let again = json_of(&apply(&app, &file, &["--json"]));
    assert_eq!(
        again,
        json!({ "created": [], "updated": [], "deleted": [], "changes": {}, "warnings": [] })
    );
    assert_eq!(
        cli_audit(&app).await.len(),
        2,
        "an empty apply records nothing"
    );

    // A change made with `client update` is drift: shown field by field, and put back.
    let output = cli(
        &app,
        &[
            "client",
            "update",
            &acme_id,
            "--scopes",
            "orders:read",
            "--name",
            "renamed by hand",
            "--access-ttl",
            "900",
        ],
    );
    assert!(output.status.success());
    let text = plan_text(&app, &file);
    assert_eq!(
        text,
        format!(
            "~ update acme-erp ({acme_id})\n    name: \"renamed by hand\" -> \"acme-erp\"\n    \
             scopes: \"orders:read\" -> \"invoices:read orders:read\"\n    \
             access_ttl: \"900\" -> \"300\"\nPlan: 0 to create, 1 to change, 0 to delete.\n"
        )
    );
    let drift = plan(&app, &file);
    assert_eq!(
        lists(&drift),
        json!({ "create": [], "update": ["acme-erp"], "delete": [] })
    );
    assert_eq!(
        drift["changes"]["acme-erp"][1],
        json!({ "field": "scopes", "from": "orders:read", "to": "invoices:read orders:read" })
    );
    let fixed = apply(&app, &file, &[]);
    let fixed_text = String::from_utf8(fixed.stdout).unwrap();
    assert!(fixed.status.success());
    assert!(
        fixed_text.starts_with(&format!("~ updated acme-erp ({acme_id})\n"))
            && fixed_text.contains("Apply complete: 0 created, 1 changed, 0 deleted.\n")
            && !fixed_text.contains("pcs_"),
        "{fixed_text}"
    );
    let acme = show(&app, &acme_id);
    assert_eq!(
        (&acme["name"], &acme["scopes"], &acme["access_token_ttl"]),
        (
            &json!("acme-erp"),
            &json!("invoices:read orders:read"),
            &json!(300)
        )
    );
    assert_eq!(plan(&app, &file)["update"], json!([]));
    let events = cli_audit(&app).await;
    assert_eq!(
        events.len(),
        4,
        "the hand update and the apply's one update"
    );
    assert_eq!(
        actions(&events[3..]),
        [("client.update".to_owned(), acme_id.clone())]
    );

    // The secret issued once still works: an update keeps the client's id and secret.
    assert_eq!(token_status(&app, &acme_id, &secret).await, StatusCode::OK);
    app.stop().await;
}

async fn removing_an_entry_deletes_its_client_only_with_allow_delete(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let file = clients_file(
        &app,
        "[clients.keep]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
         [clients.gone]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n",
    );
    let applied = json_of(&apply(&app, &file, &["--json"]));
    let ids: BTreeMap<&str, &str> = applied["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["client_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (keep, gone) = (ids["keep"].to_owned(), ids["gone"].to_owned());
    let gone_secret = applied["created"][0]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(applied["created"][0]["name"], "gone");

    // `gone` leaves the file, `keep` changes, `new` arrives.
    let file = clients_file(
        &app,
        "[clients.keep]\npartner = \"acme\"\nscopes = [\"orders:read\", \"catalog:read\"]\n\
         [clients.new]\npartner = \"globex\"\nscopes = [\"catalog:read\"]\n",
    );
    let planned = plan(&app, &file);
    assert_eq!(
        lists(&planned),
        json!({ "create": ["new"], "update": ["keep"], "delete": ["gone"] })
    );
    let text = plan_text(&app, &file);
    assert!(
        text.contains(&format!("- delete gone ({gone})\n")),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to create, 1 to change, 1 to delete.\n"),
        "{text}"
    );

    let before = clients(&app);
    let audit_before = cli_audit(&app).await;
    let refused = apply(&app, &file, &["--json"]);
    let line = failure_line(&refused);
    assert!(
        line.starts_with("error: apply would delete 1 client(s) no longer in ")
            && line.contains(&format!("gone ({gone})"))
            && line.contains("nothing was changed")
            && line.contains("--allow-delete"),
        "{line}"
    );
    assert!(
        refused.stdout.is_empty(),
        "no secret of a client not created"
    );
    assert_eq!(clients(&app), before, "nothing at all changed");
    assert_eq!(cli_audit(&app).await, audit_before);

    let applied = json_of(&apply(&app, &file, &["--allow-delete", "--json"]));
    assert_eq!(applied["updated"], json!(["keep"]));
    assert_eq!(applied["deleted"], json!(["gone"]));
    assert_eq!(applied["created"].as_array().unwrap().len(), 1);
    assert_eq!(applied["created"][0]["name"], "new");
    let new = applied["created"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = clients(&app);
    assert_eq!(
        after
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        [keep.clone(), new.clone()].into_iter().collect()
    );
    assert_eq!(after[&keep]["scopes"], "catalog:read orders:read");
    // One audit event per change, in the order applied.
    let events = cli_audit(&app).await;
    assert_eq!(
        actions(&events[audit_before.len()..]),
        [
            ("client.create".to_owned(), new),
            ("client.update".to_owned(), keep),
            ("client.delete".to_owned(), gone.clone()),
        ]
    );
    // The deleted client's secret stops working at the running server.
    assert_eq!(
        settled_token_status(&app, &gone, &gone_secret, StatusCode::UNAUTHORIZED).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(plan(&app, &file), empty_plan());
    app.stop().await;
}

/// Runs `sql` on the test's database, for faults a test injects.
async fn execute(app: &TestAuth, statements: &[&str]) {
    match app.db.sqlite_path() {
        Some(_) => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            for sql in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        None => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            for sql in statements {
                sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
    }
}

async fn an_apply_that_fails_part_way_changes_nothing(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let first = "[clients.a-first]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
                 [clients.m-old]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n";
    let file = clients_file(&app, first);
    assert!(apply(&app, &file, &[]).status.success());
    let before = clients(&app);
    let audit_before = cli_audit(&app).await;

    // The second entry names a certificate file that cannot be read: the first entry's change,
    // a creation and a deletion are all left undone.
    let file = clients_file(
        &app,
        "[clients.a-first]\npartner = \"acme\"\nscopes = [\"orders:read\", \"catalog:read\"]\n\
         [clients.b-new]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
         [clients.c-mtls]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
         auth_method = \"self_signed_tls_client_auth\"\ncert_files = [\"missing.pem\"]\n",
    );
    let line = failure_line(&apply(&app, &file, &["--allow-delete"]));
    assert!(
        line.starts_with(&format!(
            "error: {file}:11: clients.c-mtls.cert_files: cannot read certificate file "
        )) && line.contains("missing.pem"),
        "{line}"
    );
    assert_eq!(clients(&app), before);
    assert_eq!(cli_audit(&app).await, audit_before);

    // A failure inside the transaction, after its creations and updates were written: the
    // database refuses the deletion that comes last. All of it is rolled back.
    let file = clients_file(
        &app,
        "[clients.a-first]\npartner = \"acme\"\nscopes = [\"orders:read\", \"catalog:read\"]\n\
         [clients.b-new]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n",
    );
    let (add, remove): (&[&str], &[&str]) = match backend {
        Backend::Sqlite => (
            &[
                "CREATE TRIGGER refuse_delete BEFORE DELETE ON clients WHEN OLD.name = 'm-old' \
               BEGIN SELECT RAISE(ABORT, 'deletion refused by the test'); END",
            ],
            &["DROP TRIGGER refuse_delete"],
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'deletion refused by the test'; END $$",
                "CREATE TRIGGER refuse_delete BEFORE DELETE ON clients FOR EACH ROW \
                 WHEN (OLD.name = 'm-old') EXECUTE FUNCTION refuse_delete()",
            ],
            &[
                "DROP TRIGGER refuse_delete ON clients",
                "DROP FUNCTION refuse_delete()",
            ],
        ),
    };
    execute(&app, add).await;
    let line = failure_line(&apply(&app, &file, &["--allow-delete", "--json"]));
    assert!(line.contains("deletion refused by the test"), "{line}");
    assert_eq!(
        clients(&app),
        before,
        "the creation and the update were rolled back"
    );
    assert_eq!(
        cli_audit(&app).await,
        audit_before,
        "and so were their audit events"
    );

    execute(&app, remove).await;
    let applied = json_of(&apply(&app, &file, &["--allow-delete", "--json"]));
    assert_eq!(
        (
            &applied["updated"],
            &applied["deleted"],
            &applied["created"][0]["name"]
        ),
        (&json!(["a-first"]), &json!(["m-old"]), &json!("b-new"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_the_file_did_not_create_are_never_touched() {
    let Some(app) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let create = |name: &str| {
        json_of(&cli(
            &app,
            &[
                "client",
                "create",
                "--name",
                name,
                "--partner",
                "acme",
                "--scopes",
                "orders:read",
                "--json",
            ],
        ))["client_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // One with the name of the file's entry, one with another name.
    let same_name = create("acme-erp");
    let other = create("by hand");
    let unmanaged = clients(&app);

    let file = clients_file(
        &app,
        "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"catalog:read\"]\n",
    );
    assert_eq!(
        lists(&plan(&app, &file)),
        json!({ "create": ["acme-erp"], "update": [], "delete": [] })
    );
    let applied = json_of(&apply(&app, &file, &["--allow-delete", "--json"]));
    let managed = applied["created"][0]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(managed != same_name && managed != other);
    assert_eq!(applied["deleted"], json!([]));
    let after = clients(&app);
    assert_eq!(after.len(), 3);
    for (id, client) in &unmanaged {
        assert_eq!(&after[id], client, "an unmanaged client is unchanged");
    }

    // An empty file deletes only what the file created.
    let file = clients_file(&app, "# no clients any more\n");
    assert_eq!(
        lists(&plan(&app, &file)),
        json!({ "create": [], "update": [], "delete": ["acme-erp"] })
    );
    let applied = json_of(&apply(&app, &file, &["--allow-delete", "--json"]));
    assert_eq!(applied["deleted"], json!(["acme-erp"]));
    assert_eq!(clients(&app), unmanaged);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_files_fail_with_their_line_and_change_nothing() {
    let Some(app) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let head = "# clients\n[clients.acme-erp]\npartner = \"acme\"\n";
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("{head}scopes = [\"orders:read\"\n"), 4, ""),
        (
            format!("{head}scopes = [\"orders:read\"]\nscope = \"x\"\n"),
            5,
            "unknown field `scope`",
        ),
        (
            format!("{head}scopes = [\"orders:read\"]\nclient_secret = \"pcs_x\"\n"),
            5,
            "`client_secret`: a clients file never holds secrets",
        ),
        (
            format!("{head}scopes = [\"orders:read\", \"bad\\\"scope\"]\n"),
            4,
            "clients.acme-erp.scopes: scope token contains a character outside RFC 6749",
        ),
        (
            format!("{head}scopes = [\"orders:read\"]\nauth_method = \"client_secret_jwt\"\n"),
            5,
            "clients.acme-erp.auth_method: unknown auth method 'client_secret_jwt'",
        ),
        (
            "[clients.acme-erp]\nscopes = [\"orders:read\"]\n".to_owned(),
            1,
            "missing field `partner`",
        ),
        (
            format!("{head}partner = \"globex\"\nscopes = [\"orders:read\"]\n"),
            4,
            "",
        ),
        (
            format!("{head}scopes = [\"orders:read\"]\njwks_uri = \"https://acme.example/jwks\"\n"),
            5,
            "clients.acme-erp.jwks_uri: jwks_uri is for private_key_jwt clients, not client_secret_basic",
        ),
        (
            format!(
                "{head}scopes = [\"orders:read\"]\nauth_method = \"self_signed_tls_client_auth\"\n\
                 cert_files = [\"nowhere.pem\"]\n"
            ),
            6,
            "clients.acme-erp.cert_files: cannot read certificate file ",
        ),
        (
            format!("{head}scopes = [\"orders:read\"]\naccess_ttl = 0\n"),
            5,
            "clients.acme-erp.access_ttl: access-token lifetime must be 1 to 86400 seconds",
        ),
    ];
    for (text, line, message) in cases {
        let file = clients_file(&app, &text);
        for command in ["plan", "apply"] {
            let output = cli(&app, &["clients", command, "--file", &file]);
            let refusal = failure_line(&output);
            let prefix = format!("error: {file}:{line}: ");
            assert!(
                refusal.starts_with(&prefix) && refusal.contains(message),
                "{command} of\n{text}\nwants line {line} and {message:?}, said: {refusal}"
            );
            assert!(output.stdout.is_empty());
        }
    }
    // A file that is not there, or not UTF-8.
    let missing = app.db.dir.path().join("absent.toml");
    let line = failure_line(&cli(
        &app,
        &["clients", "plan", "--file", missing.to_str().unwrap()],
    ));
    assert!(
        line.starts_with("error: cannot read the clients file "),
        "{line}"
    );
    assert!(clients(&app).is_empty());
    assert!(cli_audit(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_or_auth_method_change_is_refused_with_a_new_name_suggested() {
    let Some(app) = spawn_auth_server(Backend::Sqlite).await else {
        return;
    };
    let file = clients_file(
        &app,
        "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n",
    );
    assert!(apply(&app, &file, &[]).status.success());
    let before = clients(&app);
    let id = before.keys().next().unwrap().clone();

    let file = clients_file(
        &app,
        "[clients.acme-erp]\nscopes = [\"orders:read\"]\npartner = \"globex\"\n",
    );
    for command in ["plan", "apply"] {
        let line = failure_line(&cli(&app, &["clients", command, "--file", &file]));
        assert!(
            line.starts_with(&format!(
                "error: {file}:3: clients.acme-erp.partner: client {id} belongs to partner acme"
            )) && line.contains("give the entry a new name"),
            "{line}"
        );
    }
    let file = clients_file(
        &app,
        "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
         auth_method = \"private_key_jwt\"\njwks_uri = \"https://acme.example/jwks.json\"\n",
    );
    let line = failure_line(&apply(&app, &file, &[]));
    assert!(
        line.starts_with(&format!(
            "error: {file}:4: clients.acme-erp.auth_method: client {id} uses client_secret_basic"
        )),
        "{line}"
    );
    assert_eq!(clients(&app), before);

    // Within the secret family the method is a label, changed in place.
    let file = clients_file(
        &app,
        "[clients.acme-erp]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n\
         auth_method = \"client_secret_post\"\n",
    );
    let applied = json_of(&apply(&app, &file, &["--json"]));
    assert_eq!(applied["updated"], json!(["acme-erp"]));
    assert_eq!(
        applied["changes"]["acme-erp"],
        json!([{ "field": "auth_method", "from": "client_secret_basic", "to": "client_secret_post" }])
    );
    assert_eq!(show(&app, &id)["auth_method"], "client_secret_post");
    app.stop().await;
}

async fn two_concurrent_applies_create_each_client_once(backend: Backend) {
    let Some(app) = spawn_auth_server(backend).await else {
        return;
    };
    let text: String = (0..8)
        .map(|i| format!("[clients.c{i}]\npartner = \"acme\"\nscopes = [\"orders:read\"]\n"))
        .collect();
    let file = clients_file(&app, &text);
    // Two processes at once: each plans inside its own transaction, so the second sees what the
    // first created and has nothing left to do.
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .args(["clients", "apply", "--file", &file, "--json"])
            .env("AUTH_DATABASE_URL", &app.db.url)
            .env("AUTH_MASTER_KEY_FILE", app.db.master_key_path())
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run auth-server")
    };
    let (one, two) = (spawn(), spawn());
    let (one, two) = (
        one.wait_with_output().unwrap(),
        two.wait_with_output().unwrap(),
    );
    let mut created: Vec<usize> = [json_of(&one), json_of(&two)]
        .iter()
        .map(|applied| applied["created"].as_array().unwrap().len())
        .collect();
    created.sort_unstable();
    assert_eq!(created, [0, 8]);
    assert_eq!(clients(&app).len(), 8);
    assert_eq!(cli_audit(&app).await.len(), 8);
    app.stop().await;
}
