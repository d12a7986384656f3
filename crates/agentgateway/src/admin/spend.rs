//! `GET /v1/spend?group_by=user|team|key|model&from=&to=`: spend from the ledger, grouped.
//!
//! `from` and `to` take unix seconds, RFC 3339 timestamps or `YYYY-MM-DD` dates (UTC
//! midnight); `to` defaults to now and `from` to the start of the current UTC month. The ledger
//! is hour-granular: an hour counts when its start is in `[from, to)`. Money is rendered as
//! decimal strings so no client parses it into a float by accident. Unknown or repeated
//! parameters are refused (a typo must not silently widen the answer to everything).

use std::borrow::Cow;

use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SecondsFormat};
use http::{Response, StatusCode};
use http_body_util::Full;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use super::error::{json_response, ApiError};
use crate::auth::unix_now;
use crate::spend::{GroupBy, Ledger, SpendRow};

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// The parameters of one spend request, resolved (defaults applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpendParams {
    group_by: GroupBy,
    from: i64,
    to: i64,
}

/// `GET /v1/spend`. `query` is the request's raw query string.
pub(super) async fn get(ledger: Option<&Ledger>, query: Option<&str>) -> Reply {
    let ledger = ledger.ok_or_else(|| {
        ApiError::not_found("cost tracking is off: no spend ledger is configured")
    })?;
    let params = SpendParams::parse(query.unwrap_or(""), unix_now())?;
    let rows = ledger
        .query(params.group_by, params.from, params.to)
        .await
        .map_err(ledger_error)?;
    let body = render(&params, &rows).to_string();
    Ok(json_response(StatusCode::OK, body.into()))
}

// === impl SpendParams ===

impl SpendParams {
    fn parse(query: &str, now: i64) -> Result<SpendParams, ApiError> {
        let (mut group_by, mut from, mut to) = (None, None, None);
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name)
                .ok_or_else(|| ApiError::invalid("a parameter name is not valid UTF-8"))?;
            let slot = match name.as_ref() {
                "group_by" => &mut group_by,
                "from" => &mut from,
                "to" => &mut to,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "unknown parameter {name:?}; /v1/spend takes group_by, from and to"
                    )))
                }
            };
            let value = percent_decode(value).ok_or_else(|| {
                ApiError::invalid(format!("{name} is not valid percent-encoded UTF-8"))
            })?;
            if slot.replace(value).is_some() {
                return Err(ApiError::invalid(format!("{name} is given more than once")));
            }
        }
        let group_by = group_by
            .ok_or_else(|| {
                ApiError::invalid("group_by is required: one of user, team, key, model")
            })?
            .parse::<GroupBy>()
            .map_err(ApiError::invalid)?;
        let to = to.map_or(Ok(now), |text| parse_time("to", &text))?;
        let from = from.map_or_else(|| Ok(month_start(now)), |text| parse_time("from", &text))?;
        if from > to {
            return Err(ApiError::invalid(format!(
                "from ({}) is after to ({})",
                rfc3339(from),
                rfc3339(to)
            )));
        }
        Ok(SpendParams { group_by, from, to })
    }
}

/// Unix seconds, an RFC 3339 timestamp, or a `YYYY-MM-DD` date (its UTC midnight), within the
/// range an RFC 3339 answer can show.
fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    let seconds = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()
    } else if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        Some(at.timestamp())
    } else {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|date| date.and_time(NaiveTime::MIN).and_utc().timestamp())
    };
    seconds
        .filter(|&seconds| DateTime::from_timestamp(seconds, 0).is_some())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{name} must be unix seconds, an RFC 3339 timestamp or a YYYY-MM-DD date \
                 (got {text:?})"
            ))
        })
}

/// The start of the UTC month holding `now`.
fn month_start(now: i64) -> i64 {
    DateTime::from_timestamp(now, 0)
        .and_then(|at| at.date_naive().with_day(1))
        .map_or(0, |day| day.and_time(NaiveTime::MIN).and_utc().timestamp())
}

/// `%XX` escapes decoded; `+` stays `+` (it is the offset sign of RFC 3339 timestamps, and
/// no value of this API holds a space). `None` if an escape or the result is malformed.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let mut bytes = text.bytes();
    let mut decoded = Vec::with_capacity(text.len());
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            decoded.push(byte);
            continue;
        }
        let high = bytes.next().and_then(hex_value)?;
        let low = bytes.next().and_then(hex_value)?;
        decoded.push(high << 4 | low);
    }
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

fn render(params: &SpendParams, rows: &[SpendRow]) -> Value {
    let field = params.group_by.as_str();
    let total = rows.iter().fold(Decimal::ZERO, |sum, row| {
        sum.checked_add(row.cost_usd).unwrap_or(Decimal::MAX)
    });
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            object.insert(field.to_owned(), Value::from(row.group.as_str()));
            object.insert("cost_usd".to_owned(), Value::from(row.cost_usd.to_string()));
            object.insert("requests".to_owned(), Value::from(row.requests));
            object.insert("input_tokens".to_owned(), Value::from(row.input_tokens));
            object.insert("output_tokens".to_owned(), Value::from(row.output_tokens));
            Value::Object(object)
        })
        .collect();
    json!({
        "group_by": field,
        "from": rfc3339(params.from),
        "to": rfc3339(params.to),
        "total_usd": total.normalize().to_string(),
        "data": data,
    })
}

