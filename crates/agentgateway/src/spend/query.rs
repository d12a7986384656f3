//! Folding hour buckets (stored rows and pending ones alike) into one [`SpendRow`] per group.
//!
//! Sums stay in pico-USD `i128` until the very end, so adding a month of rows is exact and
//! cannot overflow in practice; the conversion to [`rust_decimal::Decimal`] happens once per group.

use std::collections::HashMap;

use super::pending::{from_pico, Totals};
use super::SpendRow;

/// Totals per group, filled from any number of sources.
#[derive(Debug, Default)]
pub struct Aggregate {
    groups: HashMap<String, Totals>,
}

// === impl Aggregate ===

impl Aggregate {
    pub fn add(&mut self, group: &str, totals: &Totals) {
        match self.groups.get_mut(group) {
            Some(sum) => sum.add(totals),
            None => {
                self.groups.insert(group.to_owned(), *totals);
            }
        }
    }

    /// One row per group, most expensive first; ties by group name, so the order is stable.
    pub fn into_rows(self) -> Vec<SpendRow> {
        let mut groups: Vec<(String, Totals)> = self.groups.into_iter().collect();
        groups.sort_by(|(a_group, a), (b_group, b)| {
            b.cost_pico
                .cmp(&a.cost_pico)
                .then_with(|| a_group.cmp(b_group))
        });
        groups
            .into_iter()
            .map(|(group, totals)| SpendRow {
                group,
                cost_usd: from_pico(totals.cost_pico),
                requests: totals.requests,
                input_tokens: totals.input_tokens,
                output_tokens: totals.output_tokens,
            })
            .collect()
    }
}
