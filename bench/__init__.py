"""Benchmark worlds (synthetic clusters), micro-benchmarks and the end-to-end load benchmark."""
