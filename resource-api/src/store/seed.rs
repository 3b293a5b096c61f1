//! Demo data, seeded into an empty database: three partners, 50 products with stock levels, and
//! orders and invoices for every partner. Ids are interleaved across partners, so a partner's
//! neighbouring ids belong to someone else (which the isolation tests rely on).

use storage::{Db, on_pool};

pub const PARTNERS: [(&str, &str); 3] = [
    ("acme", "Acme Corp"),
    ("globex", "Globex"),
    ("initech", "Initech"),
];
pub const PRODUCTS: usize = 50;
pub const ORDERS_PER_PARTNER: usize = 25;
pub const INVOICES_PER_PARTNER: usize = 15;

const NOUNS: [&str; 10] = [
    "Widget", "Gadget", "Sprocket", "Flange", "Gasket", "Bracket", "Valve", "Bearing", "Coupling",
    "Spindle",
];
const ADJECTIVES: [&str; 5] = ["Small", "Standard", "Large", "Heavy-duty", "Stainless"];
const WAREHOUSES: [&str; 3] = ["AMS-1", "FRA-2", "DUB-1"];
const ORDER_STATUS: [&str; 4] = ["pending", "shipped", "delivered", "cancelled"];
const INVOICE_STATUS: [&str; 3] = ["open", "paid", "overdue"];

/// Fixed start of the demo timeline (2026-01-01T00:00:00Z), so seeded data is the same everywhere.
const EPOCH: i64 = 1_767_225_600;

/// A small deterministic generator: demo data should look varied yet be identical on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> i64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound) as i64
    }
}

/// Seeds the demo data unless partners exist already. Rows are inserted with `ON CONFLICT DO
/// NOTHING` in one transaction, so two instances starting at once on one database both succeed.
pub async fn seed_if_empty(db: &Db) -> anyhow::Result<()> {
    let (count,): (i64,) = on_pool!(db, pool => {
        sqlx::query_as("SELECT COUNT(*) FROM partners").fetch_one(pool).await?
    });
    if count > 0 {
        return Ok(());
    }
    let mut rng = Lcg(42);
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        for (id, name) in PARTNERS {
            sqlx::query("INSERT INTO partners (partner_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        for n in 1..=PRODUCTS {
            let id = format!("prd_{n:04}");
            let name = format!("{} {}", ADJECTIVES[n % ADJECTIVES.len()], NOUNS[n % NOUNS.len()]);
            sqlx::query(
                "INSERT INTO products (id, sku, name, price_cents, currency) VALUES ($1, $2, $3, $4, 'EUR') \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(format!("SKU-{:05}", 10_000 + n * 7))
            .bind(name)
            .bind(199 + rng.next(50_000))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO inventory (product_id, warehouse, quantity, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(WAREHOUSES[n % WAREHOUSES.len()])
            .bind(rng.next(1_000))
            .bind(EPOCH + rng.next(86_400 * 300))
            .execute(&mut *tx)
            .await?;
        }
        let mut order_ids: Vec<(String, &str, i64, i64)> = Vec::new();
        for n in 0..ORDERS_PER_PARTNER * PARTNERS.len() {
            let partner = PARTNERS[n % PARTNERS.len()].0;
            let id = format!("ord_{:05}", n + 1);
            let total = 1_000 + rng.next(250_000);
            let created = EPOCH + (n as i64) * 3_600 * 29;
            sqlx::query(
                "INSERT INTO orders (id, partner_id, status, total_cents, currency, created_at) \
                 VALUES ($1, $2, $3, $4, 'EUR', $5) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(partner)
            .bind(ORDER_STATUS[rng.next(ORDER_STATUS.len() as u64) as usize])
            .bind(total)
            .bind(created)
            .execute(&mut *tx)
            .await?;
            order_ids.push((id, partner, total, created));
        }
        for (n, (order_id, partner, total, created)) in
            order_ids.iter().take(INVOICES_PER_PARTNER * PARTNERS.len()).enumerate()
        {
            sqlx::query(
                "INSERT INTO invoices (id, partner_id, order_id, status, amount_cents, currency, issued_at, due_at) \
                 VALUES ($1, $2, $3, $4, $5, 'EUR', $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(format!("inv_{:05}", n + 1))
            .bind(*partner)
            .bind(order_id)
            .bind(INVOICE_STATUS[rng.next(INVOICE_STATUS.len() as u64) as usize])
            .bind(*total)
            .bind(created + 86_400)
            .bind(created + 86_400 * 31)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}
