"""Benchmarks: ``python -m bench [NAME ...]`` (``make bench``, ``make bench B=NAME``).

Each benchmark measures the product and, in the same run, a baseline it can be compared with,
so its ratios mean something on any machine. Results are printed as a table and written to
``bench/results/NAME.json`` (see :mod:`bench.harness`).
"""
