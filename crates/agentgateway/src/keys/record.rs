//! The shape of a virtual key: the stored [`KeyRecord`], what a create ([`NewKey`]) or a PATCH
//! ([`KeyPatch`]) asks for, and the secret handed out once ([`KeySecret`]).
//!
//! These are plain data shared by the store, the cache and the admin API. A record never holds the
//! secret, only its digest; the secret exists in memory once, between its generation and the
//! admin API's 201 response.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::auth::KeyDigest;
use crate::budget::BudgetSpec;
use crate::identity::{Identity, KeyLimits, ModelPatterns};

/// One virtual key as stored. `revoked` keys stay listed but never authenticate.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// `key_` + 16 lowercase hex chars; the per-key limits' bucket name.
    pub id: String,
    /// SHA-256 of the secret: what the cache looks presented keys up by. Never rendered.
    pub digest: KeyDigest,
    /// `sk-agw-…` + the secret's last 4 chars, so people can tell their keys apart.
    pub hint: String,
    pub name: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub metadata: Map<String, Value>,
    /// `None`: every model the gateway routes.
    pub allowed_models: Option<ModelPatterns>,
    pub limits: KeyLimits,
    /// The key's own USD budgets; empty: none (its user's and team's still apply).
    pub budgets: Vec<BudgetSpec>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub revoked: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl KeyRecord {
    /// The identity requests made with this key carry.
    pub fn identity(&self) -> Identity {
        Identity {
            id: self.id.as_str().into(),
            name: Some(self.name.as_str().into()),
            user: self.user.as_deref().map(Into::into),
            team: self.team.as_deref().map(Into::into),
            metadata: self.metadata.clone(),
            allowed_models: self.allowed_models.clone(),
            limits: self.limits,
            limit_demands: Default::default(),
            expires_at: self.expires_at,
            budgets: self.budgets.clone(),
        }
    }

    /// Applies every field the patch sets; `limits` merge field by field, `budgets` are replaced
    /// as a whole list.
    pub fn apply(&mut self, patch: &KeyPatch) {
        if let Some(name) = &patch.name {
            self.name.clone_from(name);
        }
        set(&mut self.user, &patch.user);
        set(&mut self.team, &patch.team);
        if let Some(metadata) = &patch.metadata {
            self.metadata.clone_from(metadata);
        }
        set(&mut self.allowed_models, &patch.allowed_models);
        patch.limits.apply(&mut self.limits);
        if let Some(budgets) = &patch.budgets {
            self.budgets.clone_from(budgets);
        }
        set(&mut self.expires_at, &patch.expires_at);
    }
}

/// What a new key is created with (the admin API's validated POST body).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewKey {
    pub name: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub metadata: Map<String, Value>,
    pub allowed_models: Option<ModelPatterns>,
    pub limits: KeyLimits,
    pub budgets: Vec<BudgetSpec>,
    pub expires_at: Option<i64>,
}

/// A partial update. Outer `None`: leave the field alone; `Some(None)`: clear it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub user: Option<Option<String>>,
    pub team: Option<Option<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub allowed_models: Option<Option<ModelPatterns>>,
    pub limits: LimitsPatch,
    /// The whole new list (a budget has no identity to patch it by); `Some(vec![])` clears.
    pub budgets: Option<Vec<BudgetSpec>>,
    pub expires_at: Option<Option<i64>>,
}

/// A partial update of [`KeyLimits`], field by field, with the same `None`/`Some(None)` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsPatch {
    pub rpm: Option<Option<u64>>,
    pub tpm: Option<Option<u64>>,
    pub tpd: Option<Option<u64>>,
    pub max_parallel: Option<Option<u64>>,
}

impl LimitsPatch {
    pub fn apply(&self, limits: &mut KeyLimits) {
        set(&mut limits.rpm, &self.rpm);
        set(&mut limits.tpm, &self.tpm);
        set(&mut limits.tpd, &self.tpd);
        set(&mut limits.max_parallel, &self.max_parallel);
    }
}

/// Budgets as the admin API shows them and the store keeps them: `usd` a decimal string, so an
/// amount never passes through a float on its way out.
pub fn budgets_json(budgets: &[BudgetSpec]) -> Value {
    budgets
        .iter()
        .map(|b| json!({"usd": b.usd.to_string(), "window": b.window.as_str(), "soft": b.soft}))
        .collect()
}

fn set<T: Clone>(field: &mut Option<T>, patch: &Option<Option<T>>) {
    if let Some(value) = patch {
        field.clone_from(value);
    }
}

/// A freshly generated key secret. Its `Debug` is redacted so it cannot end up in a log by
/// accident; [`KeySecret::expose`] is the one deliberate way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(String);

impl KeySecret {
    pub(crate) fn new(secret: String) -> KeySecret {
        KeySecret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

/// The result of a create: the stored record, and the secret shown to the caller once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub record: KeyRecord,
    pub secret: KeySecret,
}