fn rfc3339(unix_seconds: i64) -> String {
    DateTime::from_timestamp(unix_seconds, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn ledger_error(error: sqlx::Error) -> ApiError {
    // The detail goes to the operator's log; the caller gets the short reason.
    tracing::error!(%error, "admin API: spend ledger failure");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "api_error",
        message: "the spend ledger is unavailable".to_owned(),
        allow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-14T15:09:26Z.
    const NOW: i64 = 1_741_964_966;
    /// 2025-03-01T00:00:00Z.
    const MARCH: i64 = 1_740_787_200;

    fn parse(query: &str) -> Result<SpendParams, String> {
        SpendParams::parse(query, NOW).map_err(|error| error.message)
    }

    fn params(group_by: GroupBy, from: i64, to: i64) -> SpendParams {
        SpendParams { group_by, from, to }
    }

    #[test]
    fn defaults_are_this_month_until_now() {
        assert_eq!(
            parse("group_by=user"),
            Ok(params(GroupBy::User, MARCH, NOW))
        );
        assert_eq!(month_start(MARCH), MARCH);
        assert_eq!(month_start(MARCH - 1), 1_738_368_000); // 2025-02-01
        for group_by in GroupBy::ALL {
            let query = format!("group_by={group_by}");
            assert_eq!(parse(&query).unwrap().group_by, group_by);
        }
    }

    #[test]
    fn times_take_three_shapes() {
        let expected = Ok(params(GroupBy::Team, MARCH, MARCH + 86_400));
        for query in [
            "group_by=team&from=1740787200&to=1740873600",
            "from=2025-03-01&to=2025-03-02&group_by=team",
            "group_by=team&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z",
            "group_by=team&from=2025-03-01T01:00:00%2B01:00&to=2025-03-01T19:00:00-05:00",
            "group_by=team&from=2025-03-01T01:00:00+01:00&to=2025-03-02T00:00:00.999Z",
            "group_by=team&from=2025-03-01T00%3A00%3A00Z&to=2025-03-02",
        ] {
            assert_eq!(parse(query), expected, "{query}");
        }
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let cases = [
            ("", "group_by is required"),
            ("group_by=users", "group_by must be one of"),
            ("group_by=", "group_by must be one of"),
            ("group_by=user&from=yesterday", "from must be unix seconds"),
            ("group_by=user&to=2025-13-01", "to must be unix seconds"),
            ("group_by=user&to=", "to must be unix seconds"),
            ("group_by=user&from=99999999999999999999", "from must be"),
            ("group_by=user&from=-5", "from must be"),
            (
                "group_by=user&from=2025-03-02&to=2025-03-01",
                "from (2025-03-02T00:00:00Z) is after to",
            ),
            (
                "group_by=user&group_by=team",
                "group_by is given more than once",
            ),
            (
                "group_by=user&form=2025-03-01",
                "unknown parameter \"form\"",
            ),
            (
                "group_by=user&from=%ZZ",
                "from is not valid percent-encoded",
            ),
            ("group_by=user&to=%FF", "to is not valid percent-encoded"),
            ("group_by=user&from=%4", "from is not valid percent-encoded"),
        ];
        for (query, expected) in cases {
            let message = parse(query).unwrap_err();
            assert!(message.contains(expected), "{query}: {message}");
        }
    }

    #[test]
    fn percent_decoding_borrows_when_it_can() {
        assert!(matches!(
            percent_decode("user"),
            Some(Cow::Borrowed("user"))
        ));
        assert_eq!(percent_decode("a%20b%2b").as_deref(), Some("a b+"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("%+1"), None);
    }

    #[test]
    fn the_answer_names_the_group_and_keeps_money_exact() {
        let rows = [
            SpendRow {
                group: "alice".into(),
                cost_usd: "10.1".parse().unwrap(),
                requests: 3,
                input_tokens: 30,
                output_tokens: 9,
            },
            SpendRow {
                group: "".into(),
                cost_usd: "2.245".parse().unwrap(),
                requests: 1,
                input_tokens: 0,
                output_tokens: 0,
            },
        ];
        let body = render(&params(GroupBy::User, MARCH, NOW), &rows);
        assert_eq!(
            body,
            json!({
                "group_by": "user",
                "from": "2025-03-01T00:00:00Z",
                "to": "2025-03-14T15:09:26Z",
                "total_usd": "12.345",
                "data": [
                    {"user": "alice", "cost_usd": "10.1", "requests": 3, "input_tokens": 30, "output_tokens": 9},
                    {"user": "", "cost_usd": "2.245", "requests": 1, "input_tokens": 0, "output_tokens": 0},
                ],
            })
        );
        let empty = render(&params(GroupBy::Model, MARCH, MARCH), &[]);
        assert_eq!(empty["total_usd"], "0");
        assert_eq!(empty["data"], json!([]));
    }
}
