//! `keys …`: the signing keys. Every step is one of [`crate::signing`]'s lifecycle functions;
//! this module only loads the master key, calls the step and says what it did.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Subcommand, ValueEnum};
use keys::{Algorithm, MasterKey};
use serde_json::json;

use super::render::{Render, table, time};
use crate::config::StoreArgs;
use crate::signing::{self, Purge, Revocation, Rotation};
use crate::store::{SigningKeyRow, Store};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List,
    /// Routine rotation: the pending key starts signing and a new pending key is made.
    ///
    /// The active key is retired: still published until its tokens expire. Refused while
    /// verifiers may not have fetched the pending key yet (AUTH_JWKS_CACHE_HORIZON), unless
    /// --force.
    Rotate {
        /// Algorithm of the new pending key; RS256 makes a 2048-bit RSA key, for verifiers that
        /// accept only RSA (API Gateway's JWT authorizer). Default: the algorithm of the current
        /// pending key, so the keys keep their algorithm (ES256 on a first start).
        #[arg(
            long,
            value_parser = EnumValueParser::<KeyAlg>::new().map(Algorithm::from)
        )]
        alg: Option<Algorithm>,
        /// Rotate even though verifiers may not have fetched the pending key yet. If the
        /// master key file does not exist (the master key was lost), it is created and a fresh
        /// active and pending key are made under it.
        #[arg(long)]
        force: bool,
    },
    /// Emergency: unpublish a key now; if it was active, promote the pending key.
    Revoke {
        /// The key's `kid`, as `keys list` shows it (base64url: it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Drop retired keys whose tokens have all expired.
    Purge,
    /// Re-encrypt every private key under a new master key (the file is created if missing).
    Rewrap {
        /// File of the new master key; created with mode 0600 if it does not exist.
        #[arg(long)]
        new_master_key_file: PathBuf,
    },
    /// Import a PKCS#8 PEM private key made elsewhere as the pending key.
    Import {
        /// The key's algorithm.
        #[arg(
            long,
            default_value = "RS256",
            value_parser = EnumValueParser::<KeyAlg>::new().map(Algorithm::from)
        )]
        alg: Algorithm,
        /// PEM file with `-----BEGIN PRIVATE KEY-----`.
        #[arg(long)]
        pem: PathBuf,
    },
}

/// `--alg` of `keys rotate` and `keys import`: every algorithm a signing key may have, spelled as
/// in a JWK. The `keys` crate's [`Algorithm`] has no clap dependency, so the command line has
/// its own.
#[derive(Clone, Copy, ValueEnum)]
enum KeyAlg {
    /// ECDSA on P-256 with SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
    /// RSA (PKCS#1 v1.5) with SHA-256.
    #[value(name = "RS256")]
    Rs256,
}

impl From<KeyAlg> for Algorithm {
    fn from(alg: KeyAlg) -> Algorithm {
        match alg {
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::EdDsa => Algorithm::EdDSA,
            KeyAlg::Rs256 => Algorithm::RS256,
        }
    }
}

/// Runs a `keys` command.
pub async fn run(
    db: &Store,
    store: &StoreArgs,
    cmd: KeysCommand,
) -> anyhow::Result<Box<dyn Render>> {
    Ok(match cmd {
        KeysCommand::List => Box::new(db.list_signing_keys().await?),
        KeysCommand::Rotate { alg, force } => Box::new(rotate(db, store, alg, force).await?),
        KeysCommand::Revoke { kid } => Box::new(revoke(db, store, &kid).await?),
        KeysCommand::Purge => Box::new(signing::purge_keys(db, &store.key_policy()).await?),
        KeysCommand::Rewrap {
            new_master_key_file,
        } => Box::new(rewrap(db, store, new_master_key_file).await?),
        KeysCommand::Import { alg, pem } => Box::new(import(db, store, alg, &pem).await?),
    })
}

