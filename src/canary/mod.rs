//! The canary engine (load, metrics, judge, report): not built yet (issue "native canary engine").
