//! The partner API's resources as types, field for field as the API writes them (timestamps are
//! RFC 3339 strings, amounts are integer cents), and the page of a list.

use serde::{Deserialize, Serialize};

/// `GET /v1/me`: who the token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub client_id: String,
    pub expires_at: String,
    pub partner_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub currency: String,
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub sku: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    pub product_id: String,
    pub quantity: i64,
    pub updated_at: String,
    pub warehouse: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub created_at: String,
    pub currency: String,
    pub id: String,
    pub partner_id: String,
    pub status: String,
    pub total_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub amount_cents: i64,
    pub currency: String,
    pub due_at: String,
    pub id: String,
    pub issued_at: String,
    pub order_id: String,
    pub partner_id: String,
    pub status: String,
}

/// One page of a list: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The request for the page after this one (same `limit`), or `None` on the last page.
    pub fn next(&self, this: &PageRequest) -> Option<PageRequest> {
        self.next_cursor.as_ref().map(|cursor| PageRequest {
            limit: this.limit,
            cursor: Some(cursor.clone()),
        })
    }
}

/// Which page of a list to ask for: `limit` (1 to 100; the API's default is 20) and the
/// `cursor` of the previous page (opaque: pass back what the API returned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first() -> PageRequest {
        PageRequest::default()
    }

    pub fn limit(mut self, limit: u32) -> PageRequest {
        self.limit = Some(limit);
        self
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(limit) = self.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            query.push(("cursor", cursor.clone()));
        }
        query
    }
}