async fn rotate(
    db: &Store,
    store: &StoreArgs,
    alg: Option<Algorithm>,
    force: bool,
) -> anyhow::Result<Rotated> {
    let key_in_environment = store
        .master_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty());
    if force && !key_in_environment && !store.master_key_file.exists() {
        // The master key is lost: only a forced rotation may start over under a new one, and
        // only with a file that did not exist, so a mistyped or wrong existing file can never
        // replace the keys. A key given in AUTH_MASTER_KEY is not lost, whatever the files.
        let created = MasterKey::load_or_create(&store.master_key_file)?;
        eprintln!(
            "warning: created a new master key file {}; back it up. No stored private key can be opened any more, so fresh keys replace them",
            store.master_key_file.display()
        );
        let had_api_keys = !db.hash_keys().await?.is_empty();
        let rotation = signing::recover_lost_master_key(db, &created.key, alg).await?;
        if had_api_keys {
            eprintln!(
                "warning: the API-key hash key was sealed under the lost master key, so every API key stopped working: issue new ones with `client rotate-secret CLIENT_ID --grace 0` for each api_key client"
            );
        }
        return Ok(Rotated {
            rotation,
            how: RotationKind::Recovered,
        });
    }
    let master = load_master(store)?;
    let rotation = signing::rotate_key(db, &master, &store.key_policy(), alg, force).await?;
    let how = if force {
        RotationKind::Forced
    } else {
        RotationKind::Routine
    };
    Ok(Rotated { rotation, how })
}

async fn revoke(db: &Store, store: &StoreArgs, kid: &str) -> anyhow::Result<Revoked> {
    let master = load_master(store)?;
    Ok(Revoked {
        revocation: signing::revoke_key(db, &master, kid).await?,
        jwks_max_age: store.jwks_max_age,
        cache_horizon: store.key_policy().cache_horizon_secs(),
    })
}

async fn rewrap(db: &Store, store: &StoreArgs, new_file: PathBuf) -> anyhow::Result<Rewrapped> {
    let current = load_master(store)?;
    let loaded = MasterKey::load_or_create(&new_file)?;
    if loaded.loose_permissions {
        eprintln!(
            "warning: {} is readable by group or others; run chmod 600 on it",
            new_file.display()
        );
    }
    let count = signing::rewrap_keys(db, &current, &loaded.key).await?;
    Ok(Rewrapped {
        count,
        new_master_key_file: new_file,
    })
}

async fn import(
    db: &Store,
    store: &StoreArgs,
    alg: Algorithm,
    pem: &std::path::Path,
) -> anyhow::Result<Imported> {
    let master = load_master(store)?;
    let text =
        std::fs::read_to_string(pem).with_context(|| format!("cannot read {}", pem.display()))?;
    let kid = signing::import_key(db, &master, alg, &text).await?;
    Ok(Imported {
        kid,
        alg,
        rotate_after: store.key_policy().rotation_safe_at(crate::now()),
    })
}

/// Loads the master key for a command that opens or seals keys, warning about loose permissions.
pub(super) fn load_master(store: &StoreArgs) -> anyhow::Result<MasterKey> {
    if let Some(text) = store.master_key.as_deref().filter(|k| !k.trim().is_empty()) {
        return MasterKey::from_file_contents(text).context("AUTH_MASTER_KEY");
    }
    let path = &store.master_key_file;
    // Its messages name the file already ("master key file PATH does not exist").
    let loaded = MasterKey::load_checked(path)?;
    if loaded.loose_permissions {
        eprintln!(
            "warning: master key file {} is readable by group or others; run chmod 600 on it",
            path.display()
        );
    }
    Ok(loaded.key)
}

/// `keys list`.
impl Render for Vec<SigningKeyRow> {
    fn human(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .iter()
            .map(|r| {
                vec![
                    r.kid.clone(),
                    r.alg.to_string(),
                    r.state.to_string(),
                    time(Some(r.created_at)),
                    time(r.activated_at),
                    time(r.retired_at),
                ]
            })
            .collect();
        table(
            &["KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED"],
            &cells,
        )
    }

    fn json(&self) -> serde_json::Value {
        // Spelled out rather than serialized: a row also holds the sealed private key.
        json!(
            self.iter()
                .map(|r| json!({ "kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
                                 "activated_at": r.activated_at, "retired_at": r.retired_at }))
                .collect::<Vec<_>>()
        )
    }
}

