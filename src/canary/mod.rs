//! The canary engine: generating load ([`load`]), judging baseline against canary samples with statistics
//! ([`judge`]), and writing reports ([`report`]). Pure logic is kept apart from I/O so it can be unit-tested.

pub mod analyze;
pub mod cgroup;
pub mod example;
pub mod exec;
pub mod judge;
pub mod load;
pub mod metrics;
pub mod plan;
pub mod prometheus;
pub mod report;
pub mod run;
pub mod samples;
pub mod settings;
pub mod source;
pub mod world;
