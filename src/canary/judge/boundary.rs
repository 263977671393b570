//! The always-valid boundary of the sequential judge and the α it spends.
//!
//! - [`always_valid_p`]: the mixture sequential probability ratio test (mSPRT) of Johari, Pekelis & Walsh
//!   ("Always valid inference: continuous monitoring of A/B tests", Operations Research 70(3), 2022, §3;
//!   Robbins 1970) for a statistic that is approximately normal, z ≈ θ·√I at information I. With a normal
//!   mixing distribution θ ~ N(0, τ²) the likelihood ratio has the closed form
//!   Λ = (1 + τ²I)^(−½) · exp(z² τ²I / (2(1 + τ²I))), and p = min(1, 1/Λ) is valid at any stopping time
//!   (Ville's inequality: P(sup Λ ≥ 1/α) ≤ α under no change), so taking the running minimum over looks
//!   keeps it valid however often one looks.
//! - [`crossing_probability`]: the exact probability that a normal statistic, observed at the given
//!   information levels, ever crosses a symmetric boundary ±b_k (Armitage, McPherson & Rowe 1969; the
//!   recursive numerical integration of Jennison & Turnbull, *Group Sequential Methods*, 2000, ch. 19).
//!   The judge reports it as the α spent by the looks so far; the unit tests check it against Pocock's and
//!   O'Brien–Fleming's published constants.

use super::stats::{normal_cdf, normal_quantile};

/// The mixing standard deviation τ of the standardized effect (effect / σ per unit of information,
/// information = n·m/(n+m)). 0.2 puts the boundary at z ≈ 5 for 50 samples per arm and at z ≈ 4.1 for
/// 10,000 per arm (level 0.02/7): early looks can stop on large effects, the last look loses little power.
pub const TAU: f64 = 0.2;

/// Statistical information of a two-sample comparison with `n` and `m` samples: n·m/(n+m).
pub fn information(n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 0.0;
    }
    let (n, m) = (n as f64, m as f64);
    n * m / (n + m)
}

/// The always-valid p-value of a two-sided normal statistic with |z| implied by the fixed-sample two-sided
/// p-value `p`, at information `info`: min(1, 1/Λ) (see the module documentation).
pub fn always_valid_p(p: f64, info: f64, tau: f64) -> f64 {
    if p.is_nan() || p >= 1.0 || info <= 0.0 {
        return 1.0;
    }
    let z = -normal_quantile(p / 2.0); // |z|; +∞ when p underflowed to 0
    if !z.is_finite() {
        return 0.0;
    }
    let r = tau * tau * info;
    let ln_p = 0.5 * (1.0 + r).ln() - z * z * r / (2.0 * (1.0 + r));
    ln_p.min(0.0).exp()
}

/// The |z| at which the always-valid p-value at information `info` reaches `level`.
pub fn z_boundary(level: f64, info: f64, tau: f64) -> f64 {
    let r = tau * tau * info;
    if r <= 0.0 {
        return f64::INFINITY;
    }
    (2.0 * (1.0 + r) / r * ((1.0 / level).ln() + 0.5 * (1.0 + r).ln())).sqrt()
}

/// P(|Z_k| ≥ b_k for some k) for a standard normal statistic Z_k = S(I_k)/√I_k of a Brownian motion S
/// observed at increasing information levels `info` with boundaries `z_bounds` (same length). Looks that
/// add no information are skipped; an infinite bound never stops.
pub fn crossing_probability(info: &[f64], z_bounds: &[f64]) -> f64 {
    assert_eq!(info.len(), z_bounds.len());
    // The sub-density of S on the continuation region at the previous look, on an equally spaced grid.
    let mut grid: Vec<f64> = Vec::new();
    let mut dens: Vec<f64> = Vec::new();
    let mut prev_info = 0.0f64;
    let mut crossed = 0.0f64;
    for (&i, &b) in info.iter().zip(z_bounds) {
        if i <= prev_info {
            continue;
        }
        let delta = i - prev_info;
        let sd = delta.sqrt();
        let c = b * i.sqrt(); // bound on the S scale
                              // Probability mass arriving beyond ±c from the current density (or from 0 at the first look).
        let beyond = |u: f64| -> f64 {
            if !c.is_finite() {
                return 0.0;
            }
            normal_cdf((-c - u) / sd) + normal_cdf((u - c) / sd)
        };
        if grid.is_empty() {
            crossed += beyond(0.0);
        } else {
            crossed += simpson(&grid, &dens, beyond);
        }
        if !c.is_finite() {
            // Keep the density on a wide finite region: ±8 sd of S.
            let w = 8.0 * i.sqrt();
            let (g, d) = next_density(&grid, &dens, -w, w, sd, prev_info == 0.0);
            grid = g;
            dens = d;
        } else {
            let (g, d) = next_density(&grid, &dens, -c, c, sd, prev_info == 0.0);
            grid = g;
            dens = d;
        }
        prev_info = i;
    }
    crossed
}

/// Simpson's rule of f(u)·dens(u) over an equally spaced grid with an odd number of points.
fn simpson(grid: &[f64], dens: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let k = grid.len();
    if k < 3 {
        return 0.0;
    }
    let h = grid[1] - grid[0];
    let mut s = 0.0;
    for (j, (&u, &d)) in grid.iter().zip(dens).enumerate() {
        let w = if j == 0 || j == k - 1 {
            1.0
        } else if j % 2 == 1 {
            4.0
        } else {
            2.0
        };
        s += w * f(u) * d;
    }
    s * h / 3.0
}

