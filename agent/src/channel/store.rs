//! The store channel: signed releases in an object store (being written).
