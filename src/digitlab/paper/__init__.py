"""Su (2018) reproduced: its experiments as grids of runs, the report, its figures and statistics. One module each:

grid.py        the experiments as grids of TrainConfigs (cells), planned without touching a file
manifest.py    OUT/reproduce.json: what every command run into OUT planned, merged under a lock
cells.py       the cells trained into run directories, resumed, sharded, retimed: `reproduce`'s work
contention.py  timings taken under CPU contention: marked in the report, moved aside by --retime
report.py      REPORT.md, figures, CSV and JSON built from the cells alone (`digitlab report`)
sections.py    the report's sections: each table and Figure 3 beside the paper's numbers (tables.json)
plots.py       the report's figures (matplotlib)
stats.py       statistics over seeds: means, confidence intervals, paired tests
"""
