//! Bearer-key authentication: account API keys (`hk_…`) and the operator key.
//!
//! A key is looked up by its SHA-256, so the store never holds a usable key and the lookup
//! itself is the comparison. The operator key is compared as a hash with `subtle`, in constant
//! time. Failures are counted by reason and answered 401 without saying which part was wrong.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::envelope::ApiError;
use super::AppState;
use crate::catalog::KeyEntry;
use crate::ids::{AccountId, ApiKeyId};
use crate::model::Scope;

/// Every account API key starts with this.
pub const KEY_PREFIX: &str = "hk_";
/// Random bytes in a key (192 bits).
pub const KEY_RANDOM_BYTES: usize = 24;

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An authenticated account key.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    pub account: AccountId,
    pub key_id: ApiKeyId,
    pub scope: Scope,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let metrics = state.api_metrics();
        let Some(token) = bearer(parts) else {
            metrics.auth_failure("missing");
            return Err(ApiError::unauthorized(
                "missing API key: send Authorization: Bearer hk_…",
            ));
        };
        if !token.starts_with(KEY_PREFIX) {
            metrics.auth_failure("invalid");
            return Err(ApiError::unauthorized("invalid API key"));
        }
        let hash = hash_key(token);
        let cached = state.catalog().key(&hash);
        let entry = match cached {
            Some(e) => e,
            None => {
                let key = state
                    .store()
                    .api_key_by_hash(&hash)
                    .map_err(ApiError::from)?;
                let Some(key) = key else {
                    metrics.auth_failure("invalid");
                    return Err(ApiError::unauthorized("invalid API key"));
                };
                let e = KeyEntry {
                    account: key.account_id,
                    key_id: key.id,
                    scope: key.scope,
                };
                state.catalog().remember_key(hash, e);
                e
            }
        };
        let auth = Auth {
            account: entry.account,
            key_id: entry.key_id,
            scope: entry.scope,
        };
        let api = &state.config().api;
        if let (Some(per_s), Some(burst)) = (
            std::num::NonZeroU32::new(api.rate_limit_per_s),
            std::num::NonZeroU32::new(api.rate_limit_burst),
        ) {
            if let Err(wait) = state.catalog().check_key_rate(auth.key_id, per_s, burst) {
                metrics.auth_failure("rate_limited");
                let mut e = ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "this API key's request rate limit is exceeded; retry after Retry-After seconds",
                );
                e.retry_after_s = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
                return Err(e);
            }
        }
        // Read-only keys may only read, whatever the handler; checked here once so no
        // handler can forget it.
        if auth.scope == Scope::ReadOnly && parts.method != Method::GET {
            metrics.auth_failure("scope");
            return Err(ApiError::forbidden("this API key is read-only"));
        }
        Ok(auth)
    }
}

// === impl Auth ===

impl Auth {
    /// Reading the account's resources: full and read-only keys.
    pub fn require_read(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Full | Scope::ReadOnly => Ok(()),
            Scope::SendOnly => Err(ApiError::forbidden("this API key may only send messages")),
        }
    }

    /// Changing the account's resources: full keys only.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Full => Ok(()),
            Scope::ReadOnly => Err(ApiError::forbidden("this API key is read-only")),
            Scope::SendOnly => Err(ApiError::forbidden("this API key may only send messages")),
        }
    }

    /// `POST /v1/messages`: full and send-only keys.
    pub fn require_send(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Full | Scope::SendOnly => Ok(()),
            Scope::ReadOnly => Err(ApiError::forbidden("this API key is read-only")),
        }
    }
}

/// The operator (`[admin] api_key` / `HOOKGATE_ADMIN_KEY`).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let metrics = state.api_metrics();
        let Some(expected) = &state.config().admin.api_key else {
            metrics.auth_failure("operator_disabled");
            return Err(ApiError::forbidden(
                "operator endpoints are disabled: set [admin] api_key or HOOKGATE_ADMIN_KEY",
            ));
        };
        let Some(token) = bearer(parts) else {
            metrics.auth_failure("missing");
            return Err(ApiError::unauthorized(
                "missing operator key: send Authorization: Bearer <admin key>",
            ));
        };
        // Hash both sides so the comparison is constant-time regardless of lengths.
        let ok = hash_key(token).ct_eq(&hash_key(expected.expose()));
        if bool::from(ok) {
            Ok(Operator)
        } else {
            metrics.auth_failure("invalid");
            Err(ApiError::unauthorized("invalid operator key"))
        }
    }
}
