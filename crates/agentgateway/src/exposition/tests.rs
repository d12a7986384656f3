use super::*;
use http::HeaderValue;

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
