//! `/v1/routes`: which source's events go to which destination.
//!
//! A route without `source_id` is a catch-all for every source of the account. The
//! `event_type_pattern` filters by type (`invoice.*`, `orders/*`, comma-separated globs);
//! absent, every type matches. Both ends are checked to exist in the caller's account inside
//! the same transaction that stores the route.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api_keys::DeletedView;
use super::{list_answer, rfc3339, Envelope, ErrorBody, ListEnvelope, ListParams};
use crate::http::auth::Auth;
use crate::http::envelope::{ApiError, ApiJson, ApiPath, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{now_ms, DestinationId, RouteId, SourceId};
use crate::model::Route;
use crate::routing::pattern::EventTypePattern;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_route, list_routes))
        .routes(routes!(get_route, delete_route))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCreate {
    /// Absent: catch-all for every source of the account.
    pub source_id: Option<SourceId>,
    pub destination_id: DestinationId,
    /// Absent: every event type.
    pub event_type_pattern: Option<EventTypePattern>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    pub id: RouteId,
    pub source_id: Option<SourceId>,
    pub destination_id: DestinationId,
    pub event_type_pattern: Option<EventTypePattern>,
    pub created_at: String,
}

pub fn view(r: Route) -> RouteView {
    RouteView {
        id: r.id,
        source_id: r.source_id,
        destination_id: r.destination_id,
        event_type_pattern: r.event_type_pattern,
        created_at: rfc3339(r.created_at_ms),
    }
}

#[utoipa::path(post, path = "/v1/routes", tag = "routes", request_body = RouteCreate,
    security(("api_key" = [])),
    responses((status = 201, body = Envelope<RouteView>), (status = 422, body = ErrorBody)))]
async fn create_route(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<RouteCreate>,
) -> Result<Data<RouteView>, ApiError> {
    auth.require_write()?;
    let route = Route {
        id: RouteId::new(),
        account_id: auth.account,
        source_id: input.source_id,
        destination_id: input.destination_id,
        event_type_pattern: input.event_type_pattern,
        created_at_ms: now_ms(),
    };
    let stored = route.clone();
    super::to_completion(async move {
        state.store().create_route(stored).await?;
        state.catalog().reload_routes(state.store(), auth.account)
    })
    .await?;
    Ok(Data::created(view(route)))
}

#[utoipa::path(get, path = "/v1/routes", tag = "routes", params(ListParams),
    security(("api_key" = [])), responses((status = 200, body = ListEnvelope<RouteView>)))]
async fn list_routes(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<List<RouteView>, ApiError> {
    auth.require_read()?;
    let page = params.page()?;
    let routes = state
        .store()
        .list_routes(auth.account, page.after, page.limit)?;
    Ok(list_answer(routes, |r| r.id.raw(), view))
}

#[utoipa::path(get, path = "/v1/routes/{id}", tag = "routes",
    params(("id" = String, Path, description = "rte_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<RouteView>), (status = 404, body = ErrorBody)))]
async fn get_route(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<RouteId>,
) -> Result<Data<RouteView>, ApiError> {
    auth.require_read()?;
    let route = state
        .store()
        .route(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("route"))?;
    Ok(Data::ok(view(route)))
}

#[utoipa::path(delete, path = "/v1/routes/{id}", tag = "routes",
    params(("id" = String, Path, description = "rte_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DeletedView>), (status = 404, body = ErrorBody)))]
async fn delete_route(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<RouteId>,
) -> Result<Data<DeletedView>, ApiError> {
    auth.require_write()?;
    super::to_completion(async move {
        state.store().delete_route(auth.account, id).await?;
        state.catalog().reload_routes(state.store(), auth.account)
    })
    .await?;
    Ok(Data::ok(DeletedView {
        id: id.to_string(),
        deleted: true,
    }))
}
