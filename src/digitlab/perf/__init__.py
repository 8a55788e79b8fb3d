"""Measuring: the machine (CPU, features, pressure, memory), honest timers, FLOP counts and matmul rates,
one training epoch timed (digitlab's trainer and the classic loop), side-by-side comparisons, and reports.

Shared by the trainer's run records and the scripts under benchmarks/.
"""
