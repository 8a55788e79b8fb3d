"""Measuring: the machine (CPU, features, pressure, memory), honest timers, FLOP counts, matmul rates,
side-by-side comparisons and the pieces of a benchmark report.

Shared by the trainer's run records and the scripts under benchmarks/.
"""
