//! Who is calling: API-key authentication (`llm.policies.apiKey`) and the caller's [`Identity`].
//!
//! Keys are held only as SHA-256 digests: the presented key is hashed once, looked up by digest,
//! and the match is confirmed with a constant-time comparison. A lookup by digest leaks nothing
//! useful about the key itself, and the config (or a dump of it) never has to hold a secret.
//! The [`KeyLookup`] trait is the seam where dynamic (database-backed) keys plug in: static keys
//! are asked first, then the dynamic key cache.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ApiKeyEntry, ApiKeyMode, ApiKeyPolicy};
pub use crate::identity::Identity;
use crate::identity::ModelPatterns;

/// SHA-256 of a presented or configured key.
pub type KeyDigest = [u8; 32];

/// A static key's id: `static-` + the first 12 hex digits of its digest. It names the key's
/// rate-limit buckets, spend rows and budgets, so it must not move when the config's key list is
/// reordered; 48 bits of a hash of a high-entropy secret reveal nothing about it.
pub fn static_id(digest: &KeyDigest) -> String {
    format!("static-{}", hex::encode(&digest[..6]))
}

pub fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// Resolves a key digest to an identity: static config keys, or the dynamic key cache.
/// Implementations answer from memory: this runs on every request.
pub trait KeyLookup: Send + Sync {
    fn lookup(&self, digest: &KeyDigest) -> Option<Arc<Identity>>;
}

/// Keys from the config file.
#[derive(Default)]
pub struct StaticKeys {
    by_digest: HashMap<KeyDigest, Arc<Identity>>,
}

impl StaticKeys {
    pub fn from_entries(entries: &[ApiKeyEntry]) -> Result<StaticKeys, String> {
        let mut by_digest = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let digest = match (&entry.key, &entry.key_hash) {
                (Some(key), _) => digest(key),
                (None, Some(hash)) => crate::config::parse_key_hash(hash)
                    .map_err(|e| format!("llm.policies.apiKey.keys[{i}].keyHash: {e}"))?,
                (None, None) => return Err(format!("llm.policies.apiKey.keys[{i}]: no key")),
            };
            let name = entry.name.clone().or_else(|| {
                entry
                    .metadata
                    .get("name")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            let text = |field: &str| {
                let value = entry.metadata.get(field)?.as_str()?;
                Some(Arc::from(value))
            };
            let allowed_models = entry
                .allowed_models
                .as_deref()
                .map(ModelPatterns::parse)
                .transpose()
                .map_err(|e| format!("llm.policies.apiKey.keys[{i}].allowedModels{e}"))?;
            let identity = Identity {
                id: static_id(&digest).into(),
                name: name.map(Into::into),
                user: text("user"),
                team: text("team"),
                metadata: entry.metadata.clone(),
                allowed_models,
                limits: entry.limits,
                limit_demands: Default::default(),
                expires_at: None,
                budgets: entry.budgets.clone(),
            };
            if by_digest.insert(digest, Arc::new(identity)).is_some() {
                return Err(format!("llm.policies.apiKey.keys[{i}]: duplicate key"));
            }
        }
        Ok(StaticKeys { by_digest })
    }
}

impl KeyLookup for StaticKeys {
    fn lookup(&self, presented: &KeyDigest) -> Option<Arc<Identity>> {
        let (stored, identity) = self.by_digest.get_key_value(presented)?;
        bool::from(stored.ct_eq(presented)).then(|| identity.clone())
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Invalid,
}

/// The apiKey policy: mode plus where keys are looked up.
pub struct Authenticator {
    mode: ApiKeyMode,
    static_keys: StaticKeys,
    dynamic: Option<Arc<dyn KeyLookup>>,
}

impl Authenticator {
    pub fn from_policy(policy: &ApiKeyPolicy) -> Result<Authenticator, String> {
        Ok(Authenticator {
            mode: policy.mode,
            static_keys: StaticKeys::from_entries(&policy.keys)?,
            dynamic: None,
        })
    }

    /// Also accepts the keys `dynamic` knows (the virtual-key cache).
    pub fn with_dynamic(mut self, dynamic: Arc<dyn KeyLookup>) -> Authenticator {
        self.dynamic = Some(dynamic);
        self
    }

