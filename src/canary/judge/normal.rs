//! The standard normal distribution: P(Z ≤ z) and its inverse to full double precision (Cody's and
//! Wichura's rational approximations, as in R's `pnorm` and `qnorm`).

// The rational-approximation coefficients are kept digit for digit as published (Cody, Wichura, R).
#![allow(clippy::excessive_precision)]

/// Upper tail of the standard normal, P(Z > z), accurate to about 1e-15 relative (W. J. Cody's rational
/// approximations, as in R's `pnorm`).
pub fn normal_sf(z: f64) -> f64 {
    normal_cdf(-z)
}

/// P(Z ≤ z) for the standard normal (Cody's algorithm, R `pnorm_both`).
pub fn normal_cdf(x: f64) -> f64 {
    const A: [f64; 5] = [
        2.235_252_035_460_683_9,
        161.028_231_068_555_88,
        1_067.689_485_460_370_9,
        18_154.981_253_343_562,
        0.065_682_337_918_207_45,
    ];
    const B: [f64; 4] = [
        47.202_581_904_688_24,
        976.098_551_737_773_3,
        10_260.932_208_618_979,
        45_507.789_335_026_73,
    ];
    const C: [f64; 9] = [
        0.398_941_512_088_134_66,
        8.883_149_794_388_376,
        93.506_656_132_177_86,
        597.270_276_394_800_3,
        2_494.537_585_290_372_6,
        6_848.190_450_536_283,
        11_602.651_437_647_35,
        9_842.714_838_383_978,
        1.076_557_677_372_019_2e-8,
    ];
    const D: [f64; 8] = [
        22.266_688_044_328_117,
        235.387_901_782_625,
        1_519.377_599_407_554_8,
        6_485.558_298_266_761,
        18_615.571_640_885_097,
        34_900.952_721_145_98,
        38_912.003_286_093_27,
        19_685.429_676_859_992,
    ];
    const P: [f64; 6] = [
        0.215_898_534_057_957,
        0.127_401_161_160_247_36,
        0.022_235_277_870_649_807,
        0.001_421_619_193_227_893_5,
        2.911_287_495_116_879_2e-5,
        0.023_073_441_764_940_174,
    ];
    const Q: [f64; 5] = [
        1.284_260_096_144_911_2,
        0.468_238_212_480_865_1,
        0.065_988_137_868_928_55,
        0.003_782_396_332_027_582_4,
        7.297_515_550_839_662e-5,
    ];
    const M_SQRT_32: f64 = 5.656_854_249_492_381;
    const M_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    // Returns (cum, ccum) for |x| via the exp(-x²/2) split that keeps precision.
    let tail = |y: f64, temp: f64| -> f64 {
        let xsq = (y * 16.0).trunc() / 16.0;
        let del = (y - xsq) * (y + xsq);
        (-xsq * xsq * 0.5).exp() * (-del * 0.5).exp() * temp
    };
    if y <= 0.674_489_75 {
        let (xnum, xden) = if y > f64::EPSILON * 0.5 {
            let xsq = x * x;
            let mut xnum = A[4] * xsq;
            let mut xden = xsq;
            for i in 0..3 {
                xnum = (xnum + A[i]) * xsq;
                xden = (xden + B[i]) * xsq;
            }
            (xnum, xden)
        } else {
            (0.0, 0.0)
        };
        let temp = x * (xnum + A[3]) / (xden + B[3]);
        0.5 + temp
    } else if y <= M_SQRT_32 {
        let mut xnum = C[8] * y;
        let mut xden = y;
        for i in 0..7 {
            xnum = (xnum + C[i]) * y;
            xden = (xden + D[i]) * y;
        }
        let temp = (xnum + C[7]) / (xden + D[7]);
        let lower_tail = tail(y, temp);
        if x > 0.0 {
            1.0 - lower_tail
        } else {
            lower_tail
        }
    } else if y < 37.5193 {
        let xsq = 1.0 / (x * x);
        let mut xnum = P[5] * xsq;
        let mut xden = xsq;
        for i in 0..4 {
            xnum = (xnum + P[i]) * xsq;
            xden = (xden + Q[i]) * xsq;
        }
        let mut temp = xsq * (xnum + P[4]) / (xden + Q[4]);
        temp = (M_1_SQRT_2PI - temp) / y;
        let lower_tail = tail(y, temp);
        if x > 0.0 {
            1.0 - lower_tail
        } else {
            lower_tail
        }
    } else if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The standard normal quantile Φ⁻¹(p) (Wichura's AS 241, as in R's `qnorm`), accurate to about 1e-16.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180_625 - q * q;
        return q
            * (((((((r * 2_509.080_928_730_122_7 + 33_430.575_583_588_13) * r
                + 67_265.770_927_008_7)
                * r
                + 45_921.953_931_549_87)
                * r
                + 13_731.693_765_509_461)
                * r
                + 1_971.590_950_306_551_3)
                * r
                + 133.141_667_891_784_38)
                * r
                + 3.387_132_872_796_366_5)
            / (((((((r * 5_226.495_278_852_546 + 28_729.085_735_721_943) * r
                + 39_307.895_800_092_71)
                * r
                + 21_213.794_301_586_597)
                * r
                + 5_394.196_021_424_751)
                * r
                + 687.187_007_492_057_9)
                * r
                + 42.313_330_701_600_91)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((r * 7.745_450_142_783_414e-4 + 0.022_723_844_989_269_184) * r
            + 0.241_780_725_177_450_6)
            * r
            + 1.270_458_252_452_368_4)
            * r
            + 3.647_848_324_763_204_5)
            * r
            + 5.769_497_221_460_691)
            * r
            + 4.630_337_846_156_545)
            * r
            + 1.423_437_110_749_683_5)
            / (((((((r * 1.050_750_071_644_416_9e-9 + 5.475_938_084_995_345e-4) * r
                + 0.015_198_666_563_616_457)
                * r
                + 0.148_103_976_427_480_08)
                * r
                + 0.689_767_334_985_1)
                * r
                + 1.676_384_830_183_803_8)
                * r
                + 2.053_191_626_637_759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((r * 2.010_334_399_292_288_1e-7 + 2.711_555_568_743_487_6e-5) * r
            + 0.001_242_660_947_388_078_4)
            * r
            + 0.026_532_189_526_576_124)
            * r
            + 0.296_560_571_828_504_9)
            * r
            + 1.784_826_539_917_291_3)
            * r
            + 5.463_784_911_164_114)
            * r
            + 6.657_904_643_501_103_5)
            / (((((((r * 2.044_263_103_389_939_8e-15 + 1.421_511_758_316_445_9e-7) * r
                + 1.846_318_317_510_054_8e-5)
                * r
                + 7.868_691_311_456_133e-4)
                * r
                + 0.014_875_361_290_850_615)
                * r
                + 0.136_929_880_922_735_8)
                * r
                + 0.599_832_206_555_888)
                * r
                + 1.0)
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

/// Two-sided p-value of a standard normal statistic, 2·P(Z > |z|), capped at 1.
pub fn two_sided_p(z: f64) -> f64 {
    (2.0 * normal_sf(z.abs())).min(1.0)
}
