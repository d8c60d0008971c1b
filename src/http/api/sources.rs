//! `/v1/sources`: where events come from.
//!
//! A `webhook` source gets an unguessable `path_token` (256 random bits) at creation; its
//! ingest URL is `/ingest/<path_token>`. An `api` source is fed by `POST /v1/messages` and has
//! neither token nor verifier. Verification secrets are write-only: answers show them masked
//! (a known prefix such as `whsec_`, and the last four characters of secrets of 32 characters
//! or more).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::api_keys::DeletedView;
use super::{list_answer, rfc3339, validate_name, Envelope, ErrorBody, ListEnvelope, ListParams};
use crate::http::auth::Auth;
use crate::http::envelope::{ApiError, ApiJson, ApiPath, ApiQuery, Data, List};
use crate::http::AppState;
use crate::ids::{now_ms, random_token, SourceId};
use crate::model::{Source, SourceKind};
use crate::store::StoreError;
use crate::verify::{Provider, VerificationConfig};

/// Random bytes in a path token.
const PATH_TOKEN_BYTES: usize = 32;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_source, list_sources))
        .routes(routes!(get_source, update_source, delete_source))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceCreate {
    /// Unique within the account; `POST /v1/messages` may name the source by it.
    pub name: String,
    pub kind: SourceKind,
    /// Signature verification for `webhook` sources; absent means none.
    pub verification: Option<VerificationConfig>,
    /// Ingest requests per second accepted at most; over it: 429 with `Retry-After`, nothing
    /// stored. Absent: unlimited.
    pub rate_limit_per_s: Option<u32>,
    /// Burst size; the bucket starts full, so a burst this large passes at once (default:
    /// `rate_limit_per_s`).
    pub rate_limit_burst: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePatch {
    pub name: Option<String>,
    /// Replaces the whole verification setting (use provider `none` to turn it off).
    pub verification: Option<VerificationConfig>,
    /// Null removes the limit.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_s: Option<Option<u32>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_burst: Option<Option<u32>>,
}

fn check_rate(source: &Source) -> Result<(), StoreError> {
    for (field, value) in [
        ("rate_limit_per_s", source.rate_limit_per_s),
        ("rate_limit_burst", source.rate_limit_burst),
    ] {
        if matches!(value, Some(v) if v == 0 || v > 1_000_000) {
            return Err(StoreError::invalid(field, "must be between 1 and 1000000"));
        }
    }
    if source.rate_limit_burst.is_some() && source.rate_limit_per_s.is_none() {
        return Err(StoreError::invalid(
            "rate_limit_burst",
            "needs rate_limit_per_s",
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    pub id: SourceId,
    pub name: String,
    pub kind: SourceKind,
    /// `webhook` sources only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_token: Option<String>,
    /// `/ingest/<path_token>`; `webhook` sources only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_path: Option<String>,
    /// Secrets masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationConfig>,
    pub rate_limit_per_s: Option<u32>,
    pub rate_limit_burst: Option<u32>,
    /// Things worth knowing about this configuration, e.g. that nothing is verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn view(s: Source) -> SourceView {
    let mut warnings = Vec::new();
    let unverified = s
        .verification
        .as_ref()
        .is_none_or(|v| v.provider == Provider::None);
    if s.kind == SourceKind::Webhook && unverified {
        warnings.push(
            "no signature verification: anyone who knows the ingest URL can submit events"
                .to_owned(),
        );
    }
    SourceView {
        id: s.id,
        name: s.name,
        kind: s.kind,
        ingest_path: s.path_token.as_ref().map(|t| format!("/ingest/{t}")),
        path_token: s.path_token,
        verification: s.verification.as_ref().map(VerificationConfig::redacted),
        rate_limit_per_s: s.rate_limit_per_s,
        rate_limit_burst: s.rate_limit_burst,
        warnings,
        created_at: rfc3339(s.created_at_ms),
        updated_at: rfc3339(s.updated_at_ms),
    }
}

fn check_verification(
    kind: SourceKind,
    verification: Option<&VerificationConfig>,
) -> Result<(), StoreError> {
    let Some(v) = verification else {
        return Ok(());
    };
    if kind == SourceKind::Api {
        return Err(StoreError::invalid(
            "verification",
            "api sources are fed by the authenticated send API and take no verification",
        ));
    }
    v.validate().map_err(|problems| {
        let first = problems.into_iter().next();
        let (field, message) = first
            .map(|p| (format!("verification.{}", p.field), p.message))
            .unwrap_or_else(|| ("verification".into(), "is invalid".into()));
        StoreError::Invalid { field, message }
    })
}

/// Create a source.
#[utoipa::path(post, path = "/v1/sources", tag = "sources", request_body = SourceCreate,
    security(("api_key" = [])),
    responses((status = 201, body = Envelope<SourceView>), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn create_source(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(input): ApiJson<SourceCreate>,
) -> Result<Data<SourceView>, ApiError> {
    auth.require_write()?;
    validate_name("name", &input.name)?;
    check_verification(input.kind, input.verification.as_ref())?;
    let now = now_ms();
    let source = Source {
        id: SourceId::new(),
        account_id: auth.account,
        name: input.name,
        kind: input.kind,
        path_token: (input.kind == SourceKind::Webhook).then(|| random_token(PATH_TOKEN_BYTES)),
        verification: input.verification,
        rate_limit_per_s: input.rate_limit_per_s,
        rate_limit_burst: input.rate_limit_burst,
        created_at_ms: now,
        updated_at_ms: now,
    };
    check_rate(&source)?;
    let stored = source.clone();
    super::to_completion(async move {
        state.store().create_source(stored.clone()).await?;
        state.catalog().upsert_source(&stored);
        Ok(())
    })
    .await?;
    Ok(Data::created(view(source)))
}

#[utoipa::path(get, path = "/v1/sources", tag = "sources", params(ListParams),
    security(("api_key" = [])), responses((status = 200, body = ListEnvelope<SourceView>)))]
async fn list_sources(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<List<SourceView>, ApiError> {
    auth.require_read()?;
    let page = params.page()?;
    let sources = state
        .store()
        .list_sources(auth.account, page.after, page.limit)?;
    Ok(list_answer(sources, |s| s.id.raw(), view))
}

#[utoipa::path(get, path = "/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "src_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<SourceView>), (status = 404, body = ErrorBody)))]
async fn get_source(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<SourceId>,
) -> Result<Data<SourceView>, ApiError> {
    auth.require_read()?;
    let source = state
        .store()
        .source(auth.account, id)?
        .ok_or_else(|| ApiError::not_found("source"))?;
    Ok(Data::ok(view(source)))
}

/// Change a source's name or verification. Its kind and path token stay.
#[utoipa::path(patch, path = "/v1/sources/{id}", tag = "sources", request_body = SourcePatch,
    params(("id" = String, Path, description = "src_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<SourceView>), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_source(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<SourceId>,
    ApiJson(patch): ApiJson<SourcePatch>,
) -> Result<Data<SourceView>, ApiError> {
    auth.require_write()?;
    if let Some(name) = &patch.name {
        validate_name("name", name)?;
    }
    let account = auth.account;
    let source = super::to_completion(async move {
        let source = state
            .store()
            .update_source(account, id, move |s| {
                if let Some(v) = patch.verification {
                    check_verification(s.kind, Some(&v))?;
                    s.verification = Some(v);
                }
                if let Some(name) = patch.name {
                    s.name = name;
                }
                if let Some(v) = patch.rate_limit_per_s {
                    s.rate_limit_per_s = v;
                }
                if let Some(v) = patch.rate_limit_burst {
                    s.rate_limit_burst = v;
                }
                check_rate(s)?;
                s.updated_at_ms = now_ms();
                Ok(())
            })
            .await?;
        state.catalog().upsert_source(&source);
        Ok(source)
    })
    .await?;
    Ok(Data::ok(view(source)))
}

/// Delete a source and the routes that start at it. Its ingest URL stops working at once.
#[utoipa::path(delete, path = "/v1/sources/{id}", tag = "sources",
    params(("id" = String, Path, description = "src_…")), security(("api_key" = [])),
    responses((status = 200, body = Envelope<DeletedView>), (status = 404, body = ErrorBody)))]
async fn delete_source(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<SourceId>,
) -> Result<Data<DeletedView>, ApiError> {
    auth.require_write()?;
    super::to_completion(async move {
        let source = state.store().delete_source(auth.account, id).await?;
        state.catalog().remove_source(&source);
        state.catalog().reload_routes(state.store(), auth.account)
    })
    .await?;
    Ok(Data::ok(DeletedView {
        id: id.to_string(),
        deleted: true,
    }))
}
