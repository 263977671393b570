//! e2e: monitor (not written yet).
