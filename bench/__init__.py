"""Benchmarks: `make bench` (python -m bench) runs them all and writes bench/results.json.

Figures are ratios measured in one run on one machine (the run records which), never absolute targets in tests.
"""
