"""Benchmark worlds (synthetic clusters), micro-benchmarks and the end-to-end load benchmark.

- ``worlds.py``    synthetic clusters shaped like real ones (small / medium / large), as
  manifest dicts validated through ``parse_object``, and written as YAML for the CLI;
- ``flowmix.py``   flow mixes over any world: a realistic log (Zipf-like repetition) and
  uniform random flows;
- ``test_micro.py`` pytest-benchmark micro-benchmarks (``pytest bench/ --benchmark-enable``);
  they are outside ``testpaths`` so the default ``pytest`` run never executes them.

Each benchmark asserts the size of the world it built (STYLE.md 12): a figure is
only meaningful next to the size it was measured at.
"""
