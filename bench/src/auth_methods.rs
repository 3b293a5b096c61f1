//! Section 1b: the token endpoint by client authentication method, in one run on one SQLite
//! database, so the rows compare. One token service serves TLS on `AUTH_BIND` and mutual TLS on
//! `AUTH_MTLS_BIND` (a server CA of the run's own; the partner's CA trusted through
//! `AUTH_MTLS_CA_FILE`). Measured at 32 connections, most also at one:
//!
//! - `client_secret_basic` over TLS, keep-alive and with a new connection per token (a full
//!   handshake without a client certificate: what TLS itself costs);
//! - `self_signed_tls_client_auth` with a new connection per token (a full handshake with the
//!   client certificate), the same with TLS 1.3 session resumption allowed, and keep-alive;
//! - `tls_client_auth` (a certificate issued by the partner's CA), keep-alive;
//! - `private_key_jwt` over TLS, keep-alive, the load generator signing a new ES256 assertion
//!   for every request (the token service accepts each `jti` once, and stores it);
//! - references: `client_secret_basic` over plain HTTP, keep-alive and a connection per token,
//!   and with a refresh token (one row written per token, as a `jti` is).
//!
//! A token service with TLS configured does not also serve plain HTTP, so the plain-HTTP rows
//! come from a second process on the same database and master key. Each load row gives the load
//! generator's CPU per token beside the server's: what the partner's side pays.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use test_support::pki::{Ca, Leaf, Subject, self_signed};

use crate::load::{self, MakeRequest, Target};
use crate::partner::{JWT_BEARER_FORM, PartnerKey, tls_client};
use crate::servers::{Server, cli, free_addr};
use crate::{Args, JWKS_MAX_AGE_SECS, Report, Summary, measure_target, percent, raw};

/// The subject of the CA-issued client certificate, as registered with `--tls-subject`.
const CA_ISSUED_SUBJECT: &str = "CN=bench-client,O=Acme Corp";

/// Certificates and keys of the run: the servers' and the partner's.
struct Pki {
    server_ca: Ca,
    self_signed: Leaf,
    ca_issued: Leaf,
    partner_key: Arc<PartnerKey>,
}

impl Pki {
    /// Makes the certificates and keys, and writes what the token service and its CLI read.
    fn new(dir: &Path) -> anyhow::Result<Pki> {
        let server_ca = Ca::new("Bench Server CA");
        let server = server_ca.server();
        let partner_ca = Ca::new("Bench Partner CA");
        let ca_issued = partner_ca.client(&Subject {
            organization: Some("Acme Corp"),
            ..Subject::cn("bench-client")
        });
        let self_signed = self_signed(&Subject::cn("bench-partner"), false);
        let partner_key = PartnerKey::generate("bench-es256")?;
        for (name, contents) in [
            ("server.pem", server.cert_pem.as_str()),
            ("server.key", server.key_pem.as_str()),
            ("partner-ca.pem", &partner_ca.cert_pem()),
            ("self-signed.pem", self_signed.cert_pem.as_str()),
            ("jwks.json", &partner_key.jwks()),
        ] {
            std::fs::write(dir.join(name), contents)?;
        }
        Ok(Pki {
            server_ca,
            self_signed,
            ca_issued,
            partner_key: Arc::new(partner_key),
        })
    }
}

/// The two token service processes on one database.
struct Services {
    /// TLS on `AUTH_BIND` (its `addr`) and mutual TLS on `mtls`.
    tls: Server,
    mtls: SocketAddr,
    /// `AUTH_ISSUER` of the TLS service: the audience of its client assertions.
    issuer: String,
    /// Plain HTTP, the same database and master key.
    plain: Server,
    /// The plain service's environment, for the CLI.
    env: HashMap<String, String>,
}

