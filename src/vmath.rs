//! `exp` and `ln` written so that the compiler vectorises a loop over them: no branches (every
//! special case is a select), no calls, no integer<->float conversions that AVX2 lacks. A loop
//! over a slice then runs 4-16 lanes wide in the SIMD path that `simd::Isa` picked, and the
//! same code gives the same bits in every path (no fused multiply-adds: Rust never contracts
//! `a * b + c`).
//!
//! Both reduce the argument with the classic constructions (Cody and Waite for `exp`; fdlibm's
//! `log`, after Tang, for `ln`): `exp(x) = 2^k e^r`, |r| <= ln2/2, with a Taylor polynomial for
//! `e^r`; `ln(x) = k ln2 + ln(m)`, m in [sqrt(1/2), sqrt(2)), with fdlibm's minimax polynomial
//! in `s = (m-1)/(m+1)`. Accuracy against libm over the whole range is tested below (f64: at
//! most 1 ulp; f32: at most 1 ulp against the correctly rounded result).
//!
//! Not a math library: the two functions the models' losses need, for the two element types.

/// The two functions, for one element type (`v` for vectorisable, as in Intel's VML).
pub trait Transcendental: Copy {
    /// e^x: +inf above the largest finite result, 0 below the smallest subnormal one, NaN for
    /// NaN.
    fn vexp(self) -> Self {
        self.vexp_with::<false>()
    }
    /// [`Transcendental::vexp`] with its polynomial in fused multiply-adds when `FMA` (for the
    /// SIMD paths that have the instruction; the last bit may differ).
    fn vexp_with<const FMA: bool>(self) -> Self;
    /// ln x: -inf at 0, NaN below 0 and for NaN, +inf at +inf; subnormals are exact inputs.
    fn vln(self) -> Self;
}

/// `2^k` from an integral `k` in [-1022, 1023] held as a float, through its bits: `k + 1.5 2^52`
/// holds k in its low bits, so shifting `k + 1023` into the exponent field needs only integer
/// adds and shifts (which AVX2 has, unlike a float->int64 conversion).
#[inline(always)]
fn pow2_f64(k: f64) -> f64 {
    const MAGIC: f64 = 6755399441055744.0; // 1.5 2^52
    let bits = (k + MAGIC).to_bits();
    f64::from_bits(bits.wrapping_add(1023) << 52)
}

#[inline(always)]
fn pow2_f32(k: f32) -> f32 {
    const MAGIC: f32 = 12582912.0; // 1.5 2^23
    let bits = (k + MAGIC).to_bits();
    f32::from_bits(bits.wrapping_add(127) << 23)
}

/// Round to the nearest integer (ties to even), as a float, for |x| < 2^51.
#[inline(always)]
fn round_f64(x: f64) -> f64 {
    const MAGIC: f64 = 6755399441055744.0;
    (x + MAGIC) - MAGIC
}

#[inline(always)]
fn round_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12582912.0;
    (x + MAGIC) - MAGIC
}

impl Transcendental for f64 {
    #[inline(always)]
    fn vexp_with<const FMA: bool>(self) -> f64 {
        const LOG2E: f64 = std::f64::consts::LOG2_E;
        const LN2_HI: f64 = 6.931_471_803_691_238e-1; // fdlibm's split of ln 2
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        // Beyond these the result is inf or 0; clamping keeps k small for the magic number.
        let x = self.clamp(-746.0, 710.0);
        let k = round_f64(x * LOG2E);
        let r = (x - k * LN2_HI) - k * LN2_LO;
        // e^r, |r| <= 0.347: Taylor to degree 13 (truncation below 2^-60 relative).
        let mut p: f64 = 1.0 / 6227020800.0;
        for c in [
            1.0 / 479001600.0,
            1.0 / 39916800.0,
            1.0 / 3628800.0,
            1.0 / 362880.0,
            1.0 / 40320.0,
            1.0 / 5040.0,
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
        ] {
            p = if FMA { p.mul_add(r, c) } else { p * r + c };
        }
        let e_r = 1.0 + r + r * r * p;
        // 2^k in two factors, so that subnormal results and k = 1024 need no special case.
        let k1 = round_f64(k * 0.5);
        let result = e_r * pow2_f64(k1) * pow2_f64(k - k1);
        if self.is_nan() {
            self
        } else {
            result
        }
    }

