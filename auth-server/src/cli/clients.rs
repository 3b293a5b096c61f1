//! `clients plan|apply --file F`: clients as code (see [`crate::clients_as_code`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::render::Render;
use crate::clients_as_code::{self, Applied, FieldChange, Plan};
use crate::config::StoreArgs;
use crate::store::Store;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Show what `clients apply` would create, change (field by field) and delete among the
    /// clients the file manages; changes nothing and shows no secret.
    Plan {
        /// The clients file (TOML; `[clients.NAME]` tables, no secrets).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Make the clients the file manages match it, in one transaction; each new client's
    /// secret is printed once.
    Apply {
        /// The clients file (TOML; `[clients.NAME]` tables, no secrets).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Delete the clients whose entries were removed from the file. Without it, an apply
        /// that would delete changes nothing and fails, naming them.
        #[arg(long)]
        allow_delete: bool,
    },
}

/// Runs a `clients` command.
pub async fn run(
    db: &Store,
    store: &StoreArgs,
    cmd: ClientsCommand,
) -> anyhow::Result<Box<dyn Render>> {
    Ok(match cmd {
        ClientsCommand::Plan { file } => {
            Box::new(clients_as_code::plan(db, &file, &store.default_audience).await?)
        }
        ClientsCommand::Apply { file, allow_delete } => Box::new(
            clients_as_code::apply(db, &file, &store.default_audience, allow_delete).await?,
        ),
    })
}

/// `    field: "from" -> "to"` lines.
fn change_lines(out: &mut String, changes: &[FieldChange]) {
    for change in changes {
        let _ = writeln!(
            out,
            "    {}: {:?} -> {:?}",
            change.field, change.from, change.to
        );
    }
}

fn changes_json(changes: &[FieldChange]) -> serde_json::Value {
    json!(changes)
}

impl Render for Plan {
    fn human(&self) -> String {
        if self.is_empty() {
            return "No changes: the clients the file manages match it.\n".to_owned();
        }
        let mut out = String::new();
        for create in &self.creates {
            let _ = writeln!(out, "+ create {}", create.name);
            for (field, value) in &create.fields {
                let _ = writeln!(out, "    {field}: {value:?}");
            }
        }
        for update in &self.updates {
            let _ = writeln!(out, "~ update {} ({})", update.name, update.client_id);
            change_lines(&mut out, &update.changes);
        }
        for delete in &self.deletes {
            let _ = writeln!(out, "- delete {} ({})", delete.name, delete.client_id);
        }
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to change, {} to delete.",
            self.creates.len(),
            self.updates.len(),
            self.deletes.len()
        );
        if !self.deletes.is_empty() {
            out.push_str("Deleting needs `clients apply --allow-delete`; without it, apply changes nothing.\n");
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "create": self.creates.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "update": self.updates.iter().map(|u| &u.name).collect::<Vec<_>>(),
            "delete": self.deletes.iter().map(|d| &d.name).collect::<Vec<_>>(),
            "changes": self
                .updates
                .iter()
                .map(|u| (u.name.clone(), changes_json(&u.changes)))
                .collect::<serde_json::Map<_, _>>(),
            "warnings": self.warnings,
        })
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Render for Applied {
    fn human(&self) -> String {
        let mut out = String::new();
        for created in &self.created {
            let _ = writeln!(out, "+ created {} ({})", created.name, created.client_id);
            if let Some(secret) = &created.secret {
                let _ = writeln!(out, "    client_secret: {}", secret.expose());
            }
        }
        for update in &self.updated {
            let _ = writeln!(out, "~ updated {} ({})", update.name, update.client_id);
            change_lines(&mut out, &update.changes);
        }
        for delete in &self.deleted {
            let _ = writeln!(out, "- deleted {} ({})", delete.name, delete.client_id);
        }
        if self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty() {
            out.push_str("No changes: the clients the file manages match it.\n");
            return out;
        }
        let _ = writeln!(
            out,
            "Apply complete: {} created, {} changed, {} deleted.",
            self.created.len(),
            self.updated.len(),
            self.deleted.len()
        );
        if self.created.iter().any(|c| c.secret.is_some()) {
            out.push_str("Store the secrets now: each is shown only once.\n");
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "created": self
                .created
                .iter()
                .map(|c| json!({
                    "name": c.name,
                    "client_id": c.client_id,
                    "client_secret": c.secret.as_ref().map(|s| s.expose()),
                }))
                .collect::<Vec<_>>(),
            "updated": self.updated.iter().map(|u| &u.name).collect::<Vec<_>>(),
            "deleted": self.deleted.iter().map(|d| &d.name).collect::<Vec<_>>(),
            "changes": self
                .updated
                .iter()
                .map(|u| (u.name.clone(), changes_json(&u.changes)))
                .collect::<serde_json::Map<_, _>>(),
            "warnings": self.warnings,
        })
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
