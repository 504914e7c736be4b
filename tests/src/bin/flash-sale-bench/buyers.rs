//! Buyers' tokens, signed before a scenario's clock starts.
//!
//! Every order and sold-out request comes from a new buyer, so it carries a token of
//! its own. Signed while the clock ran, each token put about 20 µs of the load tool's
//! own work (HMAC, JSON, base64) on the two cores it shares with the service, which
//! measured the tool as much as the service. The tokens are signed up front, on every
//! core, for as many requests as the scenario can possibly send (about 80 MB for 10 s);
//! a request past them is signed when it is sent, as before.

use std::borrow::Cow;
use std::time::Duration;

use flash_sale_adapter::auth::JwtAuth;
use flash_sale_app::Role;

/// More requests per second than any scenario reaches on this machine.
const MOST_PER_SECOND: f64 = 40_000.0;

/// Tokens of the buyers `{prefix}-0`, `{prefix}-1`, ….
pub struct Buyers {
    auth: JwtAuth,
    prefix: String,
    tokens: Vec<String>,
}

impl Buyers {
    /// Signs the tokens of the buyers a scenario of `duration` can reach (blocking the
    /// calling thread for a second or two).
    pub fn sign(auth: &JwtAuth, prefix: &str, duration: Duration) -> Self {
        let count = (duration.as_secs_f64() * MOST_PER_SECOND).ceil() as usize;
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = count.div_ceil(threads).max(1);
        let tokens = std::thread::scope(|scope| {
            let signers: Vec<_> = (0..count)
                .step_by(chunk)
                .map(|first| {
                    scope.spawn(move || {
                        (first..count.min(first + chunk))
                            .map(|n| issue(auth, &format!("{prefix}-{n}")))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            signers
                .into_iter()
                .flat_map(|s| s.join().expect("a signer panicked"))
                .collect()
        });
        Self {
            auth: auth.clone(),
            prefix: prefix.to_owned(),
            tokens,
        }
    }

    /// The token of buyer `n`.
    pub fn token(&self, n: u64) -> Cow<'_, str> {
        usize::try_from(n)
            .ok()
            .and_then(|n| self.tokens.get(n))
            .map_or_else(
                || Cow::Owned(issue(&self.auth, &format!("{}-{n}", self.prefix))),
                |token| Cow::Borrowed(token.as_str()),
            )
    }
}

fn issue(auth: &JwtAuth, user: &str) -> String {
    auth.issue(user, Role::Buyer, Duration::from_hours(1))
        .expect("signs")
}
