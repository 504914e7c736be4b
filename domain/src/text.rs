//! Titles and descriptions shared by events and products.

use crate::error::ValidationErrors;

/// Most characters in a title.
pub const TITLE_MAX: usize = 200;
/// Most characters in a description.
pub const DESCRIPTION_MAX: usize = 2000;

/// A title: 1–200 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Checks `value`; `field` names it in the violation.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationErrors> {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            Err(ValidationErrors::single(field, "must not be blank"))
        } else if chars > TITLE_MAX {
            Err(ValidationErrors::single(
                field,
                "must be 1 to 200 characters",
            ))
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description: at most 2000 characters, possibly empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Checks `value`; `field` names it in the violation.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationErrors> {
        if value.chars().count() > DESCRIPTION_MAX {
            Err(ValidationErrors::single(
                field,
                "must be at most 2000 characters",
            ))
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_must_have_visible_characters_and_fit() {
        assert!(Title::parse("title", "Phone").is_ok());
        assert!(Title::parse("title", "   ").is_err());
        assert!(Title::parse("title", "").is_err());
        assert!(Title::parse("title", &"é".repeat(200)).is_ok());
        assert!(Title::parse("title", &"é".repeat(201)).is_err());
    }

    #[test]
    fn descriptions_may_be_empty_but_not_too_long() {
        assert!(Description::parse("description", "").is_ok());
        assert!(Description::parse("description", &"x".repeat(2001)).is_err());
    }
}
