//! Admin API bodies -> [`NewKey`] / [`KeyPatch`], with errors that name the field
//! (`limits.rpm: must be a positive integer`, `allowedModels[1]: ...`, `budgets[0].window: ...`).
//!
//! Bodies are walked as `serde_json::Value` rather than derived with serde because a PATCH must
//! tell an absent field (leave it) from an explicit `null` (clear it), and because every error has
//! to name its field path; unknown fields are refused so a typo never passes silently. Create and
//! PATCH share one parser: a create is a patch on nothing that must name the key.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::de::value::{Error as DeError, StrDeserializer};
use serde::de::IntoDeserializer;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::record::{KeyPatch, LimitsPatch, NewKey};
use crate::budget::{BudgetSpec, Window};
use crate::identity::{KeyLimits, ModelPatterns};

const NAME_MAX_CHARS: usize = 128;
const LABEL_MAX_CHARS: usize = 256;

/// A `POST /v1/keys` body. `now` (unix seconds) is what `expiresAt` must be after.
pub fn parse_new_key(body: &[u8], now: i64) -> Result<NewKey, String> {
    let patch = parse_key_patch(body, now)?;
    let name = patch.name.ok_or("name: required")?;
    let mut limits = KeyLimits::default();
    patch.limits.apply(&mut limits);
    Ok(NewKey {
        name,
        user: patch.user.flatten(),
        team: patch.team.flatten(),
        metadata: patch.metadata.unwrap_or_default(),
        allowed_models: patch.allowed_models.flatten(),
        limits,
        budgets: patch.budgets.unwrap_or_default(),
        expires_at: patch.expires_at.flatten(),
    })
}

/// A `PATCH /v1/keys/{id}` body: every field optional, `null` clears a nullable one.
pub fn parse_key_patch(body: &[u8], now: i64) -> Result<KeyPatch, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("the request body must be a JSON object".into());
    };
    let mut patch = KeyPatch::default();
    for (field, value) in fields {
        match field.as_str() {
            "name" => patch.name = Some(name(value)?),
            "user" => patch.user = Some(nullable(value, |v| label("user", v))?),
            "team" => patch.team = Some(nullable(value, |v| label("team", v))?),
            "metadata" => patch.metadata = Some(metadata(value)?),
            "allowedModels" => patch.allowed_models = Some(nullable(value, models)?),
            "limits" => patch.limits = limits(value)?,
            "budgets" => patch.budgets = Some(nullable(value, budgets)?.unwrap_or_default()),
            "expiresAt" => patch.expires_at = Some(nullable(value, |v| expiry(v, now))?),
            other => return Err(unknown(other)),
        }
    }
    Ok(patch)
}

fn unknown(field: &str) -> String {
    // The field name is the caller's own text; cap it so the error stays a line.
    let shown: String = field.chars().take(64).collect();
    format!("{shown}: unknown field")
}

/// `null` -> `None`; anything else goes through `parse`.
fn nullable<T>(
    value: Value,
    parse: impl FnOnce(Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match value {
        Value::Null => Ok(None),
        value => parse(value).map(Some),
    }
}

fn name(value: Value) -> Result<String, String> {
    bounded_string(value, NAME_MAX_CHARS)
        .ok_or_else(|| format!("name: must be a string of 1 to {NAME_MAX_CHARS} characters"))
}

fn label(field: &str, value: Value) -> Result<String, String> {
    bounded_string(value, LABEL_MAX_CHARS).ok_or_else(|| {
        format!("{field}: must be null or a string of 1 to {LABEL_MAX_CHARS} characters")
    })
}

fn bounded_string(value: Value, max_chars: usize) -> Option<String> {
    match value {
        Value::String(text) if (1..=max_chars).contains(&text.chars().count()) => Some(text),
        _ => None,
    }
}

fn metadata(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err("metadata: must be an object".into()),
    }
}

