"""Measuring: the machine (CPU, features, pressure, memory), honest timers, and FLOP counts.

Shared by the trainer's run records and the scripts under benchmarks/.
"""
