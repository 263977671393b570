//! Load generation: not built yet.
