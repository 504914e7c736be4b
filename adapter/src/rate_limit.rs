//! Optional rate limits (`rate_limit.*`): requests per client address on the API, and
//! order placements per buyer. Over the limit: 429 `RATE_LIMITED` with `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flash_sale_client::ErrorCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::state::AppState;

/// The configured limiters; a limit of 0 is off.
#[derive(Debug, Default)]
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_user: Option<DefaultKeyedRateLimiter<String>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_second).map(|n| RateLimiter::keyed(Quota::per_second(n)))
}

fn refuse(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::new(ErrorCode::RateLimited, "too many requests; slow down")
        .with_retry_after(wait.as_secs().max(1))
}

impl RateLimits {
    /// Limits of `per_user_per_second` order placements per buyer and
    /// `per_ip_per_second` API requests per client address; 0 turns one off.
    pub fn new(per_user_per_second: u32, per_ip_per_second: u32) -> Self {
        Self {
            per_ip: limiter(per_ip_per_second),
            per_user: limiter(per_user_per_second),
        }
    }

    /// Counts one order placement of `user`.
    pub fn check_user(&self, user: &str) -> Result<(), ApiError> {
        match &self.per_user {
            Some(limiter) => limiter.check_key(&user.to_owned()).map_err(|n| refuse(&n)),
            None => Ok(()),
        }
    }

    /// Whether requests are limited per client address.
    pub fn per_ip_enabled(&self) -> bool {
        self.per_ip.is_some()
    }

    /// Counts one request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.per_ip {
            Some(limiter) => limiter.check_key(&ip).map_err(|n| refuse(&n)),
            None => Ok(()),
        }
    }

    /// Forgets keys that have not been seen for a while (call now and then).
    pub fn retain_recent(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_user {
            limiter.retain_recent();
        }
    }
}

/// Middleware: the per-address limit on the API routes.
pub async fn per_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(ip) = ip
        && let Err(refused) = state.limits.check_ip(ip)
    {
        return refused.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_over_the_limit_is_told_when_to_retry() {
        let limits = RateLimits::new(2, 0);
        assert!(limits.check_user("a").is_ok());
        assert!(limits.check_user("a").is_ok());
        let refused = limits.check_user("a").expect_err("third in a second");
        assert_eq!(refused.body().code, ErrorCode::RateLimited);
        assert!(limits.check_user("b").is_ok(), "limits are per buyer");
        assert!(limits.check_ip(IpAddr::from([127, 0, 0, 1])).is_ok(), "off");
    }
}
