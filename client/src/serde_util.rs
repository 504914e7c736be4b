//! Small serde helpers shared by the DTOs.

use serde::{Deserialize, Deserializer};

/// Deserializes a field that distinguishes "absent" (`None`) from "explicitly null"
/// (`Some(None)`); use with `#[serde(default, deserialize_with = "double_option")]`.
#[expect(
    clippy::option_option,
    reason = "absent, null and a value are three different patches"
)]
pub(crate) fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
