//! The loopback integration tests, one crate (one link, one binary): a module per area, the shared
//! harness in `support/` (the binary builder, the fake DigitalOcean API) and the helpers the end-to-end
//! crate uses too in `tests/shared/` (headless-Chromium driver, HTTP GET, test artifacts). Filter by module:
//! `cargo test --test it load::`. The root-only end-to-end tests are the other crate, `tests/e2e/`; the
//! full-size judge simulations are `tests/judge_simulation.rs` (run in release by scripts/test.sh).

#[path = "../shared/mod.rs"]
mod shared;
mod support;

mod analyze;
mod analyze_prometheus;
mod canary_cgroup;
mod cli_help;
mod deploy;
mod deploy_rolling;
mod front_door;
mod layering;
mod load;
mod monitor_dashboard;
mod monitor_playbook;
mod preview_service;
mod prod_digitalocean;
mod prod_digitalocean_errors;
mod prod_digitalocean_faults;
mod prod_digitalocean_fleet;
mod report_browser;
mod rollout;
mod rollout_digitalocean;
mod rollout_front_door;
mod rollout_itrust;
mod rollout_load;
mod rollout_prometheus;
mod rollout_report;
mod rollout_scrape;
mod security;
mod signals;
