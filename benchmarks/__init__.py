"""Benchmark harness: parameter counts and latency per 100 images (installed as lrgan_edge.benchmarks)."""
