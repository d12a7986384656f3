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

/// Distinct decisions: each kind `allowed`, then each kind `limited`.
pub(super) const DECISIONS: usize = 2 * KINDS.len();

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

/// The decisions one request adds to, each with its number below [`DECISIONS`].
pub(super) fn decisions(
    outcome: LimitOutcome,
) -> impl Iterator<Item = (usize, &'static str, LimitKind)> {
    let allowed = KINDS
        .into_iter()
        .enumerate()
        .filter(move |(_, kind)| outcome.allowed.get(*kind as usize) == Some(&true))
        .map(|(i, kind)| (i, "allowed", kind));
    let limited = outcome
        .limited
        .map(|kind| (KINDS.len() + kind as usize, "limited", kind));
    allowed.chain(limited)
}

/// The series of one decision.
pub(super) fn key(decision: &'static str, kind: LimitKind, custom: &CustomLabels) -> DecisionKey {
    DecisionKey {
        decision,
        limit: kind.label(),
        custom: custom.clone(),
    }
}
