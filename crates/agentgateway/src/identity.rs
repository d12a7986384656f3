//! The caller's identity and what it is entitled to: the [`Identity`] every authenticated request
//! carries (key id, name, user, team, metadata), its model allow-list ([`ModelPatterns`]) and its
//! per-key limits ([`KeyLimits`]).
//!
//! Static config keys and dynamic (database) keys both resolve to this one type, so metrics
//! labels, log fields, CEL `apiKey.*`, rate limits and allow-lists never care where a key came from.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::ratelimit::Demand;

/// The authenticated caller. Never holds the key itself, only facts about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// Stable id of the key, e.g. `static-1a2b3c4d5e6f` or `key_3f9a...`: the per-key limits' bucket name.
    pub id: Arc<str>,
    pub name: Option<Arc<str>>,
    pub user: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    /// Free-form metadata; with `name`, `user` and `team` it is the CEL `apiKey` map.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `None`: every model the gateway routes.
    pub allowed_models: Option<ModelPatterns>,
    pub limits: KeyLimits,
    /// Unix seconds after which the key no longer authenticates.
    pub expires_at: Option<i64>,
    /// The key's own USD budgets (its user's and team's are the gateway's config).
    pub budgets: Vec<crate::budget::BudgetSpec>,
    /// The rate-limit demands of `limits`, built on first use: an identity is shared by every
    /// request made with its key, so the bucket names are not formatted per request.
    pub limit_demands: OnceLock<Arc<[Demand]>>,
}

impl Identity {
    /// Whether this caller may use `model` (the name the client asked for).
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|patterns| patterns.matches(model))
    }

    /// The demands of this key's own limits (see [`crate::limits::key_demands`]).
    pub fn limit_demands(&self) -> &Arc<[Demand]> {
        self.limit_demands.get_or_init(|| {
            let mut demands = Vec::new();
            crate::limits::key_demands(&self.id, &self.limits, &mut demands);
            demands.into()
        })
    }

    /// Whether the key has expired at `now` (unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// Per-key limits; `None` means unlimited. Field names are the admin API's and the config's.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KeyLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Tokens (input + output) per day (a rolling 24h bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpd: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u64>,
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == KeyLimits::default()
    }
}

/// A model allow-list: exact names, `prefix*`, `*suffix`, or `*` for everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPatterns {
    patterns: Vec<Pattern>,
    /// As written, for the admin API and the CLI.
    source: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
}

impl ModelPatterns {
    /// Parses a list of patterns; the error says which entry is wrong and why.
    pub fn parse(list: &[String]) -> Result<ModelPatterns, String> {
        let patterns = list
            .iter()
            .enumerate()
            .map(|(i, text)| parse_pattern(text).map_err(|e| format!("[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ModelPatterns {
            patterns,
            source: list.to_vec(),
        })
    }

    pub fn matches(&self, model: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::Exact(name) => name == model,
            Pattern::Prefix(prefix) => model.starts_with(prefix.as_str()),
            Pattern::Suffix(suffix) => model.ends_with(suffix.as_str()),
        })
    }

    pub fn as_strings(&self) -> &[String] {
        &self.source
    }
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let stars = text.matches('*').count();
    match (text, stars) {
        ("", _) => Err("a model pattern must not be empty".into()),
        ("*", 1) => Ok(Pattern::Any),
        (_, 0) => Ok(Pattern::Exact(text.to_owned())),
        (_, 1) if text.ends_with('*') => Ok(Pattern::Prefix(text[..text.len() - 1].to_owned())),
        (_, 1) if text.starts_with('*') => Ok(Pattern::Suffix(text[1..].to_owned())),
        _ => Err(format!(
            "{text:?}: use an exact name, \"prefix*\", \"*suffix\" or \"*\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> ModelPatterns {
        ModelPatterns::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_prefix_suffix_and_any() {
        let p = patterns(&["gpt-4o", "claude-*", "*-mini"]);
        assert!(p.matches("gpt-4o"));
        assert!(!p.matches("gpt-4o-2024"));
        assert!(p.matches("claude-3-5-sonnet"));
        assert!(p.matches("o3-mini"));
        assert!(!p.matches("o3"));
        assert!(patterns(&["*"]).matches("anything"));
        assert!(!patterns(&[]).matches("anything"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = ModelPatterns::parse(&["ok".into(), "a*b".into()]).unwrap_err();
        assert!(err.starts_with("[1]:"), "{err}");
        assert!(ModelPatterns::parse(&["".into()]).is_err());
        assert!(ModelPatterns::parse(&["**".into()]).is_err());
    }

    #[test]
    fn identity_without_list_allows_all_and_expiry_is_inclusive() {
        let mut id = Identity::default();
        assert!(id.allows_model("x"));
        id.allowed_models = Some(patterns(&["y"]));
        assert!(!id.allows_model("x"));
        id.expires_at = Some(100);
        assert!(!id.expired_at(99));
        assert!(id.expired_at(100));
    }
}
