"""Everything a run leaves on disk: atomic files, the checkpoint format, the run directory, resuming."""
