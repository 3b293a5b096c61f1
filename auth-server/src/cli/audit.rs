//! `audit`: the audit trail, newest first.

use serde_json::json;

use super::render::{Render, table, time};
use crate::store::AuditRecord;

impl Render for Vec<AuditRecord> {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    time(Some(r.at)),
                    r.actor.clone(),
                    r.action.clone(),
                    r.client_id.clone().unwrap_or_default(),
                    r.source_ip.clone().unwrap_or_default(),
                    r.detail.clone(),
                ]
            })
            .collect();
        table(
            &[
                "ID", "TIME", "ACTOR", "ACTION", "CLIENT", "SOURCE", "DETAIL",
            ],
            &rows,
        )
    }

    fn json(&self) -> serde_json::Value {
        json!(self)
    }
}
