//! Exact decimal numbers (an i128 coefficient and a decimal scale) for merging DECIMAL
//! sums, averages and HAVING arithmetic without ever going through floating point.
//! Values beyond 38 significant digits are refused rather than rounded.

use std::cmp::Ordering;

/// The largest scale MariaDB gives a DECIMAL result (DECIMAL_MAX_SCALE).
pub const MAX_SCALE: u32 = 38;

/// `coefficient / 10^scale`.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    pub coefficient: i128,
    pub scale: u32,
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

impl Decimal {
    pub fn from_int(value: i128) -> Self {
        Decimal {
            coefficient: value,
            scale: 0,
        }
    }

    /// Parses MariaDB's decimal text: optional sign, digits, optional fraction. No exponent.
    pub fn parse(text: &[u8]) -> Option<Decimal> {
        let (negative, digits) = match text.first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (int_part, frac_part) = match digits.iter().position(|&b| b == b'.') {
            Some(dot) => (&digits[..dot], &digits[dot + 1..]),
            None => (digits, &digits[..0]),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut coefficient: i128 = 0;
        for &b in int_part.iter().chain(frac_part) {
            if !b.is_ascii_digit() {
                return None;
            }
            coefficient = coefficient
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        let scale = u32::try_from(frac_part.len()).ok()?;
        Some(Decimal {
            coefficient: if negative { -coefficient } else { coefficient },
            scale,
        })
    }

    /// The same value with `scale` fraction digits; None when that needs more than 38 digits.
    /// Only ever widens: use `round_to` to narrow.
    pub fn rescale(self, scale: u32) -> Option<Decimal> {
        if scale < self.scale {
            return None;
        }
        Some(Decimal {
            coefficient: self.coefficient.checked_mul(pow10(scale - self.scale)?)?,
            scale,
        })
    }

    /// Rounded half away from zero to `scale` fraction digits, as MariaDB rounds decimals.
    pub fn round_to(self, scale: u32) -> Option<Decimal> {
        if scale >= self.scale {
            return self.rescale(scale);
        }
        let divisor = pow10(self.scale - scale)?;
        let quotient = self.coefficient / divisor;
        let remainder = (self.coefficient % divisor).abs();
        let bump = i128::from(remainder * 2 >= divisor);
        let coefficient = if self.coefficient < 0 {
            quotient - bump
        } else {
            quotient + bump
        };
        Some(Decimal { coefficient, scale })
    }

    fn aligned(self, other: Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        Some((
            self.rescale(scale)?.coefficient,
            other.rescale(scale)?.coefficient,
            scale,
        ))
    }

    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal {
            coefficient: a.checked_add(b)?,
            scale,
        })
    }

    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal {
            coefficient: a.checked_sub(b)?,
            scale,
        })
    }

    /// Exact product; its scale is the sum of the scales (MariaDB caps that at 38).
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale + other.scale;
        if scale > MAX_SCALE {
            return None;
        }
        Some(Decimal {
            coefficient: self.coefficient.checked_mul(other.coefficient)?,
            scale,
        })
    }

    /// `self / divisor` rounded half away from zero to `scale` digits; None on division by
    /// zero or overflow (callers tell the two apart by checking for zero first).
    pub fn checked_div(self, divisor: Decimal, scale: u32) -> Option<Decimal> {
        if divisor.coefficient == 0 {
            return None;
        }
        // self/divisor = (a * 10^(scale + ds - s + 1)) / b / 10^(scale + 1); one extra digit
        // decides the rounding.
        let exp = i64::from(scale) + i64::from(divisor.scale) - i64::from(self.scale) + 1;
        let (numerator, denominator) = if exp >= 0 {
            (
                self.coefficient
                    .checked_mul(pow10(u32::try_from(exp).ok()?)?)?,
                divisor.coefficient,
            )
        } else {
            (
                self.coefficient,
                divisor
                    .coefficient
                    .checked_mul(pow10(u32::try_from(-exp).ok()?)?)?,
            )
        };
        let negative = (numerator < 0) != (denominator < 0);
        let (n, d) = (numerator.unsigned_abs(), denominator.unsigned_abs());
        let truncated = n / d; // scale + 1 digits, truncated
        let mut q = truncated / 10;
        if truncated % 10 >= 5 {
            q += 1;
        }
        let q = i128::try_from(q).ok()?;
        Some(Decimal {
            coefficient: if negative { -q } else { q },
            scale,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    pub fn to_f64(self) -> f64 {
        // Only used where MariaDB itself converts to double.
        let text = self.to_string();
        text.parse().unwrap_or(f64::NAN)
    }

    /// Compares exactly; None only when aligning the scales overflows.
    pub fn compare(self, other: Decimal) -> Option<Ordering> {
        let (a, b, _) = self.aligned(other)?;
        Some(a.cmp(&b))
    }

    /// Exact comparison that never fails: by sign, then by the digits of the magnitudes.
    pub fn total_cmp(self, other: Decimal) -> Ordering {
        if let Some(order) = self.compare(other) {
            return order;
        }
        let sign = |d: &Decimal| d.coefficient.signum();
        match sign(&self).cmp(&sign(&other)) {
            Ordering::Equal => {}
            order => return order,
        }
        let magnitude = |d: Decimal| {
            let d = d.normalized();
            let text = Decimal {
                coefficient: d.coefficient.abs(),
                scale: d.scale,
            }
            .to_string();
            let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
            (int_part.len(), int_part.to_string(), frac_part.to_string())
        };
        let by_magnitude = magnitude(self).cmp(&magnitude(other));
        if self.coefficient < 0 {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }

    /// The value without trailing fraction zeros, so equal values have equal forms.
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.coefficient % 10 == 0 {
            d.coefficient /= 10;
            d.scale -= 1;
        }
        if d.coefficient == 0 {
            d.scale = 0;
        }
        d
    }
}

impl std::fmt::Display for Decimal {
    /// MariaDB's text form: all `scale` fraction digits, a leading "0" before the point,
    /// no "-" on zero.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.coefficient.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let sign = if self.coefficient < 0 { "-" } else { "" };
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (int_part, frac_part) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int_part}.{frac_part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn parse_and_print_keep_the_scale() {
        for text in [
            "0",
            "15",
            "-4",
            "3.75",
            "-0.05",
            "0.000001",
            "123456789.123456789",
        ] {
            assert_eq!(d(text).to_string(), text);
        }
        assert_eq!(d("+1.50").to_string(), "1.50");
        assert_eq!(d(".5").to_string(), "0.5");
        for bad in ["", "-", "1e5", "1.2.3", "abc", "."] {
            assert!(Decimal::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(
            Decimal::parse(&[b'9'; 40]).is_none(),
            "beyond i128 is refused"
        );
    }

    #[test]
    fn sums_and_products_are_exact() {
        assert_eq!(d("1.25").checked_add(d("2.5")).unwrap().to_string(), "3.75");
        assert_eq!(d("1").checked_sub(d("1.10")).unwrap().to_string(), "-0.10");
        assert_eq!(
            d("1.5").checked_mul(d("1.25")).unwrap().to_string(),
            "1.875"
        );
        assert!(
            Decimal::from_int(i128::MAX)
                .checked_add(Decimal::from_int(1))
                .is_none()
        );
    }

    #[test]
    fn division_rounds_half_away_from_zero() {
        let cases = [
            ("2", "3", 4, "0.6667"),
            ("-2", "3", 4, "-0.6667"),
            ("1", "3", 4, "0.3333"),
            ("2.00", "3", 6, "0.666667"),
            ("4", "3", 4, "1.3333"),
            ("5", "2", 4, "2.5000"),
            ("-1", "8", 2, "-0.13"),
            ("1", "8", 2, "0.13"),
            ("3.16", "3", 6, "1.053333"),
            ("1", "-3", 4, "-0.3333"),
        ];
        for (a, b, scale, want) in cases {
            assert_eq!(
                d(a).checked_div(d(b), scale).unwrap().to_string(),
                want,
                "{a}/{b}"
            );
        }
        assert!(d("1").checked_div(d("0"), 4).is_none());
    }

    #[test]
    fn rounding_and_comparison() {
        assert_eq!(d("2.345").round_to(2).unwrap().to_string(), "2.35");
        assert_eq!(d("-2.345").round_to(2).unwrap().to_string(), "-2.35");
        assert_eq!(d("2.344").round_to(2).unwrap().to_string(), "2.34");
        assert_eq!(d("1.50").compare(d("1.5")), Some(Ordering::Equal));
        assert_eq!(d("-1.5").compare(d("1")), Some(Ordering::Less));
        assert_eq!(d("1.500").normalized().to_string(), "1.5");
        assert_eq!(d("-0.00").normalized().to_string(), "0");
        // Aligning these overflows i128; the digit comparison still decides exactly.
        let big = d("12345678901234567890123456789012345678");
        let small = d("0.00000000000000000000000000000000000001");
        assert_eq!(big.total_cmp(small), Ordering::Greater);
        assert_eq!(small.total_cmp(big), Ordering::Less);
        let neg = Decimal {
            coefficient: -big.coefficient,
            scale: 0,
        };
        assert_eq!(neg.total_cmp(small), Ordering::Less);
    }
}
