//! Cost rate limits (`localRateLimit` with `type: cost`): US dollars turned into the limiter's
//! integer units, micro-dollars. Like a token limit, a cost limit is checked before the provider
//! has said anything, so it takes an estimate (the request's token estimate priced from the
//! catalog) and is trued up with the real cost when the response ends.
//!
//! The conversions are exact decimal arithmetic. Amounts the limiter takes are rounded up to the
//! next micro-dollar, so a limit never lets through more spend than it was configured for; a
//! configured amount must be a whole number of micro-dollars, so what the gateway enforces is
//! exactly what the file says.

use agentgateway_wire::Usage;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::pricing::{ModelPrice, PriceCatalog};
use crate::record::{CostOutcome, RequestRecord};
use crate::tokens::RequestEstimate;

/// Decimal places of a micro-dollar.
const MICRO_PLACES: u32 = 6;

/// `usd` in micro-dollars, rounded up; negative is 0, beyond `u64` saturates.
pub fn micro_usd_ceil(usd: Decimal) -> u64 {
    if usd <= Decimal::ZERO {
        return 0;
    }
    let micros = usd
        .checked_mul(Decimal::from(1_000_000u32))
        .map_or(Decimal::MAX, |m| m.ceil());
    micros.to_u64().unwrap_or(u64::MAX)
}

/// A configured amount in micro-dollars. The error (for `field`) says what is wrong with it.
pub fn micro_usd_exact(field: &str, usd: Decimal) -> Result<u64, String> {
    if usd <= Decimal::ZERO {
        return Err(format!("{field}: must be greater than 0"));
    }
    if usd.normalize().scale() > MICRO_PLACES {
        return Err(format!(
            "{field}: {usd} has more than 6 decimal places (the limiter counts micro-dollars)"
        ));
    }
    Ok(micro_usd_ceil(usd))
}

/// The price a cost estimate uses: the route's provider and the model the caller asked for (the
/// response model is not known yet). `None` when the model is unpriced or pricing is off.
pub fn estimate_price<'c>(
    catalog: Option<&'c PriceCatalog>,
    record: &RequestRecord,
    model: &str,
) -> Option<&'c ModelPrice> {
    let (catalog, system) = (catalog?, record.system()?);
    catalog
        .lookup(system, None, Some(model))
        .map(|(_, price)| price)
}

/// The estimated cost of a request, micro-dollars: its input estimate at the input rate plus its
/// output allowance at the output rate (none without `max_tokens` & co.: the catalog knows no
/// model's maximum output), long-context tiers included. At least 1, so a caller in debt is
/// refused whatever the request.
pub fn estimate_micro_usd(price: &ModelPrice, estimate: &RequestEstimate) -> u64 {
    let usage = Usage {
        input_tokens: Some(estimate.input),
        output_tokens: estimate.max_output,
        ..Usage::default()
    };
    micro_usd_ceil(crate::pricing::cost(price, &usage).total).max(1)
}

