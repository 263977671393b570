//! e2e: deploy (not written yet).