    #[inline(always)]
    fn vln(self) -> f64 {
        const LN2_HI: f64 = 6.931_471_803_691_238e-1;
        const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
        const SQRT_HALF_BITS: u64 = 0x3fe6_a09e_667f_3bcd;
        const TWO54: f64 = 18014398509481984.0;
        // Subnormals: scale into the normal range first.
        let subnormal = self < f64::MIN_POSITIVE;
        let x = if subnormal { self * TWO54 } else { self };
        // x = 2^k m, m in [sqrt(1/2), sqrt(2)): bias the bits so that the exponent field
        // carries into k exactly when m >= sqrt(2).
        let u = x
            .to_bits()
            .wrapping_add(0x3ff0_0000_0000_0000 - SQRT_HALF_BITS);
        let exponent = f64::from_bits(0x4330_0000_0000_0000 | (u >> 52)) - 4503599627370496.0;
        let k = exponent - 1023.0 - if subnormal { 54.0 } else { 0.0 };
        let m = f64::from_bits((u & 0x000f_ffff_ffff_ffff).wrapping_add(SQRT_HALF_BITS));
        let f = m - 1.0;
        let hfsq = 0.5 * f * f;
        let s = f / (2.0 + f);
        let z = s * s;
        let w = z * z;
        let t1 = w
            * (3.999_999_999_940_942e-1
                + w * (2.222_219_843_214_978_4e-1 + w * 1.531_383_769_920_937_3e-1));
        let t2 = z
            * (6.666_666_666_666_735e-1
                + w * (2.857_142_874_366_239e-1
                    + w * (1.818_357_216_161_805e-1 + w * 1.479_819_860_511_658_6e-1)));
        let r = t2 + t1;
        let result = s * (hfsq + r) + k * LN2_LO - hfsq + f + k * LN2_HI;
        if self.is_nan() || self < 0.0 {
            f64::NAN
        } else if self == 0.0 {
            f64::NEG_INFINITY
        } else if self == f64::INFINITY {
            self
        } else {
            result
        }
    }
}

