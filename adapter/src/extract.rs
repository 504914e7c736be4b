//! Extractors whose every rejection is the error envelope.
//!
//! - [`ValidatedJson`]: a JSON content type (else 400), a body that parses as JSON
//!   with no object naming a key twice (else 400), of the right shape (else 422 naming
//!   the field), passing the `validator` rules (else 422 with every field's problem);
//!   at most 64 KiB (else 413).
//! - [`ValidatedQuery`]: query parameters of the right types and ranges (else 422).
//! - [`IdPath`]: an id in the path; one that cannot exist is simply not found (404).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use flash_sale_client::{Checked, ErrorCode, FieldErrorDto};
use serde::de::{DeserializeOwned, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use validator::{ValidationErrors, ValidationErrorsKind};

use crate::error::ApiError;
use crate::middleware::Deadline;

/// A JSON body, parsed and validated.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatedJson<T>(pub T);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The wire name of the field a serde error is about.
fn serde_field(path: &str, message: &str) -> String {
    // "missing field `title`" carries the name only in the message.
    if let Some(start) = message.find('`')
        && message.starts_with("missing field")
        && let Some(len) = message[start + 1..].find('`')
    {
        let name = &message[start + 1..start + 1 + len];
        return if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
    }
    if path == "." {
        "body".to_owned()
    } else {
        path.to_owned()
    }
}

/// Turns a deserialization error into a clean message (no Rust type names).
fn serde_message(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.starts_with("missing field") {
        "is required".to_owned()
    } else if message.starts_with("unknown variant") {
        let expected = message.split("expected ").nth(1).unwrap_or("a known value");
        format!("must be {expected}")
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let expected = message.split("expected ").nth(1).unwrap_or("another type");
        format!(
            "has the wrong type or value (expected {})",
            friendly_type(expected)
        )
    } else if message.contains("premature end of input")
        || message.contains("input contains invalid characters")
    {
        "must be an RFC 3339 date-time".to_owned()
    } else {
        message.to_owned()
    }
}

fn friendly_type(expected: &str) -> &str {
    match expected {
        "u32" | "u64" | "i32" | "i64" | "u16" | "u8" | "usize" => "an integer in range",
        "a string" | "a borrowed string" => "a string",
        _ => expected,
    }
}

/// Every field problem `validator` found, sorted by field.
pub fn validation_details(errors: &ValidationErrors) -> Vec<FieldErrorDto> {
    let mut details = Vec::new();
    collect_details("", errors, &mut details);
    details.sort_by(|a, b| a.field.cmp(&b.field));
    details
}

fn collect_details(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldErrorDto>) {
    for (field, kind) in errors.errors() {
        let name = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    out.push(FieldErrorDto {
                        field: name.clone(),
                        message: error
                            .message
                            .as_ref()
                            .map_or_else(|| error.code.to_string(), ToString::to_string),
                    });
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_details(&name, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_details(&format!("{name}[{index}]"), inner, out);
                }
            }
        }
    }
}

/// How [`Strict`] says which key came twice.
const DUPLICATE_KEY: &str = "duplicate key ";

/// A JSON value in which no object names a key twice: with `{"quantity":1,
/// "quantity":3}` a plain parse keeps the last one, and a proxy or a log that keeps
/// the first would see another order than the one placed.
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    /// A number with a zero fraction or an exponent (`32.0`, `1e3`) is, as in JSON
    /// Schema, the integer it names; integer fields take it.
    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // -2^63 ..= 2^63 (exclusive): the integral floats an i64 holds exactly.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
            return Ok((v as i64).into());
        }
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("{DUPLICATE_KEY}`{key:.64}`")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Parses and validates a JSON value already known to be well-formed.
pub fn from_json_value<T: DeserializeOwned + Checked>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    }
    let parsed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        ApiError::invalid_field(serde_field(&path, &message), serde_message(&message))
    })?;
    parsed
        .check()
        .map_err(|e| ApiError::validation(validation_details(&e)))?;
    Ok(parsed)
}