/// What a finished request really cost, micro-dollars, for the true-up: the exact priced total
/// (rounded up); 0 for a failure the provider did not bill; `None` (keep the estimate) when the
/// outcome is unknown or the usage could not be priced.
pub fn actual_micro_usd(record: &RequestRecord) -> Option<u64> {
    match &record.llm.cost {
        CostOutcome::Priced(cost) => Some(micro_usd_ceil(cost.total)),
        CostOutcome::Unpriced => None,
        CostOutcome::NotApplicable => (super::actual_tokens(record) == Some(0)).then_some(0),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::config::{LocalRateLimit, RateLimitType};
    use crate::errors::GatewayError;
    use crate::identity::Identity;
    use crate::limits::{actual_usage, RateLimits};
    use crate::ratelimit::local::{LocalLimiter, ManualClock};
    use crate::ratelimit::LimitKind;
    use crate::record::{ListenerInfo, RouteInfo};

    const HI: &[u8] = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

    /// $0.00001 an hour per user: 10 micro-dollars.
    fn per_user_cost_limit() -> RateLimits {
        let rule = LocalRateLimit {
            kind: RateLimitType::Cost,
            max_tokens: None,
            tokens_per_fill: None,
            max_usd: Some(usd("0.00001")),
            usd_per_fill: None,
            fill_interval: Duration::from_secs(3600),
            key: Some("apiKey.user".into()),
        };
        let limiter = Arc::new(LocalLimiter::new(Arc::new(ManualClock::default())));
        RateLimits::new(&[rule], limiter).unwrap()
    }

    /// A request of alice's routed to OpenAI.
    fn alice() -> RequestRecord {
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
        rec.identity = Some(Arc::new(Identity {
            user: Some("alice".into()),
            ..Identity::default()
        }));
        rec.route = Some(Arc::new(RouteInfo {
            route: "llm/gpt-4o-mini".into(),
            system: "openai",
            endpoint: "127.0.0.1:1".into(),
        }));
        rec
    }

    fn admit(
        limits: &RateLimits,
        rec: &mut RequestRecord,
        model: &str,
    ) -> Result<(), GatewayError> {
        let catalog = PriceCatalog::builtin();
        limits
            .admit(rec, HI, model, Some(&catalog))
            .now_or_never()
            .unwrap()
    }

    /// Ends `rec` as the fake provider's call does: 11 input (3 cached) + 7 output tokens,
    /// $0.000005625 at gpt-4o-mini's prices, and settles its admission.
    fn finish_priced(mut rec: RequestRecord) {
        rec.status = 200;
        rec.llm.usage = Usage {
            input_tokens: Some(11),
            cache_read_input_tokens: Some(3),
            output_tokens: Some(7),
            ..Usage::default()
        };
        let catalog = PriceCatalog::builtin();
        let price = catalog
            .lookup("openai", None, Some("gpt-4o-mini"))
            .unwrap()
            .1;
        rec.llm.cost = CostOutcome::Priced(crate::pricing::cost(price, &rec.llm.usage));
        assert_eq!(actual_micro_usd(&rec), Some(6), "5.625 rounds up");
        rec.admission.0.take().unwrap().settle(actual_usage(&rec));
    }

    fn usd(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn dollars_become_micro_dollars_rounded_up() {
        assert_eq!(micro_usd_ceil(usd("0.10")), 100_000);
        assert_eq!(micro_usd_ceil(usd("0.000005625")), 6);
        assert_eq!(micro_usd_ceil(usd("0.000000001")), 1);
        assert_eq!(micro_usd_ceil(usd("0.000005")), 5, "exact stays exact");
        assert_eq!(micro_usd_ceil(Decimal::ZERO), 0);
        assert_eq!(micro_usd_ceil(usd("-1")), 0);
        assert_eq!(micro_usd_ceil(Decimal::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn configured_amounts_must_be_whole_micro_dollars() {
        assert_eq!(micro_usd_exact("maxUsd", usd("0.10")), Ok(100_000));
        assert_eq!(micro_usd_exact("maxUsd", usd("25")), Ok(25_000_000));
        assert_eq!(
            micro_usd_exact("maxUsd", usd("0.0000100")),
            Ok(10),
            "trailing zeros are fine"
        );
        let err = micro_usd_exact("usdPerFill", usd("0.0000001")).unwrap_err();
        assert!(
            err.starts_with("usdPerFill: 0.0000001 has more than 6"),
            "{err}"
        );
        let err = micro_usd_exact("maxUsd", Decimal::ZERO).unwrap_err();
        assert_eq!(err, "maxUsd: must be greater than 0");
    }

    #[test]
    fn the_estimate_prices_input_and_output_allowance_from_the_catalog() {
        let catalog = PriceCatalog::builtin();
        let price = catalog
            .lookup("openai", None, Some("gpt-4o-mini"))
            .unwrap()
            .1;
        // $0.15 and $0.60 per 1M tokens.
        let with_allowance = RequestEstimate {
            input: 1000,
            max_output: Some(500),
        };
        assert_eq!(estimate_micro_usd(price, &with_allowance), 150 + 300);
        let open_ended = RequestEstimate {
            input: 1000,
            max_output: None,
        };
        assert_eq!(estimate_micro_usd(price, &open_ended), 150, "input only");
        let tiny = RequestEstimate {
            input: 8,
            max_output: None,
        };
        assert_eq!(estimate_micro_usd(price, &tiny), 2, "1.2 rounds up");
        let empty = RequestEstimate {
            input: 0,
            max_output: None,
        };
        assert_eq!(estimate_micro_usd(price, &empty), 1, "never 0");
    }

    #[test]
    fn a_cost_limit_takes_the_estimate_and_keeps_the_real_cost() {
        let limits = per_user_cost_limit();
        // "hi" is 8 tokens with framing: $0.0000012 at $0.15 per 1M, 2 micro-dollars.
        for remaining in [8, 2] {
            let mut rec = alice();
            admit(&limits, &mut rec, "gpt-4o-mini").unwrap();
            assert!(rec.limits.allowed[LimitKind::Cost as usize]);
            let status = &rec.admission.0.as_ref().unwrap().statuses()[0];
            assert_eq!(
                (status.kind, status.remaining),
                (LimitKind::Cost, remaining)
            );
            finish_priced(rec);
        }
        // 10 - 6 - 6: alice owes 2 micro-dollars.
        let mut refused = alice();
        let err = admit(&limits, &mut refused, "gpt-4o-mini").unwrap_err();
        assert!(
            matches!(
                err,
                GatewayError::RateLimited {
                    limit: LimitKind::Cost,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(refused.limits.limited, Some(LimitKind::Cost));
    }

    #[test]
    fn an_unpriced_model_passes_a_spent_cost_limit_and_is_not_charged() {
        let limits = per_user_cost_limit();
        for _ in 0..2 {
            let mut rec = alice();
            admit(&limits, &mut rec, "gpt-4o-mini").unwrap();
            finish_priced(rec);
        }
        let mut unpriced = alice();
        admit(&limits, &mut unpriced, "homegrown-model").unwrap();
        assert!(unpriced.admission.0.is_none(), "no cost demand was made");
        assert_eq!(unpriced.limits, Default::default(), "and none was decided");

        let mut pricing_off = alice();
        limits
            .admit(&mut pricing_off, HI, "gpt-4o-mini", None)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert!(pricing_off.admission.0.is_none());
    }

    #[test]
    fn the_true_up_without_a_price_follows_the_token_rule() {
        let mut rec = alice();
        rec.status = 502;
        assert_eq!(actual_micro_usd(&rec), Some(0), "not billed: refunded");
        rec.status = 499;
        assert_eq!(actual_micro_usd(&rec), None, "unknown: the estimate stays");
        rec.status = 200;
        rec.llm.usage.input_tokens = Some(5);
        rec.llm.cost = CostOutcome::Unpriced;
        assert_eq!(actual_micro_usd(&rec), None, "used, but at no known price");
    }
}
