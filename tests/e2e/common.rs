//! e2e: common (not written yet).
