//! The `/v1` routes: the table that declares each route with its scope, and the handlers. Each
//! handler reads as a short script: extract, one store call, respond with a view (`views`).

use axum::Json;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::auth::{Access, Principal, ProtectedRoutes};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::store::Page;
use crate::views::{InvoiceView, List, Me, OrderView, ProductView, StockLevelView};

/// The tag of every `/v1` operation in the OpenAPI description.
const TAG: &str = "partner API";

/// Every `/v1` route with its access requirement and handler. The router, the OpenAPI
/// description (`crate::openapi`) and the check of the online routes of
/// `RESOURCE_INTROSPECT_ROUTES` are all built from this table, so adding a route is one `.route`
/// call here (with the handler's `#[utoipa::path]`) and nothing else.
pub fn v1() -> ProtectedRoutes {
    ProtectedRoutes::new()
        .route(Access::AnyValidToken, routes!(me))
        .route(Access::Scope("catalog:read"), routes!(list_products))
        .route(Access::Scope("catalog:read"), routes!(get_product))
        .route(Access::Scope("inventory:read"), routes!(list_inventory))
        .route(Access::Scope("orders:read"), routes!(list_orders))
        .route(Access::Scope("orders:read"), routes!(get_order))
        .route(Access::Scope("invoices:read"), routes!(list_invoices))
        .route(Access::Scope("invoices:read"), routes!(get_invoice))
}

/// The query of a list request, as the OpenAPI description shows it ([`ListParams`] reads it).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // a description, never built
pub struct ListQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page (opaque: pass it back as it came). Any value of
    /// this form is a position in the list; others are 400.
    #[param(pattern = "^[A-Za-z0-9_]{1,64}$")]
    cursor: Option<String>,
}

/// The id in an item's path, as the OpenAPI description shows it ([`ItemId`] reads it).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a description, never built
pub struct ItemPath {
    /// The item's `id`. Another partner's id answers 404, as an unknown one does.
    #[param(min_length = 1, max_length = 64)]
    id: String,
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Longest id we look up; longer ones cannot exist and answer 404 without a query.
const MAX_ID_LEN: usize = 64;

/// `limit` and `cursor` of a list request.
pub struct ListParams {
    limit: i64,
    after: String,
}

impl ListParams {
    fn page(&self) -> Page<'_> {
        Page {
            after: &self.after,
            limit: self.limit,
        }
    }

    /// Trims the extra row the store fetched, turns the last id into the next cursor and each row
    /// into its view.
    fn finish<T, V>(
        &self,
        mut rows: Vec<T>,
        id: impl Fn(&T) -> &str,
        view: impl FnMut(T) -> V,
    ) -> List<V> {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| id(last).to_owned())
        } else {
            None
        };
        List {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(query) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let mut limit = DEFAULT_LIMIT;
        let mut after = String::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "limit" => {
                    limit = value
                        .parse::<i64>()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "limit must be an integer from 1 to {MAX_LIMIT}"
                            ))
                        })?;
                }
                "cursor" => after = decode_cursor(&value)?,
                _ => {}
            }
        }
        Ok(ListParams { limit, after })
    }
}

/// Cursors are opaque to clients: the last id seen (ids are `[A-Za-z0-9_]`, at most 64 bytes).
/// Anything else is a bad request.
fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    // The last id of the previous page. Every value of the documented form is a position (the
    // items after it), so no well-formed cursor is refused; nothing else reaches the query.
    if cursor.is_empty()
        || cursor.len() > MAX_ID_LEN
        || !cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(ApiError::BadRequest(
            "cursor must be the next_cursor of an earlier page".into(),
        ));
    }
    Ok(cursor.to_owned())
}

/// An id from the path; malformed ids answer 404 like unknown ones.
pub struct ItemId(String);

impl<S: Send + Sync> FromRequestParts<S> for ItemId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(ApiError::NotFound);
        }
        Ok(ItemId(id))
    }
}