    /// Resolves the caller from `Authorization: Bearer`, `x-api-key` or `api-key`.
    /// Ok(None) means anonymous access that the mode allows. An expired key is an unknown key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Arc<Identity>>, AuthError> {
        let found = presented_key(headers).map(|key| self.lookup(&digest(key)));
        match (self.mode, found) {
            (_, Some(Some(identity))) => Ok(Some(identity)),
            (ApiKeyMode::Strict, None) => Err(AuthError::Missing),
            (ApiKeyMode::Strict | ApiKeyMode::Optional, Some(None)) => Err(AuthError::Invalid),
            (ApiKeyMode::Optional | ApiKeyMode::Permissive, None)
            | (ApiKeyMode::Permissive, Some(None)) => Ok(None),
        }
    }
}

impl Authenticator {
    fn lookup(&self, digest: &KeyDigest) -> Option<Arc<Identity>> {
        let identity = self
            .static_keys
            .lookup(digest)
            .or_else(|| self.dynamic.as_ref()?.lookup(digest))?;
        if identity.expires_at.is_some() && identity.expired_at(unix_now()) {
            return None;
        }
        Some(identity)
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Headers that may carry the caller's key, in the order they are tried: OpenAI SDKs send
/// `Authorization: Bearer`, Anthropic SDKs `x-api-key`, Azure SDKs `api-key`.
pub const KEY_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// The key the caller presented, if any. `Authorization` wins over `x-api-key`, then `api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    KEY_HEADERS[1..].iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: ApiKeyMode) -> ApiKeyPolicy {
        let mut metadata = serde_json::Map::new();
        metadata.insert("user".into(), "alice".into());
        ApiKeyPolicy {
            mode,
            keys: vec![
                ApiKeyEntry {
                    key: Some("sk-alice".into()),
                    key_hash: None,
                    name: None,
                    metadata,
                    allowed_models: None,
                    limits: Default::default(),
                    budgets: Vec::new(),
                },
                ApiKeyEntry {
                    key: None,
                    key_hash: Some(format!("sha256:{}", hex::encode(digest("sk-bob")))),
                    name: Some("bob-key".into()),
                    metadata: serde_json::Map::new(),
                    allowed_models: Some(vec!["gpt-4o*".into()]),
                    limits: Default::default(),
                    budgets: Vec::new(),
                },
            ],
        }
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn accepts_bearer_and_x_api_key_and_hashed_keys() {
        let auth = Authenticator::from_policy(&policy(ApiKeyMode::Strict)).unwrap();
        let alice = auth
            .authenticate(&headers("authorization", "Bearer sk-alice"))
            .unwrap()
            .unwrap();
        assert_eq!(alice.metadata["user"], "alice");
        assert_eq!(alice.id.as_ref(), static_id(&digest("sk-alice")));
        assert!(alice.id.starts_with("static-") && alice.id.len() == 19);
        let bob = auth
            .authenticate(&headers("x-api-key", "sk-bob"))
            .unwrap()
            .unwrap();
        assert_eq!(bob.name.as_deref(), Some("bob-key"));
        assert!(bob.allows_model("gpt-4o-mini") && !bob.allows_model("o3"));
        let azure = auth
            .authenticate(&headers("api-key", "sk-alice"))
            .unwrap()
            .unwrap();
        assert_eq!(azure.user.as_deref(), Some("alice"));
    }

    #[test]
    fn modes_decide_missing_and_invalid() {
        let none = HeaderMap::new();
        let bad = headers("authorization", "Bearer sk-wrong");
        let strict = Authenticator::from_policy(&policy(ApiKeyMode::Strict)).unwrap();
        assert_eq!(strict.authenticate(&none), Err(AuthError::Missing));
        assert_eq!(strict.authenticate(&bad), Err(AuthError::Invalid));
        let optional = Authenticator::from_policy(&policy(ApiKeyMode::Optional)).unwrap();
        assert_eq!(optional.authenticate(&none), Ok(None));
        assert_eq!(optional.authenticate(&bad), Err(AuthError::Invalid));
        let permissive = Authenticator::from_policy(&policy(ApiKeyMode::Permissive)).unwrap();
        assert_eq!(permissive.authenticate(&bad), Ok(None));
    }

    /// A dynamic store holding one key, for the lookup order and expiry checks.
    struct OneKey(Arc<Identity>);

    impl KeyLookup for OneKey {
        fn lookup(&self, presented: &KeyDigest) -> Option<Arc<Identity>> {
            (*presented == digest("sk-agw-dynamic")).then(|| self.0.clone())
        }
    }

    #[test]
    fn dynamic_keys_are_asked_after_static_ones_and_expire() {
        let live = Identity {
            id: "key_live".into(),
            expires_at: Some(unix_now() + 3600),
            ..Identity::default()
        };
        let auth = Authenticator::from_policy(&policy(ApiKeyMode::Strict))
            .unwrap()
            .with_dynamic(Arc::new(OneKey(Arc::new(live))));
        let dynamic = headers("authorization", "Bearer sk-agw-dynamic");
        assert_eq!(
            auth.authenticate(&dynamic).unwrap().unwrap().id.as_ref(),
            "key_live"
        );
        let alice = headers("authorization", "Bearer sk-alice");
        assert_eq!(
            auth.authenticate(&alice).unwrap().unwrap().id.as_ref(),
            static_id(&digest("sk-alice"))
        );

        let expired = Identity {
            id: "key_old".into(),
            expires_at: Some(unix_now() - 1),
            ..Identity::default()
        };
        let auth = Authenticator::from_policy(&policy(ApiKeyMode::Strict))
            .unwrap()
            .with_dynamic(Arc::new(OneKey(Arc::new(expired))));
        assert_eq!(auth.authenticate(&dynamic), Err(AuthError::Invalid));
    }

    #[test]
    fn non_bearer_authorization_is_not_a_key() {
        let auth = Authenticator::from_policy(&policy(ApiKeyMode::Strict)).unwrap();
        let basic = headers("authorization", "Basic c2stYWxpY2U=");
        assert_eq!(auth.authenticate(&basic), Err(AuthError::Missing));
    }
}
