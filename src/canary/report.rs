//! Canary reports: not built yet.
