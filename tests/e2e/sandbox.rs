//! e2e: sandbox (not written yet).
