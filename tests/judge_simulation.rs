//! Seeded simulations of the judge's error rates with the default settings (98 % confidence, Holm):
//! - A/A (both arms from one distribution): at most 2 % of runs may end in anything but PASS;
//! - at 10,000 samples per arm, each fault must be detected (its metric High, verdict not PASS) in ≥ 99 %
//!   of runs: median latency +10 %, 5xx rate 1 % → 3 %, 2 % of requests 10× slower.
//!
//! A run holds the default canary metrics: latency (log-normal, median 20 ms, σ_log 0.5), error rate
//! (0/1, 1 %), response size (normal around 5 kB, decrease fails). Every run draws from a SplitMix64/xoshiro
//! generator seeded by the scenario and run number, so results never change between machines or runs.
//!
//! Sequential (20 looks over a 60 s window, samples spread evenly): A/A ≤ 2 % not PASS; each standard
//! fault detected in ≥ 99 % of runs with the median stop at most half the window; a canary answering only
//! 5xx FAILs at the first look with min_samples per arm. Shape: a bimodal change with the same median and
//! p99 detected in ≥ 95 % of runs. Power: the MDE shrinks like 1/√n.
//!
//! Sizes: `cargo test` (debug) runs 200 A/A runs at 2,000 per arm and 40 runs per fault at 10,000 per arm
//! (sequential: 40 A/A runs at 1,000 per arm, 20 per fault); the release run in scripts/test.sh
//! (`cargo test --release --test judge_simulation`) runs 1,000 A/A runs and 200 runs per fault, all at
//! 10,000 per arm (sequential: 500 A/A runs, 200 per fault; shape: 200 runs).

use pipeline::canary::judge::{
    judge, sequential, Classification, FailOn, JudgeConfig, JudgeInput, MetricInput, Verdict,
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
    /// Every canary request answers 5xx.
    AllErrors,
    /// Same median and p99, bimodal shape: half ×e^−0.4, half ×e^0.4 of a log-normal with σ_log 0.372.
    Bimodal,
    MedianPlus10,
    Errors3Percent,
    SlowTail,
}

fn arm(rng: &mut Rng, n: usize, fault: Fault) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let latency = (0..n)
        .map(|_| {
            let mut v = 20.0 * (0.5 * rng.normal()).exp();
            if fault == Fault::Bimodal {
                let mode = if rng.uniform() < 0.5 { -0.4 } else { 0.4 };
                v = 20.0 * (mode + BIMODAL_SIGMA * rng.normal()).exp();
            }
            match fault {
                Fault::MedianPlus10 => v *= 1.10,
                Fault::SlowTail if rng.uniform() < 0.02 => v *= 10.0,
                _ => {}
            }
            v
        })
        .collect();
    let p_error = match fault {
        Fault::Errors3Percent => 0.03,
        Fault::AllErrors => 1.0,
        _ => 0.01,
    };
    let errors = (0..n)
        .map(|_| (rng.uniform() < p_error) as u8 as f64)
        .collect();
    let size = (0..n)
        .map(|_| (5000.0 + 50.0 * rng.normal()).round())
        .collect();
    (latency, errors, size)
}

/// σ_log of the bimodal fault's components: 0.5·Φ((z99·0.5 + 0.4)/σ) + 0.5·Φ((z99·0.5 − 0.4)/σ) = 0.99,
/// so the p99 (and, by symmetry, the median) stays where the baseline's is.
const BIMODAL_SIGMA: f64 = 0.372;

fn input(seed: u64, n: usize, fault: Fault) -> JudgeInput {
    let mut rng = Rng::new(seed);
    let (bl, be, bs) = arm(&mut rng, n, Fault::None);
    let (cl, ce, cs) = arm(&mut rng, n, fault);
    let mut errors = MetricInput::new("error_rate", FailOn::Increase, be, ce);
    errors.critical = true;
    JudgeInput {
        metrics: vec![
            MetricInput::new("latency_ms", FailOn::Increase, bl, cl),
            errors,
            MetricInput::new("response_bytes", FailOn::Decrease, bs, cs),
        ],
        unanswered: None,
    }
}

fn run(seed: u64, n: usize, fault: Fault) -> pipeline::canary::judge::Judgement {
    judge(&input(seed, n, fault), &JudgeConfig::default()).expect("valid input")
}

/// The window of the sequential simulations and the time between looks: 20 looks.
const WINDOW_S: f64 = 60.0;
const LOOK_EVERY_S: f64 = 3.0;