impl Transcendental for f32 {
    #[inline(always)]
    fn vexp_with<const FMA: bool>(self) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 6.931_457_5e-1; // musl's split of ln 2 for expf
        const LN2_LO: f32 = 1.428_606_8e-6;
        let x = self.clamp(-104.0, 89.0);
        let k = round_f32(x * LOG2E);
        let r = (x - k * LN2_HI) - k * LN2_LO;
        // e^r, |r| <= 0.347: Taylor to degree 7 (truncation below 2^-27 relative).
        let mut p: f32 = 1.0 / 5040.0;
        for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5] {
            p = if FMA { p.mul_add(r, c) } else { p * r + c };
        }
        let e_r = 1.0 + r + r * r * p;
        let k1 = round_f32(k * 0.5);
        let result = e_r * pow2_f32(k1) * pow2_f32(k - k1);
        if self.is_nan() {
            self
        } else {
            result
        }
    }

    #[inline(always)]
    fn vln(self) -> f32 {
        const LN2_HI: f32 = 6.931_381e-1; // musl's logf split of ln 2
        const LN2_LO: f32 = 9.058_001e-6;
        const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
        const TWO25: f32 = 33554432.0;
        let subnormal = self < f32::MIN_POSITIVE;
        let x = if subnormal { self * TWO25 } else { self };
        let u = x.to_bits().wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
        let exponent = f32::from_bits(0x4b00_0000 | (u >> 23)) - 8388608.0;
        let k = exponent - 127.0 - if subnormal { 25.0 } else { 0.0 };
        let m = f32::from_bits((u & 0x007f_ffff).wrapping_add(SQRT_HALF_BITS));
        let f = m - 1.0;
        let hfsq = 0.5 * f * f;
        let s = f / (2.0 + f);
        let z = s * s;
        let w = z * z;
        let t1 = w * (0.400_009_72 + w * 0.242_790_79);
        let t2 = z * (0.666_666_6 + w * 0.284_987_87);
        let r = t2 + t1;
        let result = s * (hfsq + r) + k * LN2_LO - hfsq + f + k * LN2_HI;
        if self.is_nan() || self < 0.0 {
            f32::NAN
        } else if self == 0.0 {
            f32::NEG_INFINITY
        } else if self == f32::INFINITY {
            self
        } else {
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats of the same sign.
    fn ulps_f64(a: f64, b: f64) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |v: f64| {
            let bits = v.to_bits() as i64;
            if bits < 0 {
                i64::MIN - bits
            } else {
                bits
            }
        };
        key(a).abs_diff(key(b))
    }

    fn ulps_f32(a: f32, b: f32) -> u64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0;
        }
        let key = |v: f32| {
            let bits = v.to_bits() as i32;
            i64::from(if bits < 0 { i32::MIN - bits } else { bits })
        };
        key(a).abs_diff(key(b))
    }

    /// `n` points spread evenly over [lo, hi], plus the ends.
    fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f64 / n as f64)
    }

    /// Every 997th positive f64 bit pattern's neighbourhood, normal and subnormal: the whole
    /// exponent range.
    fn positive_f64(n: u64) -> impl Iterator<Item = f64> {
        let step = 0x7ff0_0000_0000_0000 / n;
        (1..n).map(move |i| f64::from_bits(i * step + i % 997))
    }

    #[test]
    fn exp_f64_is_within_1_ulp_of_libm_over_its_whole_range() {
        let worst = grid(-745.2, 709.8, 2_000_000)
            .chain(grid(-1.0, 1.0, 200_000))
            .map(|x| (ulps_f64(Transcendental::vexp(x), x.exp()), x))
            .chain(
                grid(-745.2, 709.8, 200_000).map(|x| (ulps_f64(x.vexp_with::<true>(), x.exp()), x)),
            )
            .max_by_key(|&(ulps, _)| ulps)
            .unwrap();
        assert!(worst.0 <= 1, "{} ulp at {}", worst.0, worst.1);
    }

    #[test]
    fn ln_f64_is_within_1_ulp_of_libm_over_its_whole_range() {
        let worst = positive_f64(2_000_000)
            .chain(grid(0.5, 2.0, 200_000))
            .map(|x| (ulps_f64(Transcendental::vln(x), x.ln()), x))
            .max_by_key(|&(ulps, _)| ulps)
            .unwrap();
        assert!(worst.0 <= 1, "{} ulp at {:e}", worst.0, worst.1);
    }

    #[test]
    fn f32_is_within_1_ulp_of_the_correctly_rounded_result() {
        let exp = grid(-103.9, 88.7, 2_000_000)
            .map(|x| x as f32)
            .map(|x| {
                (
                    ulps_f32(Transcendental::vexp(x), (x as f64).exp() as f32),
                    x,
                )
            })
            .max_by_key(|&(ulps, _)| ulps)
            .unwrap();
        assert!(exp.0 <= 1, "exp: {} ulp at {}", exp.0, exp.1);
        let ln = (1..2_000_000u32)
            .map(|i| f32::from_bits(i * (0x7f80_0000 / 2_000_000) + i % 89))
            .map(|x| (ulps_f32(Transcendental::vln(x), (x as f64).ln() as f32), x))
            .max_by_key(|&(ulps, _)| ulps)
            .unwrap();
        assert!(ln.0 <= 1, "ln: {} ulp at {:e}", ln.0, ln.1);
    }

    #[test]
    fn special_values_follow_ieee() {
        for (x, e) in [
            (f64::NAN, f64::NAN),
            (f64::INFINITY, f64::INFINITY),
            (f64::NEG_INFINITY, 0.0),
            (710.0, f64::INFINITY),
            (-746.0, 0.0),
            (0.0, 1.0),
            (-0.0, 1.0),
        ] {
            assert_eq!(ulps_f64(Transcendental::vexp(x), e), 0, "exp({x})");
        }
        for (x, l) in [
            (f64::NAN, f64::NAN),
            (-1.0, f64::NAN),
            (0.0, f64::NEG_INFINITY),
            (-0.0, f64::NEG_INFINITY),
            (f64::INFINITY, f64::INFINITY),
            (1.0, 0.0),
            (f64::from_bits(1), -744.4400719213812),
        ] {
            assert_eq!(ulps_f64(Transcendental::vln(x), l), 0, "ln({x:e})");
        }
        assert!(Transcendental::vexp(f32::NAN).is_nan());
        assert_eq!(Transcendental::vexp(89.0f32), f32::INFINITY);
        assert_eq!(Transcendental::vexp(-104.0f32), 0.0);
        assert_eq!(Transcendental::vln(0.0f32), f32::NEG_INFINITY);
        assert!(Transcendental::vln(-2.0f32).is_nan());
        assert_eq!(Transcendental::vln(f32::INFINITY), f32::INFINITY);
    }
}
