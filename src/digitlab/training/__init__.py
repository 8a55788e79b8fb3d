"""Training: device and precision, distributed set-up, building a session, the step loop, evaluation, fit."""
