//! The two Prometheus exposition formats the stats port speaks, and how to pick between them.
//!
//! Scrapers disagree: Prometheus 2.x and 3.x ask for OpenMetrics first, `curl` and many older
//! agents ask for nothing (or `*/*`) and parse the classic text format 0.0.4, whose parser rejects
//! OpenMetrics-only lines (`# EOF`, `# UNIT`, `info` types, `_created` samples, exemplars). So the
//! format is chosen per scrape from the `Accept` header ([`negotiate`]) and labelled with the
//! matching `Content-Type` ([`content_type`]). Both renderings come from prometheus-client's own
//! encoders ([`crate::metrics::Metrics::encode`]); the real promtool and Prometheus 2.42 accept
//! the 0.0.4 one (tests/prometheus_scrape.rs).

/// A Prometheus exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, the classic format every scraper understands.
    Text004,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

/// Chooses the format from the scraper's `Accept` header: OpenMetrics only when it asks for
/// `application/openmetrics-text` with a q-value higher than any text/plain (or equal to it, when
/// OpenMetrics is listed first); otherwise the classic text format. Wildcards (`*/*`, `text/*`)
/// count as text, since text is what a client that names no format can certainly parse.
pub fn negotiate(accept: Option<&http::HeaderValue>) -> Format {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Format::Text004;
    };
    // (q, position) of the best OpenMetrics and the best text-like entry.
    let mut best_om: Option<(f32, usize)> = None;
    let mut best_text: Option<(f32, usize)> = None;
    for (pos, range) in accept.split(',').enumerate() {
        let Some((kind, q)) = parse_media_range(range) else {
            continue;
        };
        let slot = match kind {
            Offered::OpenMetrics => &mut best_om,
            Offered::Text => &mut best_text,
        };
        if q > 0.0 && slot.is_none_or(|(best, _)| q > best) {
            *slot = Some((q, pos));
        }
    }
    match (best_om, best_text) {
        (Some(_), None) => Format::OpenMetrics,
        (Some((om_q, om_pos)), Some((text_q, text_pos)))
            if om_q > text_q || (om_q == text_q && om_pos < text_pos) =>
        {
            Format::OpenMetrics
        }
        _ => Format::Text004,
    }
}

/// The `Content-Type` of a scrape response in `format`.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    }
}

/// Which of our formats a media range stands for.
enum Offered {
    OpenMetrics,
    Text,
}

/// Parses one `type/subtype; k=v; q=0.5` entry. Returns `None` for media types we cannot serve
/// (e.g. protobuf, an OpenMetrics version we do not write) and for malformed q-values.
fn parse_media_range(range: &str) -> Option<(Offered, f32)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    let mut q = 1.0_f32;
    let mut version_ok = true;
    for param in parts {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches('"');
        match key.trim().to_ascii_lowercase().as_str() {
            "q" => {
                q = value
                    .parse()
                    .ok()
                    .filter(|q: &f32| (0.0..=1.0).contains(q))?
            }
            // prometheus-client writes OpenMetrics 1.0.0; 0.0.1 is the same syntax.
            "version" => version_ok = matches!(value, "1.0.0" | "0.0.1" | "0.0.4"),
            _ => {}
        }
    }
    let offered = match media.as_str() {
        "application/openmetrics-text" if version_ok => Offered::OpenMetrics,
        "text/plain" if version_ok => Offered::Text,
        "text/*" | "*/*" => Offered::Text,
        _ => return None,
    };
    Some((offered, q))
}

/// A deliberately independent exposition parser for tests, so they check text as a scraper
/// would read it.
#[cfg(test)]
pub(crate) mod parse {
    use std::collections::BTreeMap;

    /// One sample: its name, its labels (unescaped) and its value.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Sample {
        pub name: String,
        pub labels: BTreeMap<String, String>,
        pub value: f64,
    }

    /// Every sample line of `text`, in order; panics on a line it cannot read.
    pub(crate) fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(sample)
            .collect()
    }

    fn sample(line: &str) -> Sample {
        let mut chars = line.chars().peekable();
        let name: String = chars
            .by_ref()
            .take_while(|c| *c != '{' && *c != ' ')
            .collect();
        let mut labels = BTreeMap::new();
        if line[name.len()..].starts_with('{') {
            loop {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line}");
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.push(match chars.next() {
                            Some('n') => '\n',
                            Some(c) => c,
                            None => panic!("{line}"),
                        }),
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("{line}: unexpected {other:?}"),
                }
            }
        }
        let rest: String = chars.collect();
        let value = rest
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("{line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("{line}")),
        };
        Sample {
            name,
            labels,
            value,
        }
    }

    /// The samples named `name` whose labels include all of `want`.
    pub(crate) fn find<'a>(
        all: &'a [Sample],
        name: &str,
        want: &[(&str, &str)],
    ) -> Vec<&'a Sample> {
        all.iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
