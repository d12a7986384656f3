//! The two Prometheus exposition formats the stats port speaks, and how to pick between them.
//!
//! Scrapers disagree: Prometheus 2.x and 3.x ask for OpenMetrics first, `curl` and many older
//! agents ask for nothing (or `*/*`) and parse the classic text format 0.0.4, whose parser rejects
//! OpenMetrics-only lines (`# EOF`, `# UNIT`, `info` types, `_created` samples, exemplars). So the
//! format is chosen per scrape from the `Accept` header ([`negotiate`]) and labelled with the
//! matching `Content-Type` ([`content_type`]). [`openmetrics_to_text`] turns OpenMetrics text into
//! valid 0.0.4 text line by line, for any producer that can only write OpenMetrics.

use std::fmt::Write as _;

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

// === OpenMetrics -> text 0.0.4 ===

/// Converts OpenMetrics text (as prometheus-client writes it) to the classic text format 0.0.4.
///
/// Per family: `# HELP`/`# TYPE` name the sample name the classic parser expects (`x_total` for
/// counters, `x_info` for info), OpenMetrics-only types map to 0.0.4 ones, `# UNIT` and `# EOF`
/// are dropped, and so are `_created` samples and exemplars. Histogram `le` values are rewritten
/// the way Go clients write them in 0.0.4 (`1`, not `1.0`), so the series match those of
/// prometheus-client's own 0.0.4 encoder and of Go exporters.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut family = FamilyHeader::default();
    for line in openmetrics.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            if let Some((keyword, name, text)) = parse_descriptor(comment) {
                if name != family.name || family.written {
                    family.write(&mut out);
                    family = FamilyHeader::new(name);
                }
                family.set(keyword, text);
            }
            // Any other comment (including `# EOF`) has no 0.0.4 meaning.
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        family.write(&mut out);
        if convert_sample(line, &family, &mut out).is_none() {
            tracing::debug!(line, "dropped unparseable OpenMetrics sample");
        }
    }
    family.write(&mut out);
    out
}

/// The metadata of the family being converted; written once, before its first sample.
#[derive(Default)]
struct FamilyHeader {
    name: String,
    help: Option<String>,
    kind: Kind,
    written: bool,
}

/// OpenMetrics family types, as far as the 0.0.4 conversion cares.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    #[default]
    Unknown,
}

impl FamilyHeader {
    fn new(name: &str) -> FamilyHeader {
        FamilyHeader {
            name: name.to_owned(),
            ..FamilyHeader::default()
        }
    }

    fn set(&mut self, keyword: &str, text: &str) {
        match keyword {
            "HELP" => self.help = Some(text.to_owned()),
            "TYPE" => self.kind = Kind::parse(text),
            _ => {} // UNIT: 0.0.4 has no unit metadata; the unit is already in the name.
        }
    }

    /// The family name the 0.0.4 parser expects: the name its samples carry.
    fn text_name(&self) -> (&str, &'static str) {
        match self.kind {
            Kind::Counter => (&self.name, "_total"),
            Kind::Info => (&self.name, "_info"),
            _ => (&self.name, ""),
        }
    }

    fn write(&mut self, out: &mut String) {
        if self.written || self.name.is_empty() {
            return;
        }
        self.written = true;
        let (name, suffix) = self.text_name();
        if let Some(help) = &self.help {
            let _ = write!(out, "# HELP {name}{suffix} ");
            escape_help(help, out);
            out.push('\n');
        }
        let _ = writeln!(out, "# TYPE {name}{suffix} {}", self.kind.text_type());
    }
}

impl Kind {
    fn parse(text: &str) -> Kind {
        match text.trim() {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "gaugehistogram" => Kind::GaugeHistogram,
            "summary" => Kind::Summary,
            "info" => Kind::Info,
            "stateset" => Kind::StateSet,
            _ => Kind::Unknown,
        }
    }

    fn text_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info | Kind::StateSet => "gauge",
            // A gauge histogram has buckets, a count and a sum like a histogram; 0.0.4 has no
            // better word for it, and its `_gcount`/`_gsum` samples are renamed to match.
            Kind::Histogram | Kind::GaugeHistogram => "histogram",
            Kind::Summary => "summary",
            Kind::Unknown => "untyped",
        }
    }
}

/// Splits `# KEYWORD name text` (the leading `#` already removed) for HELP, TYPE and UNIT.
fn parse_descriptor(comment: &str) -> Option<(&str, &str, &str)> {
    let rest = comment.strip_prefix(' ')?;
    let (keyword, rest) = rest.split_once(' ')?;
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return None;
    }
    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((keyword, name, text))
}

