//! The partner API's data: one small function per query, parameters always bound, the same SQL on
//! SQLite and PostgreSQL. Orders and invoices are only ever read with the caller's partner id in
//! the `WHERE` clause, so isolation does not depend on a handler remembering a check. Their
//! functions take that id as a [`PartnerId`] (in the handlers, the verified token's `partner_id`)
//! rather than a string, so no other string at hand, such as an id from the path, fits there.

mod seed;

use shared_claims::PartnerId;
use sqlx::FromRow;
use sqlx::migrate::Migrator;
use storage::{Db, on_pool};

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct StockLevel {
    pub product_id: String,
    pub warehouse: String,
    pub quantity: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Order {
    pub id: String,
    pub partner_id: String,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Invoice {
    pub id: String,
    pub partner_id: String,
    pub order_id: String,
    pub status: String,
    pub amount_cents: i64,
    pub currency: String,
    pub issued_at: i64,
    pub due_at: i64,
}

/// One page of a keyset-paginated list: items with ids greater than `after`, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: &'a str,
    pub limit: i64,
}

impl Store {
    /// Connects, migrates, and seeds the demo data into an empty database.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        Store::open_waiting(url, storage::DEFAULT_WAIT).await
    }

    /// [`Store::open`], where a statement waits at most `wait` for a lock or a connection.
    pub async fn open_waiting(url: &str, wait: std::time::Duration) -> anyhow::Result<Store> {
        let db = Db::connect_waiting(url, wait).await?;
        db.migrate(&SQLITE, &POSTGRES).await?;
        let store = Store { db };
        seed::seed_if_empty(&store.db).await?;
        Ok(store)
    }

    /// Readiness: the partner data can be read (see [`Db::probe_read`]).
    pub async fn probe_read(&self) -> anyhow::Result<()> {
        self.db.probe_read("SELECT 1 FROM partners LIMIT 1").await
    }

    pub async fn close(&self) {
        self.db.close().await
    }

    /// Asks for one more row than the page holds, so the caller knows whether a next page exists.
    pub async fn products(&self, page: Page<'_>) -> anyhow::Result<Vec<Product>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, sku, name, price_cents, currency FROM products WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(page.after)
            .bind(page.limit + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn product(&self, id: &str) -> anyhow::Result<Option<Product>> {
        let row = on_pool!(&self.db, pool => {
            sqlx::query_as("SELECT id, sku, name, price_cents, currency FROM products WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    pub async fn inventory(&self, page: Page<'_>) -> anyhow::Result<Vec<StockLevel>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT product_id, warehouse, quantity, updated_at FROM inventory \
                 WHERE product_id > $1 ORDER BY product_id LIMIT $2",
            )
            .bind(page.after)
            .bind(page.limit + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn orders(
        &self,
        partner_id: &PartnerId,
        page: Page<'_>,
    ) -> anyhow::Result<Vec<Order>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, partner_id, status, total_cents, currency, created_at FROM orders \
                 WHERE partner_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(partner_id.as_str())
            .bind(page.after)
            .bind(page.limit + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn order(&self, partner_id: &PartnerId, id: &str) -> anyhow::Result<Option<Order>> {
        let row = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, partner_id, status, total_cents, currency, created_at FROM orders \
                 WHERE partner_id = $1 AND id = $2",
            )
            .bind(partner_id.as_str())
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    pub async fn invoices(
        &self,
        partner_id: &PartnerId,
        page: Page<'_>,
    ) -> anyhow::Result<Vec<Invoice>> {
        let rows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, partner_id, order_id, status, amount_cents, currency, issued_at, due_at \
                 FROM invoices WHERE partner_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(partner_id.as_str())
            .bind(page.after)
            .bind(page.limit + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn invoice(
        &self,
        partner_id: &PartnerId,
        id: &str,
    ) -> anyhow::Result<Option<Invoice>> {
        let row = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "SELECT id, partner_id, order_id, status, amount_cents, currency, issued_at, due_at \
                 FROM invoices WHERE partner_id = $1 AND id = $2",
            )
            .bind(partner_id.as_str())
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }
}
