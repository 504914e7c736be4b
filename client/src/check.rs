//! [`Checked`]: field rules (`validator`) plus the rules that relate two fields, all
//! reported together.

use std::borrow::Cow;

use validator::{Validate, ValidationError, ValidationErrors};

/// A command or query that can check itself completely before it is sent or run.
pub trait Checked: Validate {
    /// Every rule, field and cross-field; all violations together.
    fn check(&self) -> Result<(), ValidationErrors> {
        self.validate()
    }
}

/// Adds a violation of `field` to `errors`.
pub(crate) fn violation(errors: &mut ValidationErrors, field: &'static str, message: &'static str) {
    let mut error = ValidationError::new("invalid");
    error.message = Some(Cow::Borrowed(message));
    errors.add(field, error);
}

/// Runs the field rules, then `cross` on the same error set.
pub(crate) fn with_cross_rules(
    cmd: &impl Validate,
    cross: impl FnOnce(&mut ValidationErrors),
) -> Result<(), ValidationErrors> {
    let mut errors = match cmd.validate() {
        Ok(()) => ValidationErrors::new(),
        Err(errors) => errors,
    };
    cross(&mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