impl Render for Rotation {
    fn human(&self) -> String {
        let mut text = format!(
            "active:  {}\npending: {} ({})\n",
            self.active, self.pending, self.alg
        );
        if let Some(retired) = &self.retired {
            let _ = writeln!(
                text,
                "retired: {retired} (published until its tokens expire)"
            );
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        json!(self)
    }
}

/// How `keys rotate` went about it, which the text output explains.
enum RotationKind {
    Routine,
    Forced,
    Recovered,
}

/// `keys rotate`: the rotation, and how it was done.
struct Rotated {
    rotation: Rotation,
    how: RotationKind,
}

impl Render for Rotated {
    fn human(&self) -> String {
        let note = match self.how {
            RotationKind::Routine => "",
            RotationKind::Forced => {
                "forced: resource servers that had not fetched the new active key refetch it on first use\n"
            }
            RotationKind::Recovered => {
                "recovered: the new keys are sealed under the new master key; running servers re-read the file and sign with the new active key within their reload interval\n"
            }
        };
        self.rotation.human() + note
    }

    fn json(&self) -> serde_json::Value {
        self.rotation.json()
    }
}

impl Render for Revocation {
    fn human(&self) -> String {
        let mut text = format!("revoked {} ({}): unpublished now\n", self.revoked, self.was);
        if let Some(active) = &self.active {
            let _ = writeln!(text, "active:  {active}");
        }
        if let Some(pending) = &self.pending {
            let _ = writeln!(text, "pending: {pending}");
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        json!(self)
    }
}

/// `keys revoke`: the revocation, and how long verifiers may go on trusting the key.
struct Revoked {
    revocation: Revocation,
    jwks_max_age: u64,
    /// The longest any verifier may keep its cached JWKS (AUTH_JWKS_CACHE_HORIZON).
    cache_horizon: i64,
}

impl Render for Revoked {
    fn human(&self) -> String {
        let mut text = format!(
            "{}tokens it signed stop verifying at each resource API when it next refreshes its JWKS (within {} s)\n",
            self.revocation.human(),
            self.jwks_max_age
        );
        if self.cache_horizon > self.jwks_max_age as i64 {
            let _ = writeln!(
                text,
                "verifiers that cache the JWKS longer (AUTH_JWKS_CACHE_HORIZON: API gateways) may accept them for up to {} s, or until they expire",
                self.cache_horizon
            );
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        self.revocation.json()
    }
}

impl Render for Purge {
    fn human(&self) -> String {
        if !self.purged.is_empty() {
            return format!("purged {}\n", self.purged.join(", "));
        }
        match self.next_purge_at {
            Some(at) => format!(
                "nothing to purge: every retired key may still have unexpired tokens; the next becomes purgeable at {}\n",
                time(Some(at))
            ),
            None => "nothing to purge: there are no retired keys\n".into(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!(self)
    }
}

/// `keys rewrap`.
struct Rewrapped {
    count: usize,
    new_master_key_file: PathBuf,
}

impl Render for Rewrapped {
    fn human(&self) -> String {
        format!(
            "re-encrypted {} keys under {}\nnext: point AUTH_MASTER_KEY_FILE at it (or move it over the old file; running servers re-read the file), then destroy the old file\n",
            self.count,
            self.new_master_key_file.display()
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "rewrapped": self.count,
            "new_master_key_file": self.new_master_key_file.display().to_string(),
        })
    }
}

/// `keys import`: the new pending key, and from when rotating it in is safe.
struct Imported {
    kid: String,
    alg: Algorithm,
    rotate_after: i64,
}

impl Render for Imported {
    fn human(&self) -> String {
        format!(
            "imported {} ({}) as the pending key; `keys rotate` makes it active from {}\n",
            self.kid,
            self.alg,
            time(Some(self.rotate_after))
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({ "pending": self.kid, "alg": self.alg.as_str(), "rotate_after": self.rotate_after })
    }
}