impl<S, T> FromRequest<S> for ValidatedJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Checked,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        // The body must arrive within the request's time budget: a client that sends
        // less than its Content-Length, or trickles it, does not keep the connection.
        let deadline = req.extensions().get::<Deadline>().map(|d| d.0);
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, read).await.map_err(|_| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    "the body did not arrive within the request's time budget",
                )
            })?,
            None => read.await,
        };
        let bytes = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the body is larger than 64 KiB")
            } else {
                ApiError::new(ErrorCode::BadRequest, "the body could not be read")
            }
        })?;
        let Strict(value) = serde_json::from_slice(&bytes).map_err(|e| {
            let message = e.to_string();
            match message.split_once(DUPLICATE_KEY) {
                Some((_, rest)) => ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "the body names a key twice: {}",
                        rest.split(" at line").next().unwrap_or(rest)
                    ),
                ),
                None => ApiError::new(ErrorCode::BadRequest, "the body is not valid JSON"),
            }
        })?;
        from_json_value(value).map(Self)
    }
}

/// Query parameters, parsed and validated.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatedQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidatedQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Checked,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        let parsed: T = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let field = serde_field(&path, &message);
            let message =
                if message.contains("invalid digit") || message.contains("number too large") {
                    "must be a whole number in range".to_owned()
                } else {
                    serde_message(&message)
                };
            ApiError::invalid_field(field, message)
        })?;
        parsed
            .check()
            .map_err(|e| ApiError::validation(validation_details(&e)))?;
        Ok(Self(parsed))
    }
}

/// A numeric id from the path; anything that is not one is `NOT_FOUND`.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("resource"))?;
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Self)
            .ok_or_else(|| ApiError::not_found("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth() {
        for body in [
            r#"{"quantity":1,"quantity":3}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"[{"x":[{"k":1,"k":2}]}]"#,
        ] {
            let error = serde_json::from_slice::<Strict>(body.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{body} was accepted"));
            assert!(error.to_string().contains(DUPLICATE_KEY), "{error}");
        }
        let Strict(value) =
            serde_json::from_slice(br#"{"a":[1,-2,2.5,"s",null,true,{"b":{}}],"c":{}}"#)
                .expect("parses");
        assert_eq!(
            value,
            serde_json::json!({"a":[1,-2,2.5,"s",null,true,{"b":{}}],"c":{}})
        );
    }

    #[test]
    fn a_number_with_a_zero_fraction_is_the_integer_it_names() {
        let place = |body: &str| {
            let Strict(value) = serde_json::from_slice(body.as_bytes()).expect("parses");
            from_json_value::<flash_sale_client::OrderPlaceCmd>(value)
        };
        let cmd = place(r#"{"product_id":2.0,"quantity":1e3}"#).expect("integers");
        assert_eq!((cmd.product_id, cmd.quantity), (2, 1000));
        for (body, field) in [
            (r#"{"product_id":2,"quantity":2.5}"#, "quantity"),
            (r#"{"product_id":1e300,"quantity":1}"#, "product_id"),
            (r#"{"product_id":-0.5,"quantity":1}"#, "product_id"),
        ] {
            let error = place(body).expect_err(body);
            let details = error.body().details.clone().unwrap_or_default();
            assert_eq!(details[0].field, field, "{body}");
        }
    }

    #[test]
    fn serde_errors_name_the_field() {
        assert_eq!(serde_field(".", "missing field `title`"), "title");
        assert_eq!(
            serde_field("quantity", "invalid type: string \"x\", expected u32"),
            "quantity"
        );
        assert_eq!(
            serde_field(".", "invalid type: sequence, expected struct"),
            "body"
        );
    }

    #[test]
    fn serde_messages_hide_rust_types() {
        assert_eq!(serde_message("missing field `title`"), "is required");
        assert_eq!(
            serde_message("invalid value: integer `-1`, expected u32"),
            "has the wrong type or value (expected an integer in range)"
        );
    }

    #[test]
    fn json_content_types_are_recognised() {
        let json = |v: &'static str| is_json(Some(&header::HeaderValue::from_static(v)));
        assert!(json("application/json"));
        assert!(json("application/json; charset=utf-8"));
        assert!(json("application/problem+json"));
        assert!(!json("text/plain"));
        assert!(!is_json(None));
    }
}
