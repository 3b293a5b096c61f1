//! What the partner API answers, as types: the JSON form of each resource, kept apart from the
//! store's rows so that a column added to a table does not reach partners by accident, and so
//! that every timestamp is written the same way (RFC 3339).
//!
//! Fields are declared in alphabetical order. The bodies used to be built as `serde_json::Value`,
//! whose objects sort their keys, so alphabetical is the order partners have always received;
//! declaring the fields that way keeps every response the same byte for byte.

use serde::{Serialize, Serializer};
use shared_claims::{AccessTokenClaims, ClientId, PartnerId};
use utoipa::ToSchema;

use crate::store::{Invoice, Order, Product, StockLevel};

/// `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A Unix time written as RFC 3339 (`2026-01-01T00:00:00+00:00`), or `null` when it lies outside
/// the range a date can be written for (no stored time does; the answer stays valid JSON anyway).
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub i64);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(time) => serializer.serialize_str(&time.to_rfc3339()),
            None => serializer.serialize_none(),
        }
    }
}

/// `GET /v1/me`: who the token says the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Rfc3339,
    #[schema(value_type = String)]
    pub partner_id: PartnerId,
    pub scopes: Vec<String>,
}

impl From<&AccessTokenClaims> for Me {
    fn from(claims: &AccessTokenClaims) -> Me {
        Me {
            client_id: claims.client_id.clone(),
            expires_at: Rfc3339(claims.exp),
            partner_id: claims.partner_id.clone(),
            scopes: claims.scope.iter().map(|s| s.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub currency: String,
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub sku: String,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> ProductView {
        ProductView {
            currency: p.currency,
            id: p.id,
            name: p.name,
            price_cents: p.price_cents,
            sku: p.sku,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockLevelView {
    pub product_id: String,
    pub quantity: i64,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Rfc3339,
    pub warehouse: String,
}

impl From<StockLevel> for StockLevelView {
    fn from(s: StockLevel) -> StockLevelView {
        StockLevelView {
            product_id: s.product_id,
            quantity: s.quantity,
            updated_at: Rfc3339(s.updated_at),
            warehouse: s.warehouse,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Rfc3339,
    pub currency: String,
    pub id: String,
    pub partner_id: String,
    pub status: String,
    pub total_cents: i64,
}

impl From<Order> for OrderView {
    fn from(o: Order) -> OrderView {
        OrderView {
            created_at: Rfc3339(o.created_at),
            currency: o.currency,
            id: o.id,
            partner_id: o.partner_id,
            status: o.status,
            total_cents: o.total_cents,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    pub amount_cents: i64,
    pub currency: String,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Rfc3339,
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: Rfc3339,
    pub order_id: String,
    pub partner_id: String,
    pub status: String,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> InvoiceView {
        InvoiceView {
            amount_cents: i.amount_cents,
            currency: i.currency,
            due_at: Rfc3339(i.due_at),
            id: i.id,
            issued_at: Rfc3339(i.issued_at),
            order_id: i.order_id,
            partner_id: i.partner_id,
            status: i.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: impl Serialize) -> String {
        serde_json::to_string(&value).unwrap()
    }

    // The expected strings are the API's answers for the seeded demo data from before these views
    // existed, copied verbatim: the views must not change a byte of them.

    #[test]
    fn an_order_is_written_as_before() {
        let order = Order {
            id: "ord_00001".into(),
            partner_id: "acme".into(),
            status: "shipped".into(),
            total_cents: 145_459,
            currency: "EUR".into(),
            created_at: 1_767_225_600,
        };
        assert_eq!(
            json(OrderView::from(order)),
            r#"{"created_at":"2026-01-01T00:00:00+00:00","currency":"EUR","id":"ord_00001","partner_id":"acme","status":"shipped","total_cents":145459}"#
        );
    }

    #[test]
    fn an_invoice_is_written_as_before() {
        let invoice = Invoice {
            id: "inv_00001".into(),
            partner_id: "acme".into(),
            order_id: "ord_00001".into(),
            status: "overdue".into(),
            amount_cents: 145_459,
            currency: "EUR".into(),
            issued_at: 1_767_312_000,
            due_at: 1_769_904_000,
        };
        assert_eq!(
            json(InvoiceView::from(invoice)),
            r#"{"amount_cents":145459,"currency":"EUR","due_at":"2026-02-01T00:00:00+00:00","id":"inv_00001","issued_at":"2026-01-02T00:00:00+00:00","order_id":"ord_00001","partner_id":"acme","status":"overdue"}"#
        );
    }

    #[test]
    fn a_page_of_stock_levels_is_written_as_before() {
        let level = |product_id: &str, warehouse: &str, quantity, updated_at| {
            StockLevelView::from(StockLevel {
                product_id: product_id.into(),
                warehouse: warehouse.into(),
                quantity,
                updated_at,
            })
        };
        let page = List {
            items: vec![
                level("prd_0001", "FRA-2", 26, 1_772_509_138),
                level("prd_0002", "DUB-1", 294, 1_771_711_756),
            ],
            next_cursor: Some("cHJkXzAwMDI".into()),
        };
        assert_eq!(
            json(page),
            r#"{"items":[{"product_id":"prd_0001","quantity":26,"updated_at":"2026-03-03T03:38:58+00:00","warehouse":"FRA-2"},{"product_id":"prd_0002","quantity":294,"updated_at":"2026-02-21T22:09:16+00:00","warehouse":"DUB-1"}],"next_cursor":"cHJkXzAwMDI"}"#
        );
    }

    #[test]
    fn a_product_is_written_as_before() {
        let product = Product {
            id: "prd_0001".into(),
            sku: "SKU-10007".into(),
            name: "Standard Gadget".into(),
            price_cents: 15_533,
            currency: "EUR".into(),
        };
        assert_eq!(
            json(ProductView::from(product)),
            r#"{"currency":"EUR","id":"prd_0001","name":"Standard Gadget","price_cents":15533,"sku":"SKU-10007"}"#
        );
    }

    #[test]
    fn me_is_written_as_before() {
        let claims = AccessTokenClaims {
            iss: "http://auth.test".into(),
            sub: "cl_1".into(),
            aud: shared_claims::Audience::One("partner-api".into()),
            exp: 1_767_226_200,
            iat: 1_767_225_600,
            nbf: 1_767_225_600,
            jti: "jti".into(),
            client_id: ClientId::parse("cl_1").unwrap(),
            scope: shared_claims::ScopeSet::parse("orders:read catalog:read").unwrap(),
            partner_id: PartnerId::parse("globex").unwrap(),
            cnf: None,
        };
        // Exactly how the handler built the body before: a `serde_json::Value`.
        let before = serde_json::json!({
            "client_id": claims.client_id,
            "partner_id": claims.partner_id,
            "scopes": ["catalog:read", "orders:read"],
            "expires_at": "2026-01-01T00:10:00+00:00",
        });
        assert_eq!(json(Me::from(&claims)), before.to_string());
    }

    #[test]
    fn a_last_page_has_a_null_cursor_and_an_unwritable_time_is_null() {
        let page: List<Rfc3339> = List {
            items: vec![Rfc3339(i64::MAX)],
            next_cursor: None,
        };
        assert_eq!(json(page), r#"{"items":[null],"next_cursor":null}"#);
    }
}
