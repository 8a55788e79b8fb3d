"""A line of handwritten digits cut into its digits, left to right: the marks of an ink plane found, specks and
ruled lines dropped, marks too wide for one digit over-cut (inference.cutting: upright, along lowest-ink paths),
and the pieces grouped into digits by what the classifier reads best (recognition-based segmentation).

The work is in two halves so that a caller can classify the candidates of many images in one batch: pieces()
finds the line's pieces and every candidate digit (a run of consecutive pieces, `spans`), candidate() gives a
candidate's own ink (its neighbours masked out) for the model, and choose() picks, by dynamic programming, the
segmentation whose candidates score best in sum: each its best class's log probability, less penalties for a
shape no digit has (too wide, too short, empty columns inside, a width unusual for the class read: ASPECT,
measured on MNIST training digits), for a cut on its left that crossed more than one stroke (a digit cut in
two) and for separate marks standing apart (two digits read as one). groups() tells which digits read stand
apart from each other (predict's "several digits").

Holds the tuned constants (in units of the line's height H: the median height of its tall marks), the Line,
Piece and Marks records, marks (the line's marks before any is cut: predict asks no more of a picture of one
mark), pieces, candidate, box, choose, groups and the private helpers of the scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from digitlab.inference import cutting

SPECK = 0.2  # a mark whose height and width are both under this share of H is a speck (dust, a dot)
MEASURED = 3  # pixels: marks smaller than this do not count towards the line's slant
MAX_PIECES = 6  # a digit is at most this many consecutive pieces
MAX_WIDTH = 1.6  # and at most this many H wide
# choose()'s score of a candidate digit: its best class's log probability times SURE, plus BONUS, less WIDE per H of
# width beyond WIDEST H and GAP per H of empty columns inside it; a small mark (under SMALL H tall) may be skipped for
# SKIP.
# Tuned on `benchmarks/read_numbers.py --split train` with the shipped model fine-tuned on non-digits, which reads a
# fragment or a merged pair with little confidence: its doubt now outweighs the shape's penalties (SURE 8)
SURE = 8.0  # the model's doubt weighs this much against the shape's penalties
BONUS = 0.0
WIDE = 0.5
WIDEST = 1.3
SHORT, LOW = 10.0, 0.6  # less SHORT per H of height under LOW H: a digit stands as tall as the line
GAP = 4.0
CROSS = 0.5  # less CROSS per stroke beyond FREE_CROSS the cut on its left crossed (touching digits: one, mostly;
FREE_CROSS = 1  # a cut through one digit crosses two or more)
# less PRIOR * z^2 / 2 for its upright width over height z spreads beyond one from its best class's mean (ASPECT)
PRIOR = 0.25
JOIN = 1.0  # less JOIN per separate mark it holds, by how far apart they stand upright (_apart)
# MNIST training digits (20,000, ink above 80/255, each digit's own slant taken out): width / height, mean and
# spread per class 0-9; spreads count as at least ASPECT_FLOOR (a writer's slant is taken out only roughly)
ASPECT = (
    (0.889, 0.188),
    (0.279, 0.108),
    (0.928, 0.222),
    (0.752, 0.154),
    (0.784, 0.163),
    (0.830, 0.176),
    (0.723, 0.167),
    (0.775, 0.174),
    (0.694, 0.149),
    (0.680, 0.140),
)
ASPECT_FLOOR = 0.15
SPREADS = 1.0  # widths within this many spreads of the mean cost nothing
SMALL = 0.4
SKIP = -3.0  # dear enough with SURE 8 that a non-digit's small parts are not dropped to read one fragment confidently
APART = 0.1  # groups(): marks nearer than this share of H, upright, stand together
SOFT_EDGE = 2  # pixels of soft ink around the marks that go with the nearest piece


@dataclass(frozen=True)
class Piece:
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), x1 and y1 exclusive, in the plane's pixels
    columns: np.ndarray  # bool over x0..x1: which columns hold its ink
    crossed: int = 0  # strokes the cut on its left crossed (0: it begins a mark of its own)
    mark: int = 0  # the mark (connected ink) it is part of
    upright: tuple[float, float] = (0.0, 0.0)  # its ink's first and last column with the line's slant taken out


@dataclass
class Line:
    height: float  # H, pixels
    labels: np.ndarray  # int32 (H, W): the piece (1-based) each ink pixel, soft edges included, belongs to
    pieces: list[Piece]  # left to right (by the centre of their boxes)
    spans: list[tuple[int, int]]  # candidate digits: pieces[i:j]
    rules: int  # ruled lines taken away
    slant: float = 0.0  # columns to the right per row up: the hand's lean


@dataclass
class Marks:
    """A line's marks before any is cut: what pieces() begins with, and all that tells how many marks it has."""

    binary: np.ndarray  # the ink without its ruled lines
    labels: np.ndarray  # int32 (H, W): the mark (1-based) each ink pixel is part of
    boxes: list  # per mark, its (rows, cols) slices
    kept: list[int]  # the marks (0-based) that are not specks
    height: float  # H, pixels
    slant: float
    rules: int


