//! Kubernetes resource quantities (`500m`, `1Gi`, `2e3`, `1.5`) as exact milli-units, for
//! comparing and summing requests, limits and quotas.

/// A quantity in thousandths of its unit (so `500m` is 500 and `1` is 1000).
pub fn parse_millis(text: &str) -> Option<i128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return None;
    }
    // (multiplier numerator, denominator) in milli-units.
    let (numerator, denominator): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: u32 = exponent[1..].parse().ok().filter(|p| *p <= 18)?;
            (1000 * 10i128.pow(power), 1)
        }
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 9 {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let scale = 10i128.pow(fraction.len() as u32);
    let fraction: i128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    let value = (whole * scale + fraction).checked_mul(numerator)? / (scale * denominator);
    Some(if negative { -value } else { value })
}

/// Formats milli-units back as a quantity for messages: whole units when exact, else `m`.
pub fn format_millis(millis: i128) -> String {
    if millis % 1000 == 0 { (millis / 1000).to_string() } else { format!("{millis}m") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_milli_units() {
        for (text, millis) in [
            ("1", 1000),
            ("500m", 500),
            ("0.5", 500),
            ("1.5", 1500),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("1Gi", 1_073_741_824_000),
            ("100M", 100_000_000_000),
            ("1e3", 1_000_000),
            ("-1", -1000),
            ("250u", 0),
        ] {
            assert_eq!(parse_millis(text), Some(millis), "{text}");
        }
        for bad in ["", "m", "1x", "1.2.3", "abc", "1e99"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
        assert_eq!(format_millis(2000), "2");
        assert_eq!(format_millis(500), "500m");
    }
}
