//! `/v1/keys`: the virtual-key endpoints, and the key object they all render.
//!
//! The secret appears in exactly one response, the create's 201; every other view shows the
//! `keyHint` only. Bodies are validated by [`crate::keys::validate`] before the store sees them.
//! Budget amounts are rendered as decimal strings (`"usd": "10.50"`), exact where a JSON number
//! would pass through a float in most clients.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use super::error::{json_response, ApiError};
use super::KeyUsage;
use crate::auth::unix_now;
use crate::keys::record::budgets_json;
use crate::keys::validate::{parse_key_patch, parse_new_key};
use crate::keys::{KeyRecord, KeyService};

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// `GET /v1/keys`: every key, revoked ones included (flagged).
pub(super) async fn list(keys: &KeyService) -> Reply {
    let records = keys.list().await?;
    let data: Vec<Value> = records.iter().map(key_json).collect();
    Ok(ok(StatusCode::OK, json!({ "data": data })))
}

/// `POST /v1/keys`: 201 with the key object plus `key`, the secret, shown this once.
pub(super) async fn create(keys: &KeyService, body: &[u8]) -> Reply {
    let new = parse_new_key(body, unix_now()).map_err(ApiError::invalid)?;
    let created = keys.create(&new).await?;
    let mut object = key_json(&created.record);
    object["key"] = Value::from(created.secret.expose());
    Ok(ok(StatusCode::CREATED, object))
}

/// `GET /v1/keys/{id}`: the key object plus what it has used of its limits.
pub(super) async fn get(keys: &KeyService, usage: &dyn KeyUsage, id: &str) -> Reply {
    let record = keys
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no key with this id"))?;
    let identity = record.identity();
    let mut object = key_json(&record);
    object["usage"] = usage.usage(&identity).await;
    Ok(ok(StatusCode::OK, object))
}

/// `PATCH /v1/keys/{id}`: absent fields stay, `null` clears; 409 on a revoked key.
pub(super) async fn update(keys: &KeyService, id: &str, body: &[u8]) -> Reply {
    let patch = parse_key_patch(body, unix_now()).map_err(ApiError::invalid)?;
    let record = keys.update(id, &patch).await?;
    Ok(ok(StatusCode::OK, key_json(&record)))
}

/// `DELETE /v1/keys/{id}`: revokes (idempotent); the key stays listed as revoked.
pub(super) async fn revoke(keys: &KeyService, id: &str) -> Reply {
    let record = keys.revoke(id).await?;
    Ok(ok(StatusCode::OK, key_json(&record)))
}

fn ok(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    json_response(status, body.to_string().into())
}

/// The key object: every field present, `null` when unset, timestamps RFC 3339 UTC.
pub(crate) fn key_json(record: &KeyRecord) -> Value {
    let limits = &record.limits;
    json!({
        "id": record.id,
        "name": record.name,
        "user": record.user,
        "team": record.team,
        "metadata": record.metadata,
        "allowedModels": record.allowed_models.as_ref().map(|p| p.as_strings()),
        "limits": {
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "tpd": limits.tpd,
            "maxParallel": limits.max_parallel,
        },
        "budgets": budgets_json(&record.budgets),
        "expiresAt": record.expires_at.and_then(rfc3339),
        "revoked": record.revoked,
        "createdAt": rfc3339(record.created_at),
        "updatedAt": rfc3339(record.updated_at),
        "keyHint": record.hint,
    })
}

fn rfc3339(unix_seconds: i64) -> Option<String> {
    DateTime::from_timestamp(unix_seconds, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}