/// The density of S at the next look on [lo, hi], from the previous sub-density (or from S(0) = 0 when
/// `first`), with normal increments of standard deviation `sd`.
fn next_density(
    grid: &[f64],
    dens: &[f64],
    lo: f64,
    hi: f64,
    sd: f64,
    first: bool,
) -> (Vec<f64>, Vec<f64>) {
    // Spacing well below the increment's sd, and below the previous grid's spread.
    let points = (((hi - lo) / (sd / 12.0)).ceil() as usize).clamp(200, 6000) | 1;
    let h = (hi - lo) / (points - 1) as f64;
    let new_grid: Vec<f64> = (0..points).map(|j| lo + j as f64 * h).collect();
    let phi = |x: f64| (-0.5 * x * x).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
    let new_dens = new_grid
        .iter()
        .map(|&s| {
            if first {
                phi(s / sd)
            } else {
                simpson(grid, dens, |u| phi((s - u) / sd))
            }
        })
        .collect();
    (new_grid, new_dens)
}

/// z_{1−level/2}: the fixed-sample two-sided critical value.
pub fn z_fixed(level: f64) -> f64 {
    -normal_quantile(level / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pocock (1977), Jennison & Turnbull (2000) Table 2.1: two-sided α = 0.05, constant nominal boundary
    /// C_P(K, α): K = 2 → 2.178, K = 5 → 2.413, K = 10 → 2.555, equally spaced looks.
    #[test]
    fn pocock_constants_from_jennison_turnbull_table_2_1_give_alpha_0_05() {
        for (k, c) in [(2usize, 2.178), (5, 2.413), (10, 2.555)] {
            let info: Vec<f64> = (1..=k).map(|i| i as f64).collect();
            let p = crossing_probability(&info, &vec![c; k]);
            assert!((p - 0.05).abs() < 2e-4, "K = {k}: {p}");
        }
    }

    /// O'Brien & Fleming (1979), Jennison & Turnbull (2000) Table 2.3: two-sided α = 0.05, boundary
    /// C_B(K, α)·√(K/k): K = 5 → 2.040, K = 4 → 2.024.
    #[test]
    fn obrien_fleming_constants_from_jennison_turnbull_table_2_3_give_alpha_0_05() {
        for (k, c) in [(4usize, 2.024), (5, 2.040)] {
            let info: Vec<f64> = (1..=k).map(|i| i as f64).collect();
            let b: Vec<f64> = (1..=k).map(|i| c * (k as f64 / i as f64).sqrt()).collect();
            let p = crossing_probability(&info, &b);
            assert!((p - 0.05).abs() < 2e-4, "K = {k}: {p}");
        }
    }

    #[test]
    fn one_look_is_the_fixed_sample_test() {
        let p = crossing_probability(&[100.0], &[1.959_963_984_540_054]);
        assert!((p - 0.05).abs() < 1e-12);
        assert!((z_fixed(0.05) - 1.959_963_984_540_054).abs() < 1e-12);
    }

    /// Johari, Pekelis & Walsh (2022), eq. (11): Λ_n = √(V/(V + nτ²)) · exp(n²τ²(Ȳ_n − X̄_n)² /
    /// (2V(V + nτ²))) for n pairs with per-pair variance V. With z = (Ȳ − X̄)/√(V/n) and information I = n/V
    /// on the standardized scale this is our (1 + τ²I)^(−½)·exp(z²τ²I/(2(1 + τ²I))).
    #[test]
    fn always_valid_p_is_the_published_msprt_likelihood_ratio() {
        let (n, v, tau, diff) = (400.0f64, 2.0f64, 0.05f64, 0.2f64);
        let lambda = (v / (v + n * tau * tau)).sqrt()
            * (n * n * tau * tau * diff * diff / (2.0 * v * (v + n * tau * tau))).exp();
        let z = diff / (v / n).sqrt();
        let p_fixed = 2.0 * normal_cdf(-z);
        // Same mixing τ on the effect scale, information I = n/V: τ²I = nτ²/V.
        let p = always_valid_p(p_fixed, n / v, tau);
        assert!(
            ((1.0 / lambda).min(1.0) - p).abs() < 1e-9,
            "{p} vs {}",
            1.0 / lambda
        );
        // The boundary inverts it.
        let b = z_boundary(0.01, 1000.0, TAU);
        let p_at_b = always_valid_p(2.0 * normal_cdf(-b), 1000.0, TAU);
        assert!((p_at_b - 0.01).abs() < 1e-9);
    }

    #[test]
    fn always_valid_boundary_spends_less_than_alpha_over_twenty_looks() {
        // 20 equally spaced looks up to 5,000 units of information, level 0.02.
        let info: Vec<f64> = (1..=20).map(|k| 250.0 * k as f64).collect();
        let b: Vec<f64> = info.iter().map(|&i| z_boundary(0.02, i, TAU)).collect();
        let p = crossing_probability(&info, &b);
        assert!(p > 0.0 && p < 0.02, "{p}");
        // Repeated fixed-level tests would spend far more (Armitage et al. 1969: ≈ 25 % at 0.05, 20 looks).
        let naive = crossing_probability(&info, &[z_fixed(0.05); 20]);
        assert!((naive - 0.25).abs() < 0.02, "{naive}");
    }
}