fn models(value: Value) -> Result<ModelPatterns, String> {
    let Value::Array(items) = value else {
        return Err("allowedModels: must be null or an array of model patterns".into());
    };
    let list = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(text),
            _ => Err(format!("allowedModels[{i}]: must be a string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    ModelPatterns::parse(&list).map_err(|e| format!("allowedModels{e}"))
}

/// `null` clears every limit; an object sets (or, with `null`, clears) the limits it names.
fn limits(value: Value) -> Result<LimitsPatch, String> {
    let fields = match value {
        Value::Null => {
            return Ok(LimitsPatch {
                rpm: Some(None),
                tpm: Some(None),
                tpd: Some(None),
                max_parallel: Some(None),
            })
        }
        Value::Object(fields) => fields,
        _ => return Err("limits: must be an object".into()),
    };
    let mut patch = LimitsPatch::default();
    for (field, value) in fields {
        let slot = match field.as_str() {
            "rpm" => &mut patch.rpm,
            "tpm" => &mut patch.tpm,
            "tpd" => &mut patch.tpd,
            "maxParallel" => &mut patch.max_parallel,
            other => return Err(format!("limits.{}", unknown(other))),
        };
        *slot = Some(nullable(value, |v| {
            limit(&v).ok_or_else(|| format!("limits.{field}: must be a positive integer"))
        })?);
    }
    Ok(patch)
}

/// 1..=i64::MAX: the database stores limits as signed 64-bit integers.
fn limit(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .filter(|&n| n >= 1 && i64::try_from(n).is_ok())
}

fn expiry(value: Value, now: i64) -> Result<i64, String> {
    let at = value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .ok_or("expiresAt: must be an RFC 3339 timestamp, e.g. 2030-01-01T00:00:00Z")?
        .timestamp();
    if at <= now {
        return Err("expiresAt: must be in the future".into());
    }
    Ok(at)
}

/// The whole list (`null` or `[]`: none); each item `{"usd", "window", "soft"}`.
fn budgets(value: Value) -> Result<Vec<BudgetSpec>, String> {
    let Value::Array(items) = value else {
        return Err("budgets: must be an array of {\"usd\", \"window\", \"soft\"}".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| budget(i, item))
        .collect()
}

fn budget(i: usize, value: Value) -> Result<BudgetSpec, String> {
    let Value::Object(fields) = value else {
        return Err(format!(
            "budgets[{i}]: must be an object like {{\"usd\": \"10\", \"window\": \"1d\"}}"
        ));
    };
    let (mut usd, mut window, mut soft) = (None, None, false);
    for (field, value) in fields {
        let bad = |what: &str| format!("budgets[{i}].{field}: must be {what}");
        match field.as_str() {
            "usd" => usd = Some(amount(&value).ok_or_else(|| bad(AMOUNT))?),
            "window" => {
                let text = value.as_str().and_then(parse_window);
                window = Some(text.ok_or_else(|| bad(WINDOWS))?);
            }
            "soft" => soft = value.as_bool().ok_or_else(|| bad("true or false"))?,
            other => return Err(format!("budgets[{i}].{}", unknown(other))),
        }
    }
    Ok(BudgetSpec {
        usd: usd.ok_or_else(|| format!("budgets[{i}].usd: required"))?,
        window: window.ok_or_else(|| format!("budgets[{i}].window: required"))?,
        soft,
    })
}

const AMOUNT: &str = "a positive amount of US dollars, e.g. \"10\" or 2.5";
const WINDOWS: &str = "one of 1h, 1d, 7d, 30d, month";

/// A JSON string is read exactly; a number by its shortest decimal text, which is what the
/// caller wrote for any amount of up to 15 significant digits.
fn amount(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::String(text) => Cow::Borrowed(text.as_str()),
        Value::Number(number) => Cow::Owned(number.to_string()),
        _ => return None,
    };
    parse_usd(&text)
}

/// A positive US-dollar amount: `10`, `2.50`, `1e3`; never rounded (too many decimals: `None`).
pub fn parse_usd(text: &str) -> Option<Decimal> {
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()
        .filter(|usd| *usd > Decimal::ZERO)
}

/// A window in its config spelling (`1h`, `1d`, `7d`, `30d`, `month`), read by the same serde
/// definition the config uses so the two can never disagree.
pub fn parse_window(text: &str) -> Option<Window> {
    let text: StrDeserializer<'_, DeError> = text.into_deserializer();
    Window::deserialize(text).ok()
}
