//! The lifecycle of an environment's sandbox hosts, one file per [`crate::providers::Provider`] step:
//! [`up`] (create or adopt), [`wait`] (until booted and answering SSH) and [`down`] (remove named hosts,
//! or destroy the environment).

mod down;
mod up;
mod wait;