/// `input` with the samples of each arm spread evenly over the window (sample i at (i + 1)·W/n).
fn timed(seed: u64, n: usize, fault: Fault) -> JudgeInput {
    let mut input = input(seed, n, fault);
    let times: Vec<f64> = (0..n)
        .map(|i| (i + 1) as f64 * WINDOW_S / n as f64)
        .collect();
    for m in &mut input.metrics {
        m.baseline_time_s = Some(times.clone());
        m.canary_time_s = Some(times.clone());
    }
    input
}

fn sequential_run(seed: u64, n: usize, fault: Fault) -> pipeline::canary::judge::Judgement {
    sequential::replay(
        &timed(seed, n, fault),
        &JudgeConfig::default(),
        LOOK_EVERY_S,
        true,
    )
    .expect("valid input")
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

#[test]
fn sequential_a_a_over_20_looks_ends_in_pass_in_at_least_98_percent_of_runs() {
    let (runs, n) = if release() {
        (500, 10_000)
    } else {
        (40, 1_000)
    };
    let mut flagged = Vec::new();
    for r in 0..runs {
        let j = sequential_run(5_000_000 + r, n, Fault::None);
        let s = j.sequential.as_ref().unwrap();
        if !s.stopped_early {
            assert_eq!(s.looks.len(), 20, "20 looks over the window");
        }
        if j.verdict != Verdict::Pass {
            flagged.push((r, j.verdict, s.stopped_at_s));
        }
    }
    let rate = flagged.len() as f64 / runs as f64;
    eprintln!(
        "sequential A/A: {} of {runs} runs at {n} per arm, 20 looks, not PASS ({:.2}%): {flagged:?}",
        flagged.len(),
        rate * 100.0
    );
    if release() {
        // The requirement: at most α = 2 % of A/A runs end in anything but PASS.
        assert!(
            rate <= 0.02,
            "sequential A/A false-positive rate {rate} > 2%"
        );
    } else {
        // 40 runs cannot resolve 2 %: at a true rate of 2 %, 2 of 40 happens one time in five. Fail only on
        // a count that is implausible at 2 % (P(X ≥ 5 | n = 40, p = 0.02) ≈ 0.0008); the release run checks 2 %.
        assert!(
            flagged.len() <= 4,
            "sequential A/A: {} of {runs} runs not PASS, implausible at a 2 % rate",
            flagged.len()
        );
    }
}

fn sequential_detection(fault: Fault, metric: &str, seed: u64) {
    let runs = if release() { 200 } else { 20 };
    let n = 10_000;
    let mut missed = Vec::new();
    let mut stops = Vec::new();
    for r in 0..runs {
        let j = sequential_run(seed + r, n, fault);
        let m = j.metrics.iter().find(|m| m.name == metric).unwrap();
        if m.classification != Classification::High || j.verdict == Verdict::Pass {
            missed.push(r);
        }
        stops.push(j.sequential.unwrap().stopped_at_s);
    }
    stops.sort_by(f64::total_cmp);
    let median = stops[stops.len() / 2];
    let rate = 1.0 - missed.len() as f64 / runs as f64;
    eprintln!(
        "sequential {fault:?}: detected in {:.1}% of {runs} runs at {n} per arm (missed {missed:?}); stopped at median {median} s of {WINDOW_S} s (min {}, max {})",
        rate * 100.0,
        stops[0],
        stops[stops.len() - 1]
    );
    assert!(rate >= 0.99, "{fault:?} detected in only {rate} of runs");
    assert!(median <= WINDOW_S / 2.0, "median stop {median} s");
}

#[test]
fn sequential_median_plus_10_percent_stops_early_and_is_detected() {
    sequential_detection(Fault::MedianPlus10, "latency_ms", 6_000_000);
}

#[test]
fn sequential_error_rate_1_to_3_percent_stops_early_and_is_detected() {
    sequential_detection(Fault::Errors3Percent, "error_rate", 7_000_000);
}

#[test]
fn sequential_slow_tail_stops_early_and_is_detected() {
    sequential_detection(Fault::SlowTail, "latency_ms", 8_000_000);
}

#[test]
fn a_canary_answering_only_5xx_fails_at_the_first_look_with_min_samples() {
    // 600 per arm over 60 s: 50 per arm at the first look (5 s).
    for r in 0..20 {
        let mut input = input(9_000_000 + r, 600, Fault::AllErrors);
        let times: Vec<f64> = (0..600).map(|i| (i + 1) as f64 * 0.1).collect();
        for m in &mut input.metrics {
            m.baseline_time_s = Some(times.clone());
            m.canary_time_s = Some(times.clone());
        }
        let j = sequential::replay(&input, &JudgeConfig::default(), 5.0, true).unwrap();
        let s = j.sequential.as_ref().unwrap();
        assert_eq!(j.verdict, Verdict::Fail, "{}", j.reason);
        assert_eq!(s.looks.len(), 1);
        assert_eq!((s.looks[0].n.baseline, s.looks[0].n.canary), (50, 50));
        assert_eq!(s.stopped_at_s, 5.0);
        assert!(s.stopped_early);
    }
}

#[test]
fn bimodal_shape_change_with_same_median_and_p99_is_detected_in_95_percent_of_runs() {
    let runs = if release() { 200 } else { 20 };
    let n = 10_000;
    let missed: Vec<u64> = (0..runs)
        .filter(|r| {
            let j = run(10_000_000 + r, n, Fault::Bimodal);
            let m = j.metrics.iter().find(|m| m.name == "latency_ms").unwrap();
            m.classification != Classification::High
                || j.verdict == Verdict::Pass
                || !m.shapes.iter().any(|s| s.flagged)
        })
        .collect();
    let rate = 1.0 - missed.len() as f64 / runs as f64;
    eprintln!(
        "bimodal shape: detected in {:.1}% of {runs} runs at {n} per arm (missed {missed:?})",
        rate * 100.0
    );
    assert!(rate >= 0.95, "shape change detected in only {rate} of runs");
    // And it really is invisible to the location and tail tests.
    let j = run(10_000_000, n, Fault::Bimodal);
    let m = j.metrics.iter().find(|m| m.name == "latency_ms").unwrap();
    assert!(!m.tails.iter().any(|t| t.flagged));
}

#[test]
fn minimum_detectable_effect_shrinks_like_one_over_root_n() {
    let mde = |n: usize| {
        let j = run(11_000_000, n, Fault::None);
        let m = j.metrics.iter().find(|m| m.name == "latency_ms").unwrap();
        m.power.as_ref().unwrap().mde.unwrap()
    };
    let (a, b) = (mde(2_500), mde(10_000));
    // Relative MDE on the log scale: ln(1 + mde) ∝ 1/√n, so 4× the samples halve it.
    let ratio = (1.0 + a).ln() / (1.0 + b).ln();
    eprintln!("MDE at 2,500 per arm {a:.4}, at 10,000 {b:.4}, ratio of log effects {ratio:.3}");
    assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
}

/// CPU time of this process so far (all threads, user + system), seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes one struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut u) }, 0);
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Benchmark, not a timed assertion (run by `scripts/bench-judge.sh`): the cost of one interim look of a
/// live canary with 100,000 samples per arm of the default metrics (latency, error rate, response size),
/// i.e. the 20th look of a 20-look window: cutting the samples at the look's time
/// ([`sequential::truncate`], as the canary does) plus [`sequential::SequentialJudge::look`] after 19 earlier
/// looks. Prints the median and range of wall and CPU time (all threads) over `JUDGE_BENCH_ROUNDS` rounds
/// (default 11); on a shared machine the CPU time is the comparable figure.
#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn benchmark_one_sequential_look_on_100k_samples_per_arm() {
    let n = 100_000;
    let rounds: usize = std::env::var("JUDGE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let full = timed(12_000_000, n, Fault::None);
    let config = JudgeConfig::default();
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut judge = sequential::SequentialJudge::new(&full, &config, LOOK_EVERY_S).unwrap();
        for k in 1..=20 {
            let t = k as f64 * LOOK_EVERY_S;
            let (started, cpu) = (std::time::Instant::now(), cpu_seconds());
            let upto = sequential::truncate(&full, t);
            let j = judge.look(t, &upto, false).unwrap();
            let took = (
                started.elapsed().as_secs_f64() * 1e3,
                (cpu_seconds() - cpu) * 1e3,
            );
            assert_eq!(j.metrics[0].baseline.n, k * n / 20);
            match k {
                1 => first.push(took),
                20 => last.push(took),
                _ => {}
            }
        }
    }
    let show = |name: &str, v: &[(f64, f64)]| {
        let mut wall: Vec<f64> = v.iter().map(|t| t.0).collect();
        let mut cpu: Vec<f64> = v.iter().map(|t| t.1).collect();
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        eprintln!(
            "{name}: wall median {:.1} ms (min {:.1}, max {:.1}); CPU median {:.1} ms (min {:.1}, max {:.1}); {rounds} rounds",
            wall[rounds / 2],
            wall[0],
            wall[rounds - 1],
            cpu[rounds / 2],
            cpu[0],
            cpu[rounds - 1]
        );
    };
    show("look 1 of 20 (5,000 per arm)", &first);
    show("look 20 of 20 (100,000 per arm)", &last);
}