def marks(binary: np.ndarray) -> Marks:
    """The marks of the ink `binary` (bool (H, W)), ruled lines taken away, and which of them are not specks
    (none kept if there is no ink)."""
    binary, rules = cutting.without_rules(binary)
    labels, count = ndimage.label(binary, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(labels)
    if count == 0:
        return Marks(binary, labels, boxes, [], 1.0, 0.0, rules)
    heights = np.array([s[0].stop - s[0].start for s in boxes], dtype=float)
    widths = np.array([s[1].stop - s[1].start for s in boxes], dtype=float)
    slant = cutting.slant(labels, [k + 1 for k in range(count) if max(heights[k], widths[k]) >= MEASURED])
    rough = cutting.line_height(heights)  # each mark on its own: a digit broken in two counts as two short ones
    height = _line_height(
        labels, boxes, slant, [k for k in range(count) if max(heights[k], widths[k]) >= SPECK * rough]
    )
    kept = [k for k in range(count) if max(heights[k], widths[k]) >= SPECK * height]
    return Marks(binary, labels, boxes, kept, height, slant, rules)


def pieces(binary: np.ndarray, found: Marks | None = None) -> Line:
    """The pieces of the ink `binary` (bool (H, W): ink above the paper's noise) and the candidate digits;
    a Line with no pieces if only specks are there. `found`: marks(binary), when the caller has it."""
    found = found or marks(binary)
    binary, boxes, height, slant = found.binary, found.boxes, found.height, found.slant
    if not found.kept:
        return Line(1.0, np.zeros(binary.shape, np.int32), [], [], found.rules)
    labels = np.zeros(binary.shape, dtype=np.int32)
    cuts: list[tuple[int, int]] = []  # per piece: strokes the cut on its left crossed, its mark
    for index in found.kept:
        rows, cols = boxes[index]
        mark = found.labels[rows, cols] == index + 1
        for part, crossed in cutting.cut(mark, height, slant):
            cuts.append((crossed, index))
            labels[rows, cols][part] = len(cuts)
    # the soft edges of the ink go with the nearest piece
    distance, (near_y, near_x) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    labels = np.where(distance <= SOFT_EDGE, labels[near_y, near_x], 0).astype(np.int32)
    made = []
    for (crossed, mark), (rows, cols) in zip(cuts, ndimage.find_objects(labels, max_label=len(cuts))):
        ink = labels[rows, cols] == len(made) + 1
        ys, xs = np.nonzero(ink)
        upright = xs + cols.start + slant * (ys + rows.start)  # a stroke leaning by `slant` is one column
        made.append(
            Piece(
                (cols.start, rows.start, cols.stop, rows.stop),
                ink.any(axis=0),
                crossed,
                mark,
                (float(upright.min()), float(upright.max())),
            )
        )
    order = sorted(range(len(made)), key=lambda k: made[k].box[0] + made[k].box[2])
    remap = np.zeros(len(made) + 1, dtype=np.int32)
    remap[[k + 1 for k in order]] = np.arange(1, len(made) + 1)
    line = Line(height, remap[labels], [made[k] for k in order], [], found.rules, slant)
    line.spans = _spans(line)
    return line


def _line_height(marks: np.ndarray, boxes: list, slant: float, kept: list[int]) -> float:
    """H: the median height of the line's digits, each the `kept` marks whose ink overlaps upright (a digit whose
    strokes broke apart counts once, at its full height), of those at least cutting.TALL of the tallest."""
    low, high = np.empty(len(kept)), np.empty(len(kept))
    for j, k in enumerate(kept):  # each mark within its own box: not a pass over the whole plane per mark
        rows, cols = boxes[k]
        ys, xs = np.nonzero(marks[rows, cols] == k + 1)
        upright = (xs + cols.start) + slant * (ys + rows.start)
        low[j], high[j] = upright.min(), upright.max()
    spans = []  # per group: [left, right, top, bottom]
    for j in np.argsort(low, kind="stable"):
        k = kept[j]
        top, bottom = boxes[k][0].start, boxes[k][0].stop
        if spans and low[j] <= spans[-1][1]:
            spans[-1] = [spans[-1][0], max(spans[-1][1], high[j]), min(spans[-1][2], top), max(spans[-1][3], bottom)]
        else:
            spans.append([low[j], high[j], top, bottom])
    return cutting.line_height(np.array([bottom - top for _, _, top, bottom in spans], dtype=float))


def candidate(line: Line, ink: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """The ink of pieces[i:j] alone (its neighbours' masked out), cropped to their box."""
    x0, y0, x1, y1 = box(line, span)
    own = (line.labels[y0:y1, x0:x1] > span[0]) & (line.labels[y0:y1, x0:x1] <= span[1])
    return np.where(own, ink[y0:y1, x0:x1], 0).astype(np.float32)


def box(line: Line, span: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around pieces[i:j], in the plane's pixels, x1 and y1 exclusive."""
    boxes = np.array([piece.box for piece in line.pieces[span[0] : span[1]]])
    return int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())


def choose(line: Line, log_probability: np.ndarray, classes: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The spans that read best as a whole, left to right: a dynamic programme over the pieces, each candidate
    digit scored by its best class's log probability (`log_probability[k]` for line.spans[k]), its shape and,
    given its best class (`classes[k]`), how usual its width is for that digit."""
    count = len(line.pieces)
    best = np.full(count + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int] | None] = [None] * (count + 1)
    ending: dict[int, list[int]] = {}
    for k, (_, j) in enumerate(line.spans):
        ending.setdefault(j, []).append(k)
    for j in range(1, count + 1):
        piece = line.pieces[j - 1]
        if piece.box[3] - piece.box[1] < SMALL * line.height and best[j - 1] + SKIP > best[j]:
            best[j], back[j] = best[j - 1] + SKIP, None  # a small mark alone is no digit: skipped
        for k in ending.get(j, []):
            i = line.spans[k][0]
            digit = None if classes is None else int(classes[k])
            score = best[i] + SURE * float(log_probability[k]) + _shape_score(line, line.spans[k], digit)
            if score > best[j]:
                best[j], back[j] = score, line.spans[k]
    chosen, j = [], count
    while j > 0:
        span = back[j]
        if span is None:
            j -= 1
            continue
        chosen.append(span)
        j = span[0]
    return chosen[::-1]


def groups(line: Line, spans: list[tuple[int, int]]) -> list[list[int]]:
    """The spans (indices into `spans`) in groups that stand apart: spans sharing a mark (a cut inside it), or
    whose upright ink overlaps or comes within APART H of another's, are one group. Left to right."""
    extents = []
    for span in spans:
        pieces = line.pieces[span[0] : span[1]]
        marks = {piece.mark for piece in pieces}
        low, high = min(p.upright[0] for p in pieces), max(p.upright[1] for p in pieces)
        extents.append((low, high, marks))
    order = sorted(range(len(spans)), key=lambda k: extents[k][0])
    found: list[list[int]] = []
    reach, marks = -np.inf, set()
    for k in order:
        low, high, own = extents[k]
        if found and (low <= reach + APART * line.height or own & marks):
            found[-1].append(k)
            reach, marks = max(reach, high), marks | own
        else:
            found.append([k])
            reach, marks = high, set(own)
    return found


def _shape_score(line: Line, span: tuple[int, int], digit: int | None = None) -> float:
    x0, y0, x1, y1 = box(line, span)
    prior = 0.0
    if digit is not None and 0 <= digit < len(ASPECT):
        mean, spread = ASPECT[digit]
        beyond = max(0.0, abs(_upright_width(line, span) / (y1 - y0) - mean) / max(spread, ASPECT_FLOOR) - SPREADS)
        prior = -PRIOR * 0.5 * beyond**2
    cut = CROSS * max(0, line.pieces[span[0]].crossed - FREE_CROSS) + JOIN * _apart(line, span)
    covered = np.zeros(x1 - x0, dtype=bool)
    for piece in line.pieces[span[0] : span[1]]:
        covered[piece.box[0] - x0 : piece.box[2] - x0] |= piece.columns
    empty = float((~covered).sum()) / line.height
    short = SHORT * max(0.0, LOW - (y1 - y0) / line.height)
    return BONUS + prior - cut - WIDE * max(0.0, (x1 - x0) / line.height - WIDEST) - GAP * empty - short


def _apart(line: Line, span: tuple[int, int]) -> float:
    """How far apart, upright, the separate marks in a span stand: per neighbouring pair, 1 less the share of the
    narrower one's width the two share (a 5's bar over its body: near 0; two digits side by side: 1 or more)."""
    extents: dict[int, list[float]] = {}
    for piece in line.pieces[span[0] : span[1]]:
        low, high = extents.get(piece.mark, [np.inf, -np.inf])
        extents[piece.mark] = [min(low, piece.upright[0]), max(high, piece.upright[1])]
    if len(extents) < 2:
        return 0.0
    ordered = sorted(extents.values())
    apart = 0.0
    for (a0, a1), (b0, b1) in zip(ordered, ordered[1:]):
        shared = min(a1, b1) - max(a0, b0)
        apart += max(0.0, 1.0 - shared / max(1.0, min(a1 - a0, b1 - b0)))
    return apart


def _upright_width(line: Line, span: tuple[int, int]) -> float:
    """The span's ink width with the line's slant taken out, pixels."""
    x0, y0, x1, y1 = box(line, span)
    own = line.labels[y0:y1, x0:x1]
    rows, cols = np.nonzero((own > span[0]) & (own <= span[1]))
    upright = cols - line.slant * (rows.max() - rows)
    return float(upright.max() - upright.min() + 1)


def _spans(line: Line) -> list[tuple[int, int]]:
    spans = []
    for i in range(len(line.pieces)):
        for j in range(i + 1, min(len(line.pieces), i + MAX_PIECES) + 1):
            x0, _, x1, _ = box(line, (i, j))
            if j == i + 1 or x1 - x0 <= MAX_WIDTH * line.height:
                spans.append((i, j))
    return spans
