//! Exact decimal parsing of a number as written in a price file. serde would hand us an `f64`,
//! which cannot hold 0.075 or 1.5e-07; the files' own text can, so both formats keep each number's
//! text and this turns it into a [`Decimal`] without rounding. A value that does not fit exactly
//! (more than 28 fractional digits) is an error rather than a silently different price.

use rust_decimal::Decimal;

/// Largest power of ten applied from an exponent; beyond it no `Decimal` could hold the value.
const MAX_EXPONENT: u32 = 28;

/// Parses plain (`0.075`, `3`) or scientific (`1.5e-07`, `2E+1`) notation exactly. Prices are
/// never negative, so a minus sign is an error too.
pub(crate) fn exact_decimal(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (text, None),
    };
    let value = Decimal::from_str_exact(mantissa).map_err(|_| not_a_number(text))?;
    let value = match exponent {
        Some(e) => {
            let e: i32 = e.parse().map_err(|_| not_a_number(text))?;
            shift(value, e).ok_or_else(|| format!("`{text}` does not fit an exact decimal"))?
        }
        None => value,
    };
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("`{text}` is negative"));
    }
    Ok(value.normalize())
}

/// `value * 10^exponent`, exactly, or `None` when the result does not fit.
pub(crate) fn shift(value: Decimal, exponent: i32) -> Option<Decimal> {
    let value = value.normalize();
    let places = exponent.unsigned_abs();
    if places > MAX_EXPONENT {
        return None;
    }
    if exponent < 0 {
        let mut scaled = value;
        scaled.set_scale(value.scale().checked_add(places)?).ok()?;
        return Some(scaled);
    }
    let factor = Decimal::try_from_i128_with_scale(10i128.checked_pow(places)?, 0).ok()?;
    value.checked_mul(factor)
}

fn not_a_number(text: &str) -> String {
    format!("`{text}` is not a number")
}
