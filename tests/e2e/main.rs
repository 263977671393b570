//! End-to-end tests on local sandbox hosts (systemd-nspawn containers): real ansible-playbook over SSH.
//!
//! They need root and take minutes, so every test here is `#[ignore]`d and run by `scripts/e2e.sh`
//! (`cargo test --release --test e2e -- --ignored --test-threads=1 MODULE:: …`, in two groups of modules
//! side by side, on environments of their own). Hosts are built once per suite and shared between the
//! tests of a module, or of several, through `common`; the tests of a module run in their names' order.

// The helpers shared with the loopback crate (tests/it): this crate uses only the browser and HTTP parts.
#[allow(dead_code)]
#[path = "../shared/mod.rs"]
mod shared;

mod canary;
mod canary_signals;
mod common;
mod demo_signals;
mod deploy;
mod fleet;
mod monitor;
mod rollout;
mod rollout_itrust;
mod sandbox;
