"""Everything a run leaves on disk, and reading it back. One module per job:

files.py          atomic files and JSON-lines records: a reader sees the old file or the whole new one
checkpoint.py     the checkpoint format: safetensors tensors, JSON metadata, random states; listing, loading
rundir.py         one run directory's files: creating it, its weights, whether it has finished
lock.py           a run directory's lock: one process at a time trains in it
resume.py         cutting a run's records back to the checkpoint it resumes from (tidy)
events.py         TensorBoard event files beside the JSON-lines records, where tensorboard is installed
compared_runs.py  several run directories read side by side for `digitlab compare`
samples.py        a person's samples folder: labelled pictures of their writing, added and removed atomically
"""
