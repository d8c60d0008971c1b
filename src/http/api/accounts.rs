//! `POST /v1/accounts` (operator only), `GET /v1/account` and `PATCH /v1/account` (the
//! account's settings: notification destination, retention).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api_keys::mint;
use super::{rfc3339, validate_name, Envelope, ErrorBody};
use crate::http::auth::{Auth, Operator};
use crate::http::envelope::{ApiError, ApiJson, Data};
use crate::http::AppState;
use crate::ids::{now_ms, AccountId, DestinationId};
use crate::model::{Account, Scope};
use crate::store::retention::AccountSettings;
use crate::store::{Store, StoreError};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_account))
        .routes(routes!(get_account, update_account))
}

/// Every field optional: an absent field is left as it is, null clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// Destination that receives hookgate's notices about this account (e.g.
    /// `endpoint.disabled`) as signed webhooks; null turns them off.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub notification_destination_id: Option<Option<DestinationId>>,
    /// Days events are kept after receipt, 0 to 36500 (0: for ever); null returns to the
    /// gateway's `[retention] days`. Events with deliveries still queued are kept regardless.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub retention_days: Option<Option<u32>>,
}

/// Change the account's settings.
#[utoipa::path(patch, path = "/v1/account", tag = "accounts", request_body = AccountPatch,
    security(("api_key" = [])),
    responses((status = 200, body = Envelope<AccountView>), (status = 422, body = ErrorBody)))]
async fn update_account(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> Result<Data<AccountView>, ApiError> {
    auth.require_write()?;
    let settings = AccountSettings {
        notification_destination_id: patch.notification_destination_id,
        retention_days: patch.retention_days,
    };
    let account = state
        .store()
        .update_account_settings(auth.account, settings)
        .await?;
    Ok(Data::ok(view(account)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: AccountId,
    pub name: String,
    pub created_at: String,
    pub notification_destination_id: Option<DestinationId>,
    /// The account's own retention in days (0: for ever); null: the gateway's default.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    pub account: AccountView,
    /// The account's first API key (scope `full`). Shown once; only its hash is stored.
    pub api_key: String,
}

fn view(a: Account) -> AccountView {
    AccountView {
        id: a.id,
        name: a.name,
        created_at: rfc3339(a.created_at_ms),
        notification_destination_id: a.notification_destination_id,
        retention_days: a.retention_days,
    }
}

/// Creates an account and its first full-scope key; shared by the API and the CLI.
pub async fn create(store: &Store, name: String) -> Result<(Account, String), StoreError> {
    let now = now_ms();
    let account = Account {
        id: AccountId::new(),
        name,
        created_at_ms: now,
        notification_destination_id: None,
        retention_days: None,
    };
    let (key, secret) = mint(account.id, "default".into(), Scope::Full, now);
    store.create_account(account.clone(), key).await?;
    Ok((account, secret))
}

/// Create an account (operator key). Answers its first API key, shown once.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = AccountCreate,
    security(("operator_key" = [])),
    responses((status = 201, body = Envelope<AccountCreated>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<AccountCreate>,
) -> Result<Data<AccountCreated>, ApiError> {
    validate_name("name", &input.name)?;
    let (account, api_key) = create(state.store(), input.name).await?;
    Ok(Data::created(AccountCreated {
        account: view(account),
        api_key,
    }))
}

/// The account the API key belongs to.
#[utoipa::path(get, path = "/v1/account", tag = "accounts", security(("api_key" = [])),
    responses((status = 200, body = Envelope<AccountView>), (status = 401, body = ErrorBody)))]
async fn get_account(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Data<AccountView>, ApiError> {
    auth.require_read()?;
    let account = state
        .store()
        .account(auth.account)?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(Data::ok(view(account)))
}
