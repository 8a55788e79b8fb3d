"""Training: from a config to a finished run directory. One module per job:

checkpointing.py  writing a session's checkpoint and resuming from one, on every DDP process
device.py         the device, threads, determinism, precision (autocast) and seeding
distributed.py    DistributedDataParallel set-up for torchrun, and the collectives the trainer uses
ema.py            the weights' exponential moving average (--ema-decay)
epoch_pass.py     one pass over an epoch around its steps: batches, divergence check and undo, the clock,
                  the mid-epoch evaluation, checkpoint and stop, the step rows
evaluate.py       loss, accuracy and predictions over a split; the confusion matrix
fit.py            fit(): one run, epoch after epoch, its hooks and validation evaluations, its finished files
guard.py          whether each step was sound, read at once or every --check-every steps
loop.py           train_epoch, the step loop: forward, loss, backward, step (the only backward() and step())
metrics.py        the epoch's row, validation rows, the test evaluation, time-to-target
session.py        Session and Position, and building them from a config (resolve_config, build_session)
stop.py           Ctrl-C and SIGTERM as stop requests, and the error a stopped run ends with
"""
