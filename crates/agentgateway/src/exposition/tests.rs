use super::*;
use http::HeaderValue;
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

const PROM3: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
const PROM2: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn negotiated(accept: &str) -> Format {
    negotiate(Some(&HeaderValue::from_str(accept).expect("test input")))
}

#[test]
fn negotiation_follows_real_scrapers() {
    assert_eq!(negotiated(PROM3), Format::OpenMetrics);
    assert_eq!(negotiated(PROM2), Format::OpenMetrics);
    assert_eq!(negotiated("*/*"), Format::Text004); // curl
    assert_eq!(negotiate(None), Format::Text004);
    assert_eq!(negotiated("text/plain"), Format::Text004);
    assert_eq!(negotiated("text/plain;version=0.0.4"), Format::Text004);
    assert_eq!(
        negotiated("application/openmetrics-text"),
        Format::OpenMetrics
    );
}

#[test]
fn negotiation_weighs_q_and_order() {
    let om_first = "application/openmetrics-text;q=0.5,text/plain;q=0.5";
    assert_eq!(negotiated(om_first), Format::OpenMetrics);
    let text_first = "text/plain;q=0.5, application/openmetrics-text;q=0.5";
    assert_eq!(negotiated(text_first), Format::Text004);
    let text_higher = "application/openmetrics-text;q=0.4,text/plain;q=0.5";
    assert_eq!(negotiated(text_higher), Format::Text004);
    // q=0 means "not acceptable"; wildcards count as text.
    assert_eq!(
        negotiated("application/openmetrics-text;q=0,*/*"),
        Format::Text004
    );
    assert_eq!(
        negotiated("application/openmetrics-text;q=0.3,*/*;q=0.9"),
        Format::Text004
    );
    assert_eq!(
        negotiated("text/plain;q=0,application/openmetrics-text;q=0.1"),
        Format::OpenMetrics
    );
    // Formats we cannot write, and garbage, fall back to text.
    assert_eq!(
        negotiated("application/vnd.google.protobuf;q=1"),
        Format::Text004
    );
    assert_eq!(
        negotiated("application/openmetrics-text;version=2.0.0"),
        Format::Text004
    );
    assert_eq!(
        negotiated("application/openmetrics-text;q=high"),
        Format::Text004
    );
    assert_eq!(
        negotiate(Some(&HeaderValue::from_bytes(b"\xff").expect("test input"))),
        Format::Text004
    );
}

#[test]
fn content_types() {
    assert_eq!(
        content_type(Format::Text004),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        content_type(Format::OpenMetrics),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

/// A registry with every metric type prometheus-client has, exemplars, a unit, and label
/// values that need escaping.
fn sample_registry() -> Registry {
    let mut registry = Registry::with_prefix("agw");
    let requests = Family::<Vec<(String, String)>, Counter>::default();
    requests
        .get_or_create(&vec![("path".into(), "a\"b\\c\nd".into())])
        .inc_by(3);
    registry.register("requests", "Requests with a \\ backslash", requests);
    let gauge: Gauge = Gauge::default();
    gauge.set(-7);
    registry.register("in_flight", "In flight", gauge);
    let hist = HistogramWithExemplars::new([0.001, 1.0, 1048576.0].into_iter());
    hist.observe(
        0.5,
        Some(vec![("trace_id".to_owned(), "abc".to_owned())]),
        None,
    );
    hist.observe(2e6, None, None);
    registry.register_with_unit("latency", "Latency", Unit::Seconds, hist);
    let plain = Histogram::new([1.0, 262144.0]);
    plain.observe(3.0);
    registry.register("tokens", "Tokens", plain);
    let info = Info::new(vec![("version".to_owned(), "1.2.3".to_owned())]);
    registry.register("build", "Build", info);
    registry
}

fn encode_both(registry: &Registry) -> (String, String) {
    let mut om = String::new();
    text::encode(&mut om, registry).expect("test input");
    let mut native = String::new();
    prometheus_text::encode(&mut native, registry).expect("test input");
    (om, native)
}

/// Splits an exposition into families (blocks starting at `# HELP`), lines sorted within
/// each block: the two encoders order histogram samples differently, nothing else.
fn blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP") || blocks.is_empty() {
            blocks.push(Vec::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push(line);
        }
    }
    for block in &mut blocks {
        block[2..].sort_unstable();
    }
    blocks
}

