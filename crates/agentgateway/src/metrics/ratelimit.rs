//! `agentgateway_ratelimit_decisions_total{decision, limit, <custom labels>}`: one count per kind
//! of limit a request was checked against, `allowed` or `limited`. The custom labels (e.g.
//! `user_id`) are the same values the request's other series carry, so "who is being limited"
//! is one PromQL query away.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};

use super::{label, CustomLabels};
use crate::ratelimit::LimitKind;
use crate::record::LimitOutcome;

const KINDS: [LimitKind; 4] = [
    LimitKind::Requests,
    LimitKind::Tokens,
    LimitKind::Parallel,
    LimitKind::Cost,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct DecisionKey {
    decision: &'static str,
    limit: &'static str,
    custom: CustomLabels,
}

impl EncodeLabelSet for DecisionKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        label(enc, "decision", self.decision)?;
        label(enc, "limit", self.limit)?;
        self.custom.encode(enc)
    }
}

/// The decision series one request adds to.
pub(super) fn decision_keys(
    outcome: LimitOutcome,
    custom: &CustomLabels,
) -> impl Iterator<Item = DecisionKey> + '_ {
    let allowed = KINDS
        .into_iter()
        .filter(move |kind| outcome.allowed.get(*kind as usize) == Some(&true))
        .map(|kind| ("allowed", kind));
    let limited = outcome.limited.map(|kind| ("limited", kind));
    allowed.chain(limited).map(|(decision, kind)| DecisionKey {
        decision,
        limit: kind.label(),
        custom: custom.clone(),
    })
}
