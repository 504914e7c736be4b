//! Bearer JWT authentication (HS256 only) and the role extractors.
//!
//! [`Authenticated`] accepts any valid token; [`Admin`] also needs `role = admin` and
//! answers 403 otherwise. Tokens are never logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use flash_sale_app::{Caller, Role};
use flash_sale_client::ErrorCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// The secret used when none is configured. Development only: `serve` and `token`
/// log a warning (never the secret) when they fall back to it.
pub const DEVELOPMENT_SECRET: &str = "flash-sale-development-secret-do-not-use-in-production";

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;

/// `auth.max_token_lifetime` by default: a token whose `exp` lies further ahead than
/// this is refused, so that a leaked token cannot stay good for years.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_hours(24);

/// The claims of a flash-sale token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id, 1–64 characters.
    pub sub: String,
    /// `admin` or `buyer`.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch: refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Signs and verifies tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    max_lifetime: Duration,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth").finish_non_exhaustive()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid token")]
pub struct InvalidToken;

impl JwtAuth {
    /// Uses `secret` for both signing and verifying; an empty secret is refused.
    /// Tokens may live up to [`DEFAULT_MAX_TOKEN_LIFETIME`].
    pub fn new(secret: &SecretString) -> Result<Self, jsonwebtoken::errors::Error> {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            validation,
            max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        })
    }

    /// Refuses tokens whose `exp` lies further ahead than `max`.
    #[must_use]
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// A token for `sub` with `role`, valid for `ttl`.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = now_seconds();
        let claims = Claims {
            sub: sub.to_owned(),
            role: role.as_str().to_owned(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The caller a token stands for: signed with the secret, HS256, not expired, not
    /// before its `nbf`, and not good for longer than the maximum lifetime from now.
    pub fn verify(&self, token: &str) -> Result<Caller, InvalidToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| InvalidToken)?;
        let latest = now_seconds()
            .saturating_add(self.max_lifetime.as_secs())
            .saturating_add(LEEWAY_SECONDS);
        if data.claims.exp > latest {
            return Err(InvalidToken);
        }
        let role = Role::parse(&data.claims.role).ok_or(InvalidToken)?;
        Caller::new(&data.claims.sub, role).map_err(|_| InvalidToken)
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn unauthenticated() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        "a valid bearer token is required",
    )
}

fn caller_of(parts: &Parts, auth: &JwtAuth) -> Result<Caller, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthenticated)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(unauthenticated)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthenticated());
    }
    auth.verify(token.trim()).map_err(|_| unauthenticated())
}

/// Any authenticated caller (buyer or admin).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Self(caller.clone()));
        }
        let caller = caller_of(parts, &state.auth)?;
        parts.extensions.insert(caller.clone());
        Ok(Self(caller))
    }
}

/// An authenticated admin; a buyer gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state).await?;
        if caller.role != Role::Admin {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs the admin role",
            ));
        }
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(secret: &str) -> JwtAuth {
        JwtAuth::new(&SecretString::from(secret.to_owned())).expect("a valid secret")
    }

    /// `claims` signed with `algorithm` and the secret `s`.
    fn sign_with(algorithm: Algorithm, claims: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            claims,
            &EncodingKey::from_secret(b"s").expect("a valid secret"),
        )
        .expect("signs")
    }

    /// `claims` signed as the service signs (HS256) with the secret `s`.
    fn sign(claims: &Claims) -> String {
        sign_with(Algorithm::HS256, claims)
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(JwtAuth::new(&SecretString::from(String::new())).is_err());
    }

    #[test]
    fn an_issued_token_verifies_with_the_same_secret_only() {
        let token = auth("s1")
            .issue("alice", Role::Buyer, Duration::from_mins(1))
            .expect("signs");
        let caller = auth("s1").verify(&token).expect("valid");
        assert_eq!(caller.user_id.as_str(), "alice");
        assert_eq!(caller.role, Role::Buyer);
        assert_eq!(auth("s2").verify(&token), Err(InvalidToken));
    }

    #[test]
    fn expired_tokens_and_unknown_roles_are_refused() {
        let keys = auth("s");
        let now = now_seconds();
        let expired = Claims {
            sub: "a".into(),
            role: "buyer".into(),
            exp: now - 60,
            iat: None,
            nbf: None,
        };
        assert_eq!(keys.verify(&sign(&expired)), Err(InvalidToken));
        let within_leeway = Claims {
            exp: now - 2,
            ..expired.clone()
        };
        assert!(keys.verify(&sign(&within_leeway)).is_ok());
        let odd_role = Claims {
            role: "root".into(),
            exp: now + 60,
            ..expired.clone()
        };
        assert_eq!(keys.verify(&sign(&odd_role)), Err(InvalidToken));
        let long_sub = Claims {
            sub: "x".repeat(65),
            exp: now + 60,
            ..expired
        };
        assert_eq!(keys.verify(&sign(&long_sub)), Err(InvalidToken));
    }

    #[test]
    fn tokens_not_yet_valid_or_good_for_too_long_are_refused() {
        let keys = auth("s");
        let now = now_seconds();
        let hour = 3600;
        let fine = Claims {
            sub: "a".into(),
            role: "buyer".into(),
            exp: now + hour,
            iat: Some(now),
            nbf: Some(now - 10),
        };
        assert!(keys.verify(&sign(&fine)).is_ok());
        let not_yet = Claims {
            nbf: Some(now + 60),
            ..fine.clone()
        };
        assert_eq!(keys.verify(&sign(&not_yet)), Err(InvalidToken));
        let day = Claims {
            exp: now + 23 * hour,
            ..fine.clone()
        };
        assert!(keys.verify(&sign(&day)).is_ok());
        for exp in [now + 25 * hour, now + 10 * 365 * 24 * hour, u64::MAX] {
            let forever = Claims {
                exp,
                ..fine.clone()
            };
            assert_eq!(keys.verify(&sign(&forever)), Err(InvalidToken), "exp {exp}");
        }
        let short = auth("s").with_max_lifetime(Duration::from_mins(30));
        assert_eq!(short.verify(&sign(&fine)), Err(InvalidToken));
    }

    #[test]
    fn other_algorithms_are_refused() {
        let now = now_seconds();
        let claims = Claims {
            sub: "a".into(),
            role: "admin".into(),
            exp: now + 60,
            iat: None,
            nbf: None,
        };
        let hs512 = sign_with(Algorithm::HS512, &claims);
        assert_eq!(auth("s").verify(&hs512), Err(InvalidToken));
    }
}
