//! e2e: canary (not written yet).
