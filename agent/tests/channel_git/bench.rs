//! Benchmarks (ignored by default): what an idle poll costs on the wire.
