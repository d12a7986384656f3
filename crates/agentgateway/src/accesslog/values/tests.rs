//! The value writers against their references: decimals against `Display`, and the fast paths
//! of the string writers against the character-by-character ones they skip.

use proptest::prelude::*;

use super::*;

fn decimal(value: Decimal) -> String {
    let mut buf = String::new();
    push_decimal(&mut buf, value);
    buf
}

fn text(value: &str) -> String {
    let mut buf = String::new();
    push_text_value(&mut buf, value);
    buf
}

fn text_checked(value: &str) -> String {
    let mut buf = String::new();
    push_text_value_checked(&mut buf, value);
    buf
}

fn escaped(value: &str) -> (String, String) {
    let (mut fast, mut checked) = (String::new(), String::new());
    push_escaped(&mut fast, value);
    push_escaped_checked(&mut checked, value);
    (fast, checked)
}

#[test]
fn decimals_are_written_as_display_writes_them() {
    for text in [
        "0.0003",
        "0",
        "-0",
        "0.000",
        "12.50",
        "-1.05",
        "1000",
        "0.0000000001",
    ] {
        let value: Decimal = text.parse().unwrap_or_default();
        assert_eq!(decimal(value), value.to_string(), "{text}");
        assert_eq!(
            decimal(value.normalize()),
            value.normalize().to_string(),
            "{text}"
        );
    }
    assert_eq!(decimal(Decimal::MAX), Decimal::MAX.to_string());
    assert_eq!(decimal(Decimal::MIN), Decimal::MIN.to_string());
}

#[test]
fn plain_and_special_values_take_the_right_path() {
    assert_eq!(text("gpt-4o-mini"), "gpt-4o-mini");
    assert_eq!(text(r"c:\dir"), r"c:\dir");
    assert_eq!(text("a b"), "\"a b\"");
    assert_eq!(text(""), "\"\"");
    assert_eq!(text("caf\u{e9}"), "caf\u{e9}");
    assert_eq!(text("x\u{85}y"), "\"x\\u0085y\"");
    assert_eq!(escaped("plain"), ("plain".into(), "plain".into()));
    assert_eq!(escaped("a\"b").0, "a\\\"b");
}

proptest! {
    #[test]
    fn decimal_matches_display(mantissa in any::<i128>(), scale in 0_u32..=28) {
        if let Ok(value) = Decimal::try_from_i128_with_scale(mantissa >> 32, scale) {
            prop_assert_eq!(decimal(value), value.to_string());
            prop_assert_eq!(decimal(value.normalize()), value.normalize().to_string());
        }
    }

    #[test]
    fn text_fast_path_matches_the_checked_one(value in "\\PC{0,24}|[ -~\u{80}-\u{a0}]{0,24}") {
        prop_assert_eq!(text(&value), text_checked(&value));
    }

    #[test]
    fn escape_fast_path_matches_the_checked_one(value in "\\PC{0,24}|[\u{0}-\u{a0}]{0,24}") {
        let (fast, checked) = escaped(&value);
        prop_assert_eq!(fast, checked);
    }
}
