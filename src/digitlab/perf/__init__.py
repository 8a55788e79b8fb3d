"""Measuring: what a number was measured on, how long it took and what it should have taken.

  machine.py           the machine: CPU model, features and kernels, cores, CPU pressure and stall, memory, versions
  timer.py             honest clocks: synchronize(), a Stopwatch that can pause, Timer for one timed block
  flops.py             one epoch's training FLOPs, counted from a built model's sizes
  matmul.py            the machine's measured matmul rate per dtype, and the FLOP floor a timing is held against
  compare.py           side-by-side timings of several ways of doing the same work, run in turn, by median
  benchmark_report.py  the pieces of a benchmark report: progress lines, the machine header, Markdown tables

Shared by the trainer's run records and the scripts under benchmarks/.
"""