impl Services {
    async fn start(dir: &Path, pki: &Pki) -> anyhow::Result<Services> {
        let common: HashMap<String, String> = [
            (
                "AUTH_DATABASE_URL",
                format!("sqlite://{}", dir.join("auth.db").display()),
            ),
            (
                "AUTH_MASTER_KEY_FILE",
                dir.join("master.key").display().to_string(),
            ),
            ("AUTH_KEY_RELOAD_INTERVAL", "1".into()),
            ("AUTH_JWKS_MAX_AGE", JWKS_MAX_AGE_SECS.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let (tls_addr, mtls) = (free_addr()?, free_addr()?);
        let issuer = format!("https://{tls_addr}");
        let mut tls_env = common.clone();
        for (name, value) in [
            ("AUTH_BIND", tls_addr.to_string()),
            ("AUTH_ISSUER", issuer.clone()),
            (
                "AUTH_TLS_CERT",
                dir.join("server.pem").display().to_string(),
            ),
            ("AUTH_TLS_KEY", dir.join("server.key").display().to_string()),
            ("AUTH_MTLS_BIND", mtls.to_string()),
            (
                "AUTH_MTLS_CA_FILE",
                dir.join("partner-ca.pem").display().to_string(),
            ),
        ] {
            tls_env.insert(name.to_owned(), value);
        }
        // The TLS service starts first: it creates the database, the master key and the first
        // signing key (ES256).
        let mut tls = Server::spawn(
            "auth-server",
            &["serve"],
            &tls_env,
            tls_addr,
            &dir.join("auth-server-tls.log"),
        )?;
        let probe = Target {
            addr: tls_addr,
            tls: Some(tls_client(&pki.server_ca.cert_pem(), None, false)?),
            connection_per_request: false,
        };
        wait_ready(&mut tls, &probe).await?;
        let plain_addr = free_addr()?;
        let mut env = common;
        env.insert("AUTH_BIND".into(), plain_addr.to_string());
        env.insert("AUTH_ISSUER".into(), format!("http://{plain_addr}"));
        let mut plain = Server::spawn(
            "auth-server",
            &["serve"],
            &env,
            plain_addr,
            &dir.join("auth-server-plain.log"),
        )?;
        plain.wait_ok("/readyz", Duration::from_secs(60)).await?;
        Ok(Services {
            tls,
            mtls,
            issuer,
            plain,
            env,
        })
    }

    fn stop(self) {
        self.tls.stop();
        self.plain.stop();
    }
}

/// Waits until `GET /readyz` over `target` answers 200.
async fn wait_ready(server: &mut Server, target: &Target) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let request = Request::get("/readyz")
            .header(HOST, target.addr.to_string())
            .body(Full::new(Bytes::new()))?;
        if let Ok((status, _)) = load::once(target, request).await
            && status.is_success()
        {
            return Ok(());
        }
        server.ensure_running()?;
        anyhow::ensure!(
            began.elapsed() < Duration::from_secs(60),
            "the TLS token service not ready after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The bench's clients, one per method, all of partner `acme` with scope `orders:read` and no
/// refresh tokens; and one with refresh tokens, for a reference row.
struct Clients {
    basic: (String, String),
    basic_refresh: (String, String),
    self_signed: String,
    ca_issued: String,
    assertion: String,
}

impl Clients {
    fn create(env: &HashMap<String, String>, dir: &Path) -> anyhow::Result<Clients> {
        let create = |name: &str, method: &[&str]| -> anyhow::Result<serde_json::Value> {
            let mut argv = vec![
                "client",
                "create",
                "--name",
                name,
                "--partner",
                "acme",
                "--scopes",
                "orders:read",
            ];
            argv.extend_from_slice(method);
            cli(env, &argv)
        };
        let id = |doc: &serde_json::Value| -> anyhow::Result<String> {
            Ok(doc["client_id"].as_str().context("client_id")?.to_owned())
        };
        let with_secret = |doc: serde_json::Value| -> anyhow::Result<(String, String)> {
            let secret = doc["client_secret"].as_str().context("client_secret")?;
            Ok((id(&doc)?, secret.to_owned()))
        };
        let path = |name: &str| dir.join(name).display().to_string();
        let basic = with_secret(create("bench-basic", &["--no-refresh"])?)?;
        let basic_refresh = with_secret(create("bench-basic-refresh", &[])?)?;
        let self_signed = create(
            "bench-self-signed",
            &[
                "--no-refresh",
                "--auth-method",
                "self_signed_tls_client_auth",
                "--cert-file",
                &path("self-signed.pem"),
            ],
        )?;
        let ca_issued = create(
            "bench-ca-issued",
            &[
                "--no-refresh",
                "--auth-method",
                "tls_client_auth",
                "--tls-subject",
                CA_ISSUED_SUBJECT,
            ],
        )?;
        let assertion = create(
            "bench-private-key-jwt",
            &[
                "--no-refresh",
                "--auth-method",
                "private_key_jwt",
                "--jwks-file",
                &path("jwks.json"),
            ],
        )?;
        Ok(Clients {
            basic,
            basic_refresh,
            self_signed: id(&self_signed)?,
            ca_issued: id(&ca_issued)?,
            assertion: id(&assertion)?,
        })
    }
}

fn form_request(host: &str, body: String) -> Request<Full<Bytes>> {
    Request::post("/oauth2/token")
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

/// Client credentials with `client_id` alone in the form: the connection's certificate
/// authenticates.
fn certificate_request(addr: SocketAddr, client_id: &str) -> MakeRequest {
    let (host, body) = (
        addr.to_string(),
        format!("grant_type=client_credentials&client_id={client_id}"),
    );
    Arc::new(move |_, _| form_request(&host, body.clone()))
}

/// Client credentials authenticated by a new assertion per request, signed on the spot (on the
/// load generator's thread, so its cost is the client's).
fn assertion_request(
    addr: SocketAddr,
    key: Arc<PartnerKey>,
    client_id: &str,
    audience: &str,
) -> MakeRequest {
    let (host, client_id, audience) = (addr.to_string(), client_id.to_owned(), audience.to_owned());
    Arc::new(move |_, _| {
        let assertion = key.assertion(&client_id, &audience);
        form_request(
            &host,
            format!(
                "grant_type=client_credentials&client_assertion_type={JWT_BEARER_FORM}\
                 &client_assertion={assertion}"
            ),
        )
    })
}

/// One measured way to get a token.
struct Case<'a> {
    what: &'static str,
    /// What the baseline column calls this case.
    short: &'static str,
    server: &'a Server,
    target: Target,
    make: MakeRequest,
    /// The earlier case this one is compared with.
    baseline: Option<usize>,
    /// Measured at one connection as well as at 32 (for its latency).
    one_connection_too: bool,
    /// For a certificate client: the `cnf.x5t#S256` its tokens must carry.
    bound_to: Option<String>,
}

/// Fetches one token the way `case` does and checks it: 200, an ES256 token, bound to the
/// certificate when one authenticated. Returns the token's `alg`.
async fn probe(case: &Case<'_>) -> anyhow::Result<String> {
    let (status, body) = load::once(&case.target, (case.make)(0, 0)).await?;
    anyhow::ensure!(
        status.is_success(),
        "{}: {status} {}",
        case.what,
        String::from_utf8_lossy(&body)
    );
    let body: serde_json::Value = serde_json::from_slice(&body)?;
    let token = body["access_token"].as_str().context("access_token")?;
    let part = |n: usize| -> anyhow::Result<serde_json::Value> {
        let text = token.split('.').nth(n).context("a compact JWS")?;
        Ok(serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text)?,
        )?)
    };
    let claims = part(1)?;
    if let Some(x5t) = &case.bound_to {
        anyhow::ensure!(
            claims["cnf"]["x5t#S256"] == x5t.as_str(),
            "{}: the token is not bound to the certificate",
            case.what
        );
    }
    Ok(part(0)?["alg"].as_str().unwrap_or_default().to_owned())
}

pub async fn run(args: &Args, report: &mut Report, dir: &Path) -> anyhow::Result<()> {
    let dir = dir.join("auth-methods");
    std::fs::create_dir_all(&dir)?;
    let pki = Pki::new(&dir)?;
    let services = Services::start(&dir, &pki).await?;
    let outcome = async {
        let clients = Clients::create(&services.env, &dir)?;
        measure_methods(args, report, &pki, &services, &clients).await
    }
    .await;
    services.stop();
    outcome.context("1b. token endpoint by client authentication method")
}

async fn measure_methods(
    args: &Args,
    report: &mut Report,
    pki: &Pki,
    services: &Services,
    clients: &Clients,
) -> anyhow::Result<()> {
    let ca = pki.server_ca.cert_pem();
    let target = |addr, identity, resume, connection_per_request| -> anyhow::Result<Target> {
        Ok(Target {
            addr,
            tls: Some(tls_client(&ca, identity, resume)?),
            connection_per_request,
        })
    };
    let (plain, tls, mtls) = (services.plain.addr, services.tls.addr, services.mtls);
    let basic = |addr| crate::token_request(addr, &clients.basic);
    let self_signed = Some(pki.self_signed.x5t_s256());
    // Indexes into `cases`, for the baselines.
    const PLAIN: usize = 0;
    const TLS: usize = 2;
    const TLS_HANDSHAKE: usize = 3;
    const MTLS_HANDSHAKE: usize = 4;
    let cases = [
        Case {
            what: "`client_secret_basic`, plain HTTP, keep-alive (a second process on the same database)",
            short: "basic, plain HTTP",
            server: &services.plain,
            target: Target::plain(plain),
            make: basic(plain),
            baseline: None,
            one_connection_too: true,
            bound_to: None,
        },
        Case {
            what: "`client_secret_basic`, plain HTTP, new connection per token (the same second process)",
            short: "basic, plain HTTP, connection per token",
            server: &services.plain,
            target: Target {
                connection_per_request: true,
                ..Target::plain(plain)
            },
            make: basic(plain),
            baseline: Some(PLAIN),
            one_connection_too: false,
            bound_to: None,
        },
        Case {
            what: "`client_secret_basic`, TLS, keep-alive",
            short: "basic, TLS keep-alive",
            server: &services.tls,
            target: target(tls, None, false, false)?,
            make: basic(tls),
            baseline: Some(PLAIN),
            one_connection_too: true,
            bound_to: None,
        },
        Case {
            what: "`client_secret_basic`, TLS, new connection per token (full handshake, no client certificate)",
            short: "basic, full TLS handshake per token",
            server: &services.tls,
            target: target(tls, None, false, true)?,
            make: basic(tls),
            baseline: Some(TLS),
            one_connection_too: true,
            bound_to: None,
        },
        Case {
            what: "`self_signed_tls_client_auth`, mutual TLS, new connection per token (full handshake with client certificate)",
            short: "mutual TLS, full handshake per token",
            server: &services.tls,
            target: target(mtls, Some(&pki.self_signed), false, true)?,
            make: certificate_request(mtls, &clients.self_signed),
            baseline: Some(TLS_HANDSHAKE),
            one_connection_too: true,
            bound_to: self_signed.clone(),
        },
        Case {
            what: "`self_signed_tls_client_auth`, mutual TLS, new connection per token, TLS 1.3 session resumption on",
            short: "mutual TLS, resumed",
            server: &services.tls,
            target: target(mtls, Some(&pki.self_signed), true, true)?,
            make: certificate_request(mtls, &clients.self_signed),
            baseline: Some(MTLS_HANDSHAKE),
            one_connection_too: true,
            bound_to: self_signed.clone(),
        },
        Case {
            what: "`self_signed_tls_client_auth`, mutual TLS, keep-alive",
            short: "mutual TLS keep-alive",
            server: &services.tls,
            target: target(mtls, Some(&pki.self_signed), false, false)?,
            make: certificate_request(mtls, &clients.self_signed),
            baseline: Some(TLS),
            one_connection_too: true,
            bound_to: self_signed,
        },
        Case {
            what: "`tls_client_auth` (certificate issued by the partner's CA), mutual TLS, keep-alive",
            short: "CA-issued, mutual TLS keep-alive",
            server: &services.tls,
            target: target(mtls, Some(&pki.ca_issued), false, false)?,
            make: certificate_request(mtls, &clients.ca_issued),
            baseline: Some(TLS),
            one_connection_too: true,
            bound_to: Some(pki.ca_issued.x5t_s256()),
        },
        Case {
            what: "`private_key_jwt` (ES256 assertion signed per request), TLS, keep-alive",
            short: "private_key_jwt, TLS keep-alive",
            server: &services.tls,
            target: target(tls, None, false, false)?,
            make: assertion_request(
                tls,
                pki.partner_key.clone(),
                &clients.assertion,
                &services.issuer,
            ),
            baseline: Some(TLS),
            one_connection_too: true,
            bound_to: None,
        },
        Case {
            what: "reference: `client_secret_basic` with a refresh token (one row written and committed per token, as a `jti` is), TLS, keep-alive",
            short: "basic with refresh token",
            server: &services.tls,
            target: target(tls, None, false, false)?,
            make: crate::token_request(tls, &clients.basic_refresh),
            baseline: Some(TLS),
            one_connection_too: false,
            bound_to: None,
        },
    ];
    // Every way works before any is measured (a failure would also count towards a lockout).
    for case in &cases {
        let alg = probe(case).await?;
        anyhow::ensure!(alg == "ES256", "tokens are signed with {alg}, not ES256");
    }
    report.section(
        "1b. Token endpoint by client authentication method, SQLite (client credentials, \
         ES256 tokens; baselines: `client_secret_basic` over TLS with keep-alive, or the row \
         the method adds to)",
    );
    for connections in [32, 1] {
        let mut done: Vec<Option<Summary>> = Vec::new();
        for case in &cases {
            if connections == 1 && !case.one_connection_too {
                done.push(None);
                continue;
            }
            let summary = measure_target(
                args,
                case.server,
                case.target.clone(),
                connections,
                case.make.clone(),
            )?;
            let base = case
                .baseline
                .and_then(|index| Some((cases[index].short, done[index].as_ref()?)));
            let (baseline, ratio) = match base {
                Some((name, base)) => (
                    format!("{name}: {:.0}/s, {:.1} µs", base.rps, base.server_cpu_us),
                    format!(
                        "{}; server CPU {:+.1} µs",
                        percent(summary.rps, base.rps),
                        summary.server_cpu_us - base.server_cpu_us
                    ),
                ),
                None => ("-".into(), "100 %".into()),
            };
            report.row(
                format!(
                    "{}, {connections} conn{}",
                    case.what,
                    if connections == 1 { "" } else { "s" }
                ),
                describe(&summary),
                baseline,
                ratio,
            );
            done.push(Some(summary));
        }
    }
    baselines(args, report, pki, services, clients).await
}

/// What a token costs per method, told apart: the load rows above and these one-core rates.
async fn baselines(
    args: &Args,
    report: &mut Report,
    pki: &Pki,
    services: &Services,
    clients: &Clients,
) -> anyhow::Result<()> {
    let quick = Args {
        seconds: 1.0,
        ..args.clone()
    };
    let key = &pki.partner_key;
    let build = raw::rate(&quick, || {
        std::hint::black_box(key.assertion(&clients.assertion, &services.issuer));
    });
    report.row(
        "one core, client side: an ES256 client assertion made (claims JSON, `jti`, base64url, ring signature)".into(),
        format!("{build:.0}/s ({:.1} µs)", 1e6 / build),
        "-".into(),
        "-".into(),
    );
    let assertion = key.assertion(&clients.assertion, &services.issuer);
    let sign = raw::sign_rate("ES256", &assertion, &quick)?;
    let verify = raw::verify_rate(&assertion, &quick)?;
    report.row(
        "one core: ring ECDSA P-256 sign / verify (an assertion's check; a TLS 1.3 handshake signs once and verifies once per certificate it checks)".into(),
        format!(
            "sign {sign:.0}/s ({:.1} µs), verify {verify:.0}/s ({:.1} µs)",
            1e6 / sign,
            1e6 / verify
        ),
        "-".into(),
        "-".into(),
    );
    let ca = pki.server_ca.cert_pem();
    let negotiated = load::negotiated(&Target {
        addr: services.mtls,
        tls: Some(tls_client(&ca, Some(&pki.self_signed), false)?),
        connection_per_request: false,
    })
    .await?;
    report.row(
        "TLS negotiated (mutual-TLS listener, rustls on ring on both sides; P-256 certificates)"
            .into(),
        negotiated,
        "-".into(),
        "-".into(),
    );
    Ok(())
}

/// A load row of this section: the generator's own CPU per token beside the server's, the
/// share of resumed handshakes where connections are made per token, and the runs' spread.
fn describe(summary: &Summary) -> String {
    let mut text = format!(
        "{:.0} tokens/s, p50 {:.2} ms, p99 {:.2} ms; server CPU {:.1} µs/token, client CPU {:.1} µs/token, machine idle {:.0} %",
        summary.rps,
        summary.p50_ms,
        summary.p99_ms,
        summary.server_cpu_us,
        summary.client_cpu_us,
        summary.idle_percent
    );
    if let Some(resumed) = summary.resumed_percent {
        text.push_str(&format!("; {resumed:.0} % of handshakes resumed"));
    }
    text.push_str(&format!(
        " (runs {:.0}–{:.0}/s)",
        summary.rps_range.0, summary.rps_range.1
    ));
    if summary.errors > 0 {
        text.push_str(&format!(
            " ({} errors, first: {})",
            summary.errors,
            summary.first_error.as_deref().unwrap_or("?")
        ));
    }
    text
}
