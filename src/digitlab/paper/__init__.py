"""Su (2018): its experiments as grids of runs, the reproduction report, its figures and statistics."""
