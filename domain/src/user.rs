//! Who is buying.

use std::fmt;

use crate::error::ValidationErrors;

/// A user id (the token's `sub`): 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Most characters in a user id.
    pub const MAX_LEN: usize = 64;

    /// Checks `value`.
    pub fn parse(value: &str) -> Result<Self, ValidationErrors> {
        let len = value.chars().count();
        if (1..=Self::MAX_LEN).contains(&len) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationErrors::single(
                "sub",
                "must be 1 to 64 characters",
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable, non-negative 64-bit hash (FNV-1a) that is the same on every
    /// instance and every run, unlike `std`'s randomised hasher.
    pub fn stable_hash(&self) -> u64 {
        self.0
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            })
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_one_to_sixty_four_characters() {
        assert!(UserId::parse("u").is_ok());
        assert!(UserId::parse(&"u".repeat(64)).is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"u".repeat(65)).is_err());
    }

    #[test]
    fn the_stable_hash_does_not_change_between_runs() {
        assert_eq!(
            UserId::parse("a").expect("valid").stable_hash(),
            0xaf63_dc4c_8601_ec8c
        );
    }
}