#[test]
fn converts_real_prometheus_client_output_like_its_own_text_encoder() {
    let (om, native) = encode_both(&sample_registry());
    assert!(om.contains("# UNIT agw_latency_seconds seconds"), "{om}");
    assert!(om.contains("# {trace_id=\"abc\"} 0.5"), "{om}");
    assert!(om.contains("# TYPE agw_requests counter"), "{om}");
    let converted = openmetrics_to_text(&om);
    assert_eq!(
        blocks(&converted),
        blocks(&native),
        "\n{converted}\n---\n{native}"
    );
    for forbidden in ["# EOF", "# UNIT", " # {", "info\n", "_created"] {
        assert!(!converted.contains(forbidden), "{forbidden}: {converted}");
    }
    assert!(converted.contains("# HELP agw_requests_total Requests with a \\\\ backslash.\n"));
    assert!(converted.contains("# TYPE agw_requests_total counter\n"));
    assert!(converted.contains("# TYPE agw_build_info gauge\n"));
    assert!(converted.contains("agw_latency_seconds_bucket{le=\"1.048576e+06\"} 1\n"));
    assert!(converted.contains("agw_tokens_bucket{le=\"262144\"} 1\n"));
}

#[test]
fn converted_samples_keep_values_and_escaped_labels() {
    let (om, _) = encode_both(&sample_registry());
    let all = parse::samples(&openmetrics_to_text(&om));
    let path = [("path", "a\"b\\c\nd")];
    assert_eq!(parse::value(&all, "agw_requests_total", &path), 3.0);
    assert_eq!(parse::value(&all, "agw_in_flight", &[]), -7.0);
    assert_eq!(
        parse::value(&all, "agw_latency_seconds_sum", &[]),
        2e6 + 0.5
    );
    assert_eq!(
        parse::value(&all, "agw_latency_seconds_bucket", &[("le", "1")]),
        1.0
    );
    assert_eq!(
        parse::value(&all, "agw_latency_seconds_bucket", &[("le", "+Inf")]),
        2.0
    );
    assert_eq!(
        parse::value(&all, "agw_build_info", &[("version", "1.2.3")]),
        1.0
    );
}

#[test]
fn converts_openmetrics_only_constructs() {
    let om = "# HELP c A \\\"quoted\\\" counter\\nwith two lines.\n\
              # TYPE c counter\n\
              c_total{a=\"x # {y}\"} 1 1700000000.5 # {trace=\"t\"} 1 1700000000\n\
              c_created{a=\"x # {y}\"} 1700000000\n\
              # TYPE g gaugehistogram\n\
              g_bucket{le=\"1.0\"} 2\n\
              g_bucket{le=\"+Inf\"} 3\n\
              g_gcount 3\n\
              g_gsum 4.5\n\
              # TYPE s stateset\n\
              # HELP s States.\n\
              s{s=\"on\"} 1\n\
              # TYPE u unknown\n\
              u 5\n\
              # TYPE h histogram\n\
              h_created 1700000000\n\
              h_count 0\n\
              # EOF\n";
    let expected = "# HELP c_total A \"quoted\" counter\\nwith two lines.\n\
                    # TYPE c_total counter\n\
                    c_total{a=\"x # {y}\"} 1 1700000000500\n\
                    # TYPE g histogram\n\
                    g_bucket{le=\"1\"} 2\n\
                    g_bucket{le=\"+Inf\"} 3\n\
                    g_count 3\n\
                    g_sum 4.5\n\
                    # HELP s States.\n\
                    # TYPE s gauge\n\
                    s{s=\"on\"} 1\n\
                    # TYPE u untyped\n\
                    u 5\n\
                    # TYPE h histogram\n\
                    h_count 0\n";
    assert_eq!(openmetrics_to_text(om), expected);
}

#[test]
fn help_escaping_is_0_0_4() {
    let mut out = String::new();
    escape_help("back\\\\slash \\n quote\\\" lone\\x raw\nnewline", &mut out);
    assert_eq!(out, "back\\\\slash \\n quote\" lone\\\\x raw\\nnewline");
}

#[test]
fn floats_are_formatted_like_go() {
    let cases = [
        ("1.0", "1"),
        ("0.001", "0.001"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("262144.0", "262144"),
        ("999999.5", "999999.5"),
        ("1048576.0", "1.048576e+06"),
        ("67108864.0", "6.7108864e+07"),
        ("1e100", "1e+100"),
        ("0.0", "0"),
        ("+Inf", "+Inf"),
        ("-Inf", "-Inf"),
        ("NaN", "NaN"),
        ("abc", "abc"),
    ];
    for (input, want) in cases {
        let mut out = String::new();
        write_go_float(&mut out, input);
        assert_eq!(out, want, "{input}");
    }
}
