"""The subcommands of `digitlab`, one module each. A module registers its parser (`register(commands)`, which
sets `run`) and holds `run(args)`: it reads the parsed flags and calls the job's own package.

options.py     options several subcommands share (--data-dir, --weights, --threads) and the command line
data.py        digitlab data: obtain and verify the dataset, print its statistics
models.py      digitlab models: the models with their parameter counts
recipes.py     digitlab recipes: the shipped recipes with their measured results
train.py       digitlab train: train a model, or --resume a run
evaluate.py    digitlab evaluate: a run's test accuracy, per-class figures, confusion matrix, calibration error
calibrate.py   digitlab calibrate: a run's temperature and "not a digit" threshold, fitted on its validation split
predict.py     digitlab predict: the digits in a person's image files, or MNIST test digits
read.py        digitlab read: the number (a line of digits) in each of a person's image files
reproduce.py   digitlab reproduce: the paper's tables and figure, then the report
report.py      digitlab report: a reproduction's or a study's report rebuilt
tune.py        digitlab tune: a hyperparameter search, the best retrained
compare.py     digitlab compare: runs side by side
export.py      digitlab export: a run's model as ONNX
serve.py       digitlab serve: the REST API and the draw-a-number page
samples.py     digitlab samples: a person's samples folder (labelled pictures of their writing)
adapt.py       digitlab adapt: a model fine-tuned on a person's samples, into a new run
"""

import importlib

# In the order `digitlab --help` lists them. A new subcommand: one module beside these, and its name here.
NAMES = (
    "data", "models", "recipes", "train", "evaluate", "calibrate", "predict", "read", "reproduce", "report", "tune",
    "compare", "export", "serve", "samples", "adapt",
)  # fmt: skip
COMMANDS = tuple(importlib.import_module(f"digitlab.commands.{name}") for name in NAMES)