#[utoipa::path(
    get,
    path = "/v1/me",
    tag = TAG,
    responses(
        (status = 200, description = "Who the token says the caller is.", body = Me),
    )
)]
pub async fn me(Principal(claims): Principal) -> Json<Me> {
    Json(Me::from(&*claims))
}

#[utoipa::path(
    get,
    path = "/v1/products",
    tag = TAG,
    params(ListQuery),
    responses(
        (status = 200, description = "A page of products.", body = List<ProductView>),
        (status = 400, description = "`limit` is not an integer from 1 to 100, or `cursor` is not of the documented form.", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    params: ListParams,
) -> Result<Json<List<ProductView>>, ApiError> {
    let rows = state.store.products(params.page()).await?;
    Ok(Json(params.finish(rows, |p| &p.id, ProductView::from)))
}

#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = TAG,
    params(ItemPath),
    responses(
        (status = 200, description = "The product.", body = ProductView),
        (status = 404, description = "No such product (or another partner's).", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    ItemId(id): ItemId,
) -> Result<Json<ProductView>, ApiError> {
    let product = state.store.product(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(product.into()))
}

#[utoipa::path(
    get,
    path = "/v1/inventory",
    tag = TAG,
    params(ListQuery),
    responses(
        (status = 200, description = "A page of stock levels.", body = List<StockLevelView>),
        (status = 400, description = "`limit` is not an integer from 1 to 100, or `cursor` is not of the documented form.", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_inventory(
    State(state): State<AppState>,
    params: ListParams,
) -> Result<Json<List<StockLevelView>>, ApiError> {
    let rows = state.store.inventory(params.page()).await?;
    Ok(Json(params.finish(
        rows,
        |s| &s.product_id,
        StockLevelView::from,
    )))
}

#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = TAG,
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's orders.", body = List<OrderView>),
        (status = 400, description = "`limit` is not an integer from 1 to 100, or `cursor` is not of the documented form.", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    Principal(claims): Principal,
    params: ListParams,
) -> Result<Json<List<OrderView>>, ApiError> {
    let rows = state
        .store
        .orders(&claims.partner_id, params.page())
        .await?;
    Ok(Json(params.finish(rows, |o| &o.id, OrderView::from)))
}

#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = TAG,
    params(ItemPath),
    responses(
        (status = 200, description = "The order.", body = OrderView),
        (status = 404, description = "No such order (or another partner's).", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    Principal(claims): Principal,
    ItemId(id): ItemId,
) -> Result<Json<OrderView>, ApiError> {
    let order = state
        .store
        .order(&claims.partner_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(order.into()))
}

#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = TAG,
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's invoices.", body = List<InvoiceView>),
        (status = 400, description = "`limit` is not an integer from 1 to 100, or `cursor` is not of the documented form.", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_invoices(
    State(state): State<AppState>,
    Principal(claims): Principal,
    params: ListParams,
) -> Result<Json<List<InvoiceView>>, ApiError> {
    let rows = state
        .store
        .invoices(&claims.partner_id, params.page())
        .await?;
    Ok(Json(params.finish(rows, |i| &i.id, InvoiceView::from)))
}

#[utoipa::path(
    get,
    path = "/v1/invoices/{id}",
    tag = TAG,
    params(ItemPath),
    responses(
        (status = 200, description = "The invoice.", body = InvoiceView),
        (status = 404, description = "No such invoice (or another partner's).", body = api_docs::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_invoice(
    State(state): State<AppState>,
    Principal(claims): Principal,
    ItemId(id): ItemId,
) -> Result<Json<InvoiceView>, ApiError> {
    let invoice = state
        .store
        .invoice(&claims.partner_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(invoice.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor("ord_00012").unwrap(), "ord_00012");
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["***", "", "a' OR 1=1 --", "ord-1", "\u{0}", long.as_str()] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