/// Rewrites OpenMetrics HELP escaping (`\\`, `\n`, `\"`) into 0.0.4's (`\\` and `\n` only; a
/// `\"` there is an invalid escape). A backslash that starts no escape is taken literally, which
/// is also how prometheus-client's unescaped help text reads.
fn escape_help(help: &str, out: &mut String) {
    let mut chars = help.chars().peekable();
    while let Some(c) = chars.next() {
        let literal = match (c, chars.peek()) {
            ('\\', Some('\\')) => Some("\\\\"),
            ('\\', Some('n')) => Some("\\n"),
            ('\\', Some('"')) => Some("\""),
            ('\\', _) => {
                out.push_str("\\\\");
                continue;
            }
            ('\n', _) => {
                out.push_str("\\n");
                continue;
            }
            _ => None,
        };
        match literal {
            Some(text) => {
                out.push_str(text);
                chars.next();
            }
            None => out.push(c),
        }
    }
}

/// Writes one sample line in 0.0.4 syntax, or nothing for samples 0.0.4 has no place for.
/// Returns `None` when the line does not parse.
fn convert_sample(line: &str, family: &FamilyHeader, out: &mut String) -> Option<()> {
    let sample = Sample::parse(line)?;
    let suffix = sample.name.strip_prefix(family.name.as_str()).unwrap_or("");
    let has_created = matches!(
        family.kind,
        Kind::Counter | Kind::Histogram | Kind::GaugeHistogram | Kind::Summary
    );
    if has_created && suffix == "_created" {
        return Some(());
    }
    match (family.kind, suffix) {
        (Kind::GaugeHistogram, "_gcount") => write_name(out, &family.name, "_count"),
        (Kind::GaugeHistogram, "_gsum") => write_name(out, &family.name, "_sum"),
        _ => out.push_str(sample.name),
    }
    write_labels(out, &sample.labels);
    out.push(' ');
    out.push_str(sample.value);
    if let Some(ts) = sample.timestamp {
        // OpenMetrics timestamps are seconds; 0.0.4 wants integer milliseconds.
        let seconds: f64 = ts.parse().ok()?;
        let _ = write!(out, " {}", (seconds * 1000.0).round() as i64);
    }
    out.push('\n');
    Some(())
}

fn write_name(out: &mut String, name: &str, suffix: &str) {
    out.push_str(name);
    out.push_str(suffix);
}

/// Writes `{k="v",...}` (nothing for no labels); bucket bounds and quantiles are reformatted.
fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"");
        match *key {
            "le" | "quantile" => write_go_float(out, value),
            _ => out.push_str(value), // both formats escape label values alike
        }
        out.push('"');
    }
    out.push('}');
}

/// One OpenMetrics sample line, borrowed from the input; label values stay escaped.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    value: &'a str,
    timestamp: Option<&'a str>,
}

impl<'a> Sample<'a> {
    /// `name{labels} value [timestamp] [# {exemplar labels} value [timestamp]]`.
    fn parse(line: &'a str) -> Option<Sample<'a>> {
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        let (labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(inner) => parse_labels(inner)?,
            None => (Vec::new(), &line[name_end..]),
        };
        // The exemplar (if any) starts after the value and timestamp, with ` # `.
        let mut fields = rest.split(' ').filter(|f| !f.is_empty());
        let value = fields.next()?;
        let timestamp = fields.next().filter(|f| *f != "#");
        Some(Sample {
            name,
            labels,
            value,
            timestamp,
        })
    }
}

/// Parses `k="v",k2="v2"}` (after the `{`), honouring `\"` inside values. Returns the pairs and
/// the text after the closing brace.
fn parse_labels(mut rest: &str) -> Option<(Vec<(&str, &str)>, &str)> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after_key) = rest.split_once('=')?;
        let quoted = after_key.strip_prefix('"')?;
        let end = closing_quote(quoted)?;
        labels.push((key.trim(), &quoted[..end]));
        rest = &quoted[end + 1..];
    }
}

/// Index of the first `"` not escaped by a backslash.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Writes a float the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` does, which is what Go
/// clients and prometheus-client's own 0.0.4 encoder put in `le`: shortest digits, in exponent
/// form (`1.048576e+06`) when the decimal exponent is `< -4` or `>= 6`. Inside that range Rust's
/// `Display` prints the same digits; outside it, Rust's `{:e}` differs only in the exponent's
/// sign and width. Text that is not a number is copied unchanged.
fn write_go_float(out: &mut String, text: &str) {
    let Ok(v) = text.parse::<f64>() else {
        out.push_str(text);
        return;
    };
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        let start = out.len();
        let _ = write!(out, "{v:e}");
        let Some(e) = out[start..].find('e').map(|i| start + i) else {
            return;
        };
        let Ok(exp) = out[e + 1..].parse::<i32>() else {
            return;
        };
        out.truncate(e + 1);
        let _ = write!(out, "{exp:+03}");
    }
}

/// A deliberately independent exposition parser for tests (not the converter's own), so the
/// tests check text as a scraper would read it.
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

    /// The value of the one sample named `name` with exactly the labels `want`.
    pub(crate) fn value(all: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
        let want_map: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let hits: Vec<_> = all
            .iter()
            .filter(|s| s.name == name && s.labels == want_map)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
        hits[0].value
    }
}

#[cfg(test)]
mod tests;
