//! Seeded simulations of the judge's error rates with the default settings (98 % confidence, Holm):
//! - A/A (both arms from one distribution): at most 2 % of runs may end in anything but PASS;
//! - at 10,000 samples per arm, each fault must be detected (its metric High, verdict not PASS) in ≥ 99 %
//!   of runs: median latency +10 %, 5xx rate 1 % → 3 %, 2 % of requests 10× slower.
//!
//! A run holds the default canary metrics: latency (log-normal, median 20 ms, σ_log 0.5), error rate
//! (0/1, 1 %), response size (normal around 5 kB, decrease fails). Every run draws from a SplitMix64/xoshiro
//! generator seeded by the scenario and run number, so results never change between machines or runs.
//!
//! Sizes: `cargo test` (debug) runs 200 A/A runs at 2,000 per arm and 40 runs per fault at 10,000 per arm;
//! the release run in scripts/test.sh (`cargo test --release --test judge_simulation`) runs 1,000 A/A runs
//! and 200 runs per fault, all at 10,000 per arm.

use pipeline::canary::judge::{
    judge, Classification, FailOn, JudgeConfig, JudgeInput, MetricInput, Verdict,
};

/// xoshiro256** seeded through SplitMix64.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fault {
    None,
    MedianPlus10,
    Errors3Percent,
    SlowTail,
}

fn arm(rng: &mut Rng, n: usize, fault: Fault) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let latency = (0..n)
        .map(|_| {
            let mut v = 20.0 * (0.5 * rng.normal()).exp();
            match fault {
                Fault::MedianPlus10 => v *= 1.10,
                Fault::SlowTail if rng.uniform() < 0.02 => v *= 10.0,
                _ => {}
            }
            v
        })
        .collect();
    let p_error = if fault == Fault::Errors3Percent {
        0.03
    } else {
        0.01
    };
    let errors = (0..n)
        .map(|_| (rng.uniform() < p_error) as u8 as f64)
        .collect();
    let size = (0..n)
        .map(|_| (5000.0 + 50.0 * rng.normal()).round())
        .collect();
    (latency, errors, size)
}

fn run(seed: u64, n: usize, fault: Fault) -> pipeline::canary::judge::Judgement {
    let mut rng = Rng::new(seed);
    let (bl, be, bs) = arm(&mut rng, n, Fault::None);
    let (cl, ce, cs) = arm(&mut rng, n, fault);
    let mut errors = MetricInput::new("error_rate", FailOn::Increase, be, ce);
    errors.critical = true;
    let input = JudgeInput {
        metrics: vec![
            MetricInput::new("latency_ms", FailOn::Increase, bl, cl),
            errors,
            MetricInput::new("response_bytes", FailOn::Decrease, bs, cs),
        ],
        unanswered: None,
    };
    judge(&input, &JudgeConfig::default()).expect("valid input")
}

fn release() -> bool {
    !cfg!(debug_assertions)
}

#[test]
fn a_a_runs_are_flagged_at_most_2_percent_of_the_time() {
    let (runs, n) = if release() {
        (1000, 10_000)
    } else {
        (200, 2_000)
    };
    let flagged: Vec<(u64, Verdict)> = (0..runs)
        .map(|r| (r, run(1_000_000 + r, n, Fault::None).verdict))
        .filter(|(_, v)| *v != Verdict::Pass)
        .collect();
    let rate = flagged.len() as f64 / runs as f64;
    eprintln!(
        "A/A: {} of {runs} runs at {n} per arm not PASS ({:.2}%): {flagged:?}",
        flagged.len(),
        rate * 100.0
    );
    assert!(rate <= 0.02, "A/A false-positive rate {rate} > 2%");
}

fn detection(fault: Fault, metric: &str, seed: u64) {
    let runs = if release() { 200 } else { 40 };
    let n = 10_000;
    let missed: Vec<u64> = (0..runs)
        .filter(|r| {
            let j = run(seed + r, n, fault);
            let m = j.metrics.iter().find(|m| m.name == metric).unwrap();
            m.classification != Classification::High || j.verdict == Verdict::Pass
        })
        .collect();
    let rate = 1.0 - missed.len() as f64 / runs as f64;
    eprintln!(
        "{fault:?}: detected in {:.1}% of {runs} runs at {n} per arm (missed seeds {missed:?})",
        rate * 100.0
    );
    assert!(rate >= 0.99, "{fault:?} detected in only {rate} of runs");
}

#[test]
fn median_latency_plus_10_percent_is_detected_in_99_percent_of_runs() {
    detection(Fault::MedianPlus10, "latency_ms", 2_000_000);
}

#[test]
fn error_rate_1_to_3_percent_is_detected_in_99_percent_of_runs() {
    detection(Fault::Errors3Percent, "error_rate", 3_000_000);
}

#[test]
fn two_percent_of_requests_10x_slower_is_detected_in_99_percent_of_runs() {
    detection(Fault::SlowTail, "latency_ms", 4_000_000);
}
