"""Data: what digitlab trains and evaluates on.

idx.py        the IDX file format (MNIST's files): read, validate, write
known.py      the datasets recognised by checksum (MNIST and its drop-ins)
fetch.py      the fetch chain: a named folder, the cache, the HTTP mirrors, npm
dataset.py    datasets as tensors in memory: load, verify, split, normalise (a samples folder is one too)
samples_files.py  a person's samples folder read (the files store.samples writes): images and labels
matching.py   the test data a trained model may be evaluated on (its image size, classes, dataset)
batching.py   batches as slices of a seeded permutation
augment.py    batch augmentation on the training device (affine, elastic)
nondigits.py  non-digits (letters, shapes, scribbles, clothes) as ink planes, in train/validation/benchmark splits
pen.py        the pen that draws them, and the shapes and scribbles it draws
writers.py    simulated writers: each a consistent hand (a continental 1, a slant, a marker) drawing the digits
photo.py      ink on a page rendered as a phone photo of it (benchmarks, generated training data)
"""
