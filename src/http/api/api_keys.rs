//! `/v1/api-keys`: create (the key is shown once), list, get, revoke.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{list_answer, rfc3339, validate_name, Envelope, ErrorBody, ListEnvelope, ListParams};
use crate::http::auth::{hash_key, Auth, KEY_PREFIX, KEY_RANDOM_BYTES};
use crate::http::envelope::{ApiError, ApiJson, ApiPath, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{random_token, AccountId, ApiKeyId};
use crate::model::{ApiKey, Scope};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, delete_api_key))
}

/// Mints a key: the record to store and the secret to show once.
pub fn mint(account: AccountId, name: String, scope: Scope, now_ms: u64) -> (ApiKey, String) {
    let secret = format!("{KEY_PREFIX}{}", random_token(KEY_RANDOM_BYTES));
    let key = ApiKey {
        id: ApiKeyId::new(),
        account_id: account,
        name,
        scope,
        prefix: secret.chars().take(KEY_PREFIX.len() + 6).collect(),
        hash: hash_key(&secret),
        created_at_ms: now_ms,
    };
    (key, secret)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    pub name: String,
    /// `full` (default), `read-only` or `send-only`.
    #[serde(default = "default_scope")]
    pub scope: Scope,
}

fn default_scope() -> Scope {
    Scope::Full
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: String,
    /// The whole key; present only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

pub fn view(k: ApiKey) -> ApiKeyView {
    ApiKeyView {
        id: k.id,
        name: k.name,
        scope: k.scope,
        prefix: k.prefix,
        created_at: rfc3339(k.created_at_ms),
        key: None,
    }
}

/// Create an API key. The `key` is in this answer only; hookgate keeps just its hash.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = ApiKeyCreate,
    security(("api_key" = [])),
    responses((status = 201, body = Envelope<ApiKeyView>), (status = 422, body = ErrorBody)))]
async fn create_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<ApiKeyCreate>,
) -> Result<Data<ApiKeyView>, ApiError> {
    auth.require_write()?;
    validate_name("name", &input.name)?;
    let (key, secret) = mint(auth.account, input.name, input.scope, crate::ids::now_ms());
    state.store().create_api_key(key.clone()).await?;
    let mut v = view(key);
    v.key = Some(secret);
    Ok(Data::created(v))
}

/// List the account's API keys (never the keys themselves).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(ListParams),
    security(("api_key" = [])), responses((status = 200, body = ListEnvelope<ApiKeyView>)))]
async fn list_api_keys(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<List<ApiKeyView>, ApiError> {
    auth.require_read()?;
    let page = params.page()?;
    let keys = state
        .store()
        .list_api_keys(auth.account, page.after, page.limit)?;
    Ok(list_answer(keys, |k| k.id.raw(), view))
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "key_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<ApiKeyView>), (status = 404, body = ErrorBody)))]
async fn get_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> Result<Data<ApiKeyView>, ApiError> {
    auth.require_read()?;
    let key = state
        .store()
        .api_key(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("api key"))?;
    Ok(Data::ok(view(key)))
}

/// Revoke an API key. Takes effect for the next request.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "key_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DeletedView>), (status = 404, body = ErrorBody)))]
async fn delete_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<ApiKeyId>,
) -> Result<Data<DeletedView>, ApiError> {
    auth.require_write()?;
    let account = auth.account;
    super::to_completion(async move {
        let hash = state.store().delete_api_key(account, id).await?;
        state.catalog().forget_key(&hash);
        Ok(())
    })
    .await?;
    Ok(Data::ok(DeletedView {
        id: id.to_string(),
        deleted: true,
    }))
}

/// Answer of every DELETE.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedView {
    pub id: String,
    pub deleted: bool,
}
