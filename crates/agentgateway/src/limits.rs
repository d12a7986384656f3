//! Which rate limits apply to a request: `llm.policies.localRateLimit` rules (one bucket, or one
//! per distinct value of their CEL `key`) and the caller's per-key limits (rpm, tpm, tpd,
//! max parallel), all turned into [`Demand`]s for the [`RateLimiter`] behind them.
//!
//! This is the bridge between the request (record, body, identity) and the request-agnostic
//! [`crate::ratelimit`] module. The token estimate (tiktoken) is computed only when a token limit
//! or a cost limit on a priced model applies, since it is the one cost here that grows with the
//! prompt; both use the same estimate. Cost limits ([`cost`]) count micro-dollars.
//!
//! A model the catalog does not price has no cost estimate: cost limits do not apply to its
//! requests (they pass, and are not charged), since the gateway cannot know what they cost.

pub mod cost;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{LocalRateLimit, RateLimitType};
use crate::errors::GatewayError;
use crate::expr::Expr;
use crate::identity::{Identity, KeyLimits};
use crate::pricing::PriceCatalog;
use crate::ratelimit::{
    headers, Actual, Admission, BucketKey, BucketSpec, Demand, LimitKind, Limited, RateLimiter,
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

    /// Whether any rule counts tokens, or dollars estimated from tokens (so the tokenizer is
    /// worth loading at startup).
    pub fn has_token_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.kind, LimitKind::Tokens | LimitKind::Cost))
    }

    /// Whether any rule counts dollars (so `admit` needs the price catalog).
    pub fn has_cost_rules(&self) -> bool {
        self.rules.iter().any(|r| r.kind == LimitKind::Cost)
    }

    /// Checks every limit that applies; on success the admission goes into the record (settled
    /// when the record is finished). `body` is only tokenized when a token limit, or a cost limit
    /// on a model `catalog` prices, applies. `catalog` is `None` when cost tracking is off.
    pub async fn admit(
        &self,
        record: &mut RequestRecord,
        body: &[u8],
        model: &str,
        catalog: Option<&PriceCatalog>,
    ) -> Result<(), GatewayError> {
        let mut demands = self.demands(record);
        if demands.is_empty() {
            return Ok(());
        }
        estimate(
            &mut demands,
            record,
            Estimating {
                body,
                model,
                catalog,
            },
        );
        if demands.is_empty() {
            return Ok(());
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
        // Allocates only when some limit applies: most gateways have none for most requests.
        let mut demands = Vec::new();
        for rule in &self.rules {
            let key: BucketKey = match &rule.key {
                None => rule.name.clone(),
                Some(expr) => {
                    let value = expr.eval_string(record);
                    let value = value.as_deref().unwrap_or(NO_VALUE);
                    let mut key = String::with_capacity(rule.name.len() + 1 + value.len());
                    key.push_str(&rule.name);
                    key.push('/');
                    key.push_str(value);
                    key.into()
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
            demands.extend(identity.limit_demands().iter().cloned());
        }
        demands
    }
}

/// What a request's estimates are made from.
struct Estimating<'a> {
    body: &'a [u8],
    model: &'a str,
    catalog: Option<&'a PriceCatalog>,
}

/// Sets the amount of the token and cost demands from one token estimate of the body; drops the
/// cost demands of a model without a price (see the module's note).
fn estimate(demands: &mut Vec<Demand>, record: &RequestRecord, from: Estimating<'_>) {
    let wants = |kind: LimitKind| demands.iter().any(|d| d.kind == kind);
    let (tokens, dollars) = (wants(LimitKind::Tokens), wants(LimitKind::Cost));
    let price = if dollars {
        cost::estimate_price(from.catalog, record, from.model)
    } else {
        None
    };
    if !tokens && price.is_none() {
        demands.retain(|d| d.kind != LimitKind::Cost);
        return;
    }
    let estimate = crate::tokens::estimate_request(from.body, from.model);
    let token_amount = estimate.total().max(1);
    let cost_amount = price.map(|price| cost::estimate_micro_usd(price, &estimate));
    demands.retain_mut(|demand| {
        match (demand.kind, cost_amount) {
            (LimitKind::Tokens, _) => demand.amount = token_amount,
            (LimitKind::Cost, Some(amount)) => demand.amount = amount,
            (LimitKind::Cost, None) => return false,
            _ => {}
        }
        true
    });
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

/// A key's current state in each of its own limit windows, for the admin API:
/// `{"rpm": {"limit", "remaining", "resetSeconds"}, "tpm": ..., "tpd": ..., "parallel": {"limit", "inFlight"}}`.
pub async fn key_usage(limiter: &dyn RateLimiter, identity: &Identity) -> serde_json::Value {
    let mut demands = Vec::new();
    key_demands(&identity.id, &identity.limits, &mut demands);
    let mut usage = serde_json::Map::new();
    for demand in &demands {
        let status = limiter.status(demand.kind, &demand.key, demand.spec).await;
        let name = demand.key.rsplit('/').next().unwrap_or_default();
        let value = match demand.kind {
            LimitKind::Parallel => serde_json::json!({
                "limit": status.limit,
                "inFlight": status.limit.saturating_sub(status.remaining),
            }),
            _ => serde_json::json!({
                "limit": status.limit,
                "remaining": status.remaining,
                "resetSeconds": status.reset.as_secs_f64(),
            }),
        };
        usage.insert(name.to_owned(), value);
    }
    serde_json::Value::Object(usage)
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
    let (kind, capacity, refill) =
        sizes(rule).map_err(|e| format!("llm.policies.localRateLimit[{index}].{e}"))?;
    Ok(Rule {
        kind,
        spec: BucketSpec {
            capacity,
            refill,
            interval: rule.fill_interval,
        },
        key,
        name: format!("policy/{index}").into(),
    })
}

/// A rule's kind, bucket size and refill, in the limiter's units (micro-dollars for cost).
fn sizes(rule: &LocalRateLimit) -> Result<(LimitKind, u64, u64), String> {
    let kind = match rule.kind {
        RateLimitType::Requests => LimitKind::Requests,
        RateLimitType::Tokens => LimitKind::Tokens,
        RateLimitType::Cost => {
            let max_usd = rule
                .max_usd
                .ok_or("maxUsd: required for type cost (USD per fillInterval)")?;
            let capacity = cost::micro_usd_exact("maxUsd", max_usd)?;
            let refill = match rule.usd_per_fill {
                Some(usd) => cost::micro_usd_exact("usdPerFill", usd)?,
                None => capacity,
            };
            return Ok((LimitKind::Cost, capacity, refill));
        }
    };
    let capacity = rule
        .max_tokens
        .ok_or_else(|| format!("maxTokens: required for type {}", rule.kind.name()))?;
    Ok((kind, capacity, rule.tokens_per_fill.unwrap_or(capacity)))
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

/// What a finished (and priced) request really used, for the true-up of its admission.
pub fn actual_usage(record: &RequestRecord) -> Actual {
    Actual {
        tokens: actual_tokens(record),
        micro_usd: cost::actual_micro_usd(record),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ListenerInfo;

    fn record(identity: Option<Identity>) -> RequestRecord {
        let (parts, ()) = http::Request::builder()
            .uri("/v1/chat/completions")
            .body(())
            .unwrap()
            .into_parts();
        let listener = Arc::new(ListenerInfo {
            bind: "4000".into(),
            gateway: "bind/4000".into(),
            listener: "llm".into(),
        });
        let mut rec = RequestRecord::new(listener, "127.0.0.1:1".parse().unwrap(), &parts);
        rec.identity = identity.map(Arc::new);
        rec
    }

    fn rule(kind: RateLimitType, key: Option<&str>) -> LocalRateLimit {
        LocalRateLimit {
            kind,
            max_tokens: Some(10),
            tokens_per_fill: Some(5),
            max_usd: None,
            usd_per_fill: None,
            fill_interval: Duration::from_secs(1),
            key: key.map(str::to_owned),
        }
    }

    struct Never;
    impl RateLimiter for Never {
        fn acquire<'a>(
            &'a self,
            _: &'a [Demand],
        ) -> futures_util::future::BoxFuture<'a, Result<Vec<crate::ratelimit::LimitStatus>, Limited>>
        {
            unreachable!("not called")
        }
        fn adjust(&self, _: &BucketKey, _: BucketSpec, _: i64) {}
        fn release(&self, _: &BucketKey) {}
        fn status<'a>(
            &'a self,
            _: LimitKind,
            _: &'a BucketKey,
            _: BucketSpec,
        ) -> futures_util::future::BoxFuture<'a, crate::ratelimit::LimitStatus> {
            unreachable!("not called")
        }
    }

    #[test]
    fn rules_and_key_limits_become_named_buckets() {
        let limits = RateLimits::new(
            &[
                rule(RateLimitType::Requests, None),
                rule(RateLimitType::Tokens, Some("apiKey.user")),
            ],
            Arc::new(Never),
        )
        .unwrap();
        let alice = Identity {
            id: "key_1".into(),
            user: Some("alice".into()),
            limits: KeyLimits {
                rpm: Some(60),
                tpd: Some(1000),
                max_parallel: Some(2),
                ..KeyLimits::default()
            },
            ..Identity::default()
        };
        let demands = limits.demands(&record(Some(alice)));
        let keys: Vec<&str> = demands.iter().map(|d| &*d.key).collect();
        assert_eq!(
            keys,
            [
                "policy/0",
                "policy/1/alice",
                "key/key_1/rpm",
                "key/key_1/tpd",
                "key/key_1/parallel"
            ]
        );
        assert_eq!(demands[0].spec.refill, 5);
        assert_eq!(demands[3].spec.interval, DAY);
        assert_eq!(demands[4].kind, LimitKind::Parallel);

        let anonymous = limits.demands(&record(None));
        let keys: Vec<&str> = anonymous.iter().map(|d| &*d.key).collect();
        assert_eq!(keys, ["policy/0", "policy/1/unknown"]);
    }

    #[test]
    fn a_bad_key_expression_names_the_rule() {
        let bad = rule(RateLimitType::Requests, Some("apiKey.("));
        let err = RateLimits::new(&[bad], Arc::new(Never)).err().unwrap();
        assert!(
            err.starts_with("llm.policies.localRateLimit[0].key"),
            "{err}"
        );
    }

    #[test]
    fn true_up_uses_reported_usage_refunds_refusals_and_keeps_unknowns() {
        let mut rec = record(None);
        rec.status = 200;
        rec.llm.usage.input_tokens = Some(11);
        rec.llm.usage.output_tokens = Some(7);
        assert_eq!(actual_tokens(&rec), Some(18));
        rec.llm.usage = Default::default();
        assert_eq!(
            actual_tokens(&rec),
            None,
            "a success without usage keeps the estimate"
        );
        rec.status = 500;
        assert_eq!(
            actual_tokens(&rec),
            Some(0),
            "the provider refused: nothing used"
        );
        rec.status = 499;
        assert_eq!(actual_tokens(&rec), None, "the client left: unknown");
    }
}
