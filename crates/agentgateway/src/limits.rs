//! Which rate limits apply to a request: `llm.policies.localRateLimit` rules (one bucket, or one
//! per distinct value of their CEL `key`) and the caller's per-key limits (rpm, tpm, tpd,
//! max parallel), all turned into [`Demand`]s for the [`RateLimiter`] behind them.
//!
//! This is the bridge between the request (record, body, identity) and the request-agnostic
//! [`crate::ratelimit`] module. The token estimate (tiktoken) is computed only when a token limit
//! applies, since it is the one cost here that grows with the prompt.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{LocalRateLimit, RateLimitType};
use crate::errors::GatewayError;
use crate::expr::Expr;
use crate::identity::KeyLimits;
use crate::ratelimit::{
    headers, Admission, BucketKey, BucketSpec, Demand, LimitKind, Limited, RateLimiter,
};
use crate::record::RequestRecord;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// Value used as the bucket key when a rule's `key` expression has no value for a request
/// (e.g. `apiKey.user` for an anonymous caller): those requests share one bucket.
const NO_VALUE: &str = "unknown";

/// One `localRateLimit` entry, compiled.
struct Rule {
    kind: LimitKind,
    spec: BucketSpec,
    key: Option<Expr>,
    /// `policy/<index>`: the prefix of every bucket of this rule.
    name: Arc<str>,
}

/// The gateway's rate-limit policy and the limiter that enforces it.
pub struct RateLimits {
    rules: Vec<Rule>,
    limiter: Arc<dyn RateLimiter>,
}

impl RateLimits {
    /// Compiles the rules; errors name the field.
    pub fn new(
        config: &[LocalRateLimit],
        limiter: Arc<dyn RateLimiter>,
    ) -> Result<RateLimits, String> {
        let rules = config
            .iter()
            .enumerate()
            .map(|(i, rule)| compile(i, rule))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RateLimits { rules, limiter })
    }

    pub fn limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.limiter
    }

    /// Whether any rule counts tokens (so the tokenizer is worth loading at startup).
    pub fn has_token_rules(&self) -> bool {
        self.rules.iter().any(|r| r.kind == LimitKind::Tokens)
    }

    /// Checks every limit that applies; on success the admission goes into the record (settled
    /// when the record is finished). `body` is only tokenized when a token limit applies.
    pub async fn admit(
        &self,
        record: &mut RequestRecord,
        body: &[u8],
        model: &str,
    ) -> Result<(), GatewayError> {
        let mut demands = self.demands(record);
        if demands.is_empty() {
            return Ok(());
        }
        if demands.iter().any(|d| d.kind == LimitKind::Tokens) {
            let estimate = crate::tokens::estimate_request_tokens(body, model).max(1);
            for demand in demands.iter_mut().filter(|d| d.kind == LimitKind::Tokens) {
                demand.amount = estimate;
            }
        }
        match Admission::acquire(&self.limiter, &demands).await {
            Ok(admission) => {
                demands
                    .iter()
                    .for_each(|demand| record.limits.allow(demand.kind));
                record.admission.0 = Some(admission);
                Ok(())
            }
            Err(limited) => {
                for demand in demands.iter().filter(|d| d.kind != limited.kind) {
                    record.limits.allow(demand.kind);
                }
                record.limits.limited = Some(limited.kind);
                Err(refusal(&limited))
            }
        }
    }

    fn demands(&self, record: &RequestRecord) -> Vec<Demand> {
        let mut demands = Vec::with_capacity(self.rules.len() + 4);
        for rule in &self.rules {
            let key: BucketKey = match &rule.key {
                None => rule.name.clone(),
                Some(expr) => {
                    let value = expr.eval_string(record);
                    let value = value.as_deref().unwrap_or(NO_VALUE);
                    format!("{}/{value}", rule.name).into()
                }
            };
            demands.push(Demand {
                kind: rule.kind,
                key,
                spec: rule.spec,
                amount: 1,
            });
        }
        if let Some(identity) = record.identity.as_deref() {
            key_demands(&identity.id, &identity.limits, &mut demands);
        }
        demands
    }
}

/// The buckets of a key's own limits, named `key/<id>/<limit>`. Public for the admin API's usage
/// view, which reads the same buckets.
pub fn key_demands(id: &str, limits: &KeyLimits, out: &mut Vec<Demand>) {
    let per = |amount: u64, interval: Duration| BucketSpec {
        capacity: amount,
        refill: amount,
        interval,
    };
    let entries = [
        ("rpm", LimitKind::Requests, limits.rpm, MINUTE),
        ("tpm", LimitKind::Tokens, limits.tpm, MINUTE),
        ("tpd", LimitKind::Tokens, limits.tpd, DAY),
        ("parallel", LimitKind::Parallel, limits.max_parallel, MINUTE),
    ];
    for (name, kind, amount, interval) in entries {
        if let Some(amount) = amount.filter(|n| *n > 0) {
            out.push(Demand {
                kind,
                key: format!("key/{id}/{name}").into(),
                spec: per(amount, interval),
                amount: 1,
            });
        }
    }
}

fn compile(index: usize, rule: &LocalRateLimit) -> Result<Rule, String> {
    let key = rule
        .key
        .as_deref()
        .map(|source| {
            Expr::compile(source)
                .map_err(|e| format!("llm.policies.localRateLimit[{index}].key: {e}"))
        })
        .transpose()?;
    Ok(Rule {
        kind: match rule.kind {
            RateLimitType::Requests => LimitKind::Requests,
            RateLimitType::Tokens => LimitKind::Tokens,
        },
        spec: BucketSpec {
            capacity: rule.max_tokens,
            refill: rule.tokens_per_fill.unwrap_or(rule.max_tokens),
            interval: rule.fill_interval,
        },
        key,
        name: format!("policy/{index}").into(),
    })
}

/// The 429 for a refusal, with `retry-after` and the `x-ratelimit-*` headers.
fn refusal(limited: &Limited) -> GatewayError {
    let retry_after_secs = headers::retry_after_secs(limited.retry_after);
    let mut map = http::HeaderMap::new();
    headers::insert_headers(&mut map, &limited.statuses);
    map.insert(http::header::RETRY_AFTER, retry_after_secs.into());
    GatewayError::RateLimited {
        limit: limited.kind,
        retry_after_secs,
        headers: map,
    }
}

/// The tokens a finished request really used, for the true-up: the provider's usage when it
/// reported one; nothing for a failed request the provider did not bill; `None` (keep the
/// estimate) when the outcome is unknown, e.g. a stream cut before its usage arrived.
pub fn actual_tokens(record: &RequestRecord) -> Option<u64> {
    let usage = &record.llm.usage;
    match (usage.input_tokens, usage.output_tokens) {
        (None, None) if record.status >= 400 && record.status != 499 => Some(0),
        (None, None) => None,
        (input, output) => Some(input.unwrap_or(0).saturating_add(output.unwrap_or(0))),
    }
}
