//! The statistical judge: not built yet.
