//! Benchmarks for the NATS stack; the benches live in `benches/`.
