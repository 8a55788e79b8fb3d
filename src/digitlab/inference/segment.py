"""A line of handwritten digits cut into its digits, left to right: the marks of an ink plane found, specks and
ruled lines dropped, marks too wide for one digit cut along their lowest-ink paths, and the pieces grouped into
digits by what the classifier reads best (recognition-based segmentation).

The work is in two halves so that a caller can classify the candidates of many images in one batch: pieces()
finds the line's pieces and every candidate digit (a run of consecutive pieces, `spans`), candidate() gives a
candidate's own ink (its neighbours masked out) for the model, and choose() picks, from the classifier's log
probability of each candidate's best class, the segmentation that reads best as a whole.

Holds the tuned constants (in units of the line's height H: the median height of its tall marks), the Line
and Piece records, pieces, candidate, choose and the private helpers for ruled lines, cuts and run lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SPECK = 0.2  # a mark whose height and width are both under this share of H is a speck (dust, a dot)
TALL = 0.5  # marks at least this share of the tallest one's height measure the line's height
RULE_RUN = 0.25  # a horizontal run longer than this share of the image's width may be a ruled line...
RULE_LENGTH = 2.5  # ...and is one if it is at least this many H long
RULE_THICKNESS = 0.25  # and at most this share of H thick
SPLIT = 0.9  # a mark wider than this share of H may hold touching digits: cut candidates are made in it
CUT_MARGIN = 0.2  # no cut nearer than this share of H to a mark's side, or to another cut
CUTS_PER_H = 4  # at most this many cuts per H of a mark's width
SLIVER = 0.4  # a cut-off part shorter than this share of H joins its neighbour
DIAGONAL = 0.3  # a cutting path's cost for a sideways step, against 1 for each ink pixel it crosses
MAX_PIECES = 4  # a digit is at most this many consecutive pieces
MAX_WIDTH = 1.6  # and at most this many H wide
# choose()'s score of a candidate digit: its best class's log probability, plus BONUS, less WIDE per H of width
# beyond 1.1 H and GAP per H of empty columns inside it; a small mark (under SMALL H tall) may be skipped for SKIP
BONUS = 0.0
WIDE = 2.0
SHORT, LOW = 10.0, 0.6  # less SHORT per H of height under LOW H: a digit stands as tall as the line
GAP = 4.0
SMALL = 0.4
SKIP = -1.0
SOFT_EDGE = 2  # pixels of soft ink around the marks that go with the nearest piece


@dataclass(frozen=True)
class Piece:
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), x1 and y1 exclusive, in the plane's pixels
    columns: np.ndarray  # bool over x0..x1: which columns hold its ink


@dataclass
class Line:
    height: float  # H, pixels
    labels: np.ndarray  # int32 (H, W): the piece (1-based) each ink pixel, soft edges included, belongs to
    pieces: list[Piece]  # left to right (by the centre of their boxes)
    spans: list[tuple[int, int]]  # candidate digits: pieces[i:j]
    rules: int  # ruled lines taken away


def pieces(binary: np.ndarray) -> Line:
    """The pieces of the ink `binary` (bool (H, W): ink above the paper's noise) and the candidate digits;
    a Line with no pieces if only specks are there."""
    binary, rules = _without_rules(binary)
    marks, count = ndimage.label(binary, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(marks)
    heights = np.array([s[0].stop - s[0].start for s in boxes], dtype=float)
    widths = np.array([s[1].stop - s[1].start for s in boxes], dtype=float)
    if count == 0:
        return Line(1.0, np.zeros(binary.shape, np.int32), [], [], rules)
    height = _line_height(heights)
    labels = np.zeros(binary.shape, dtype=np.int32)
    found: list[tuple[int, int, int, int]] = []
    for index, (rows, cols) in enumerate(boxes):
        if max(heights[index], widths[index]) < SPECK * height:
            continue
        mark = marks[rows, cols] == index + 1
        for part in _cut(mark, height):
            found.append((rows.start, cols.start, len(found) + 1, 0))
            labels[rows, cols][part] = len(found)
    # the soft edges of the ink go with the nearest piece
    distance, (near_y, near_x) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    labels = np.where(distance <= SOFT_EDGE, labels[near_y, near_x], 0).astype(np.int32)
    made = []
    for box in ndimage.find_objects(labels, max_label=len(found)):
        rows, cols = box
        ink = labels[rows, cols] > 0
        made.append(Piece((cols.start, rows.start, cols.stop, rows.stop), ink.any(axis=0)))
    order = sorted(range(len(made)), key=lambda k: made[k].box[0] + made[k].box[2])
    remap = np.zeros(len(made) + 1, dtype=np.int32)
    remap[[k + 1 for k in order]] = np.arange(1, len(made) + 1)
    line = Line(height, remap[labels], [made[k] for k in order], [], rules)
    line.spans = _spans(line)
    return line


def candidate(line: Line, ink: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """The ink of pieces[i:j] alone (its neighbours' masked out), cropped to their box."""
    x0, y0, x1, y1 = box(line, span)
    own = (line.labels[y0:y1, x0:x1] > span[0]) & (line.labels[y0:y1, x0:x1] <= span[1])
    return np.where(own, ink[y0:y1, x0:x1], 0).astype(np.float32)


def box(line: Line, span: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around pieces[i:j], in the plane's pixels, x1 and y1 exclusive."""
    boxes = np.array([piece.box for piece in line.pieces[span[0] : span[1]]])
    return int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())


def choose(line: Line, log_probability: np.ndarray) -> list[tuple[int, int]]:
    """The spans that read best as a whole, left to right: a dynamic programme over the pieces, each candidate
    digit scored by its best class's log probability (`log_probability[k]` for line.spans[k]) and its shape."""
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
            score = best[i] + float(log_probability[k]) + _shape_score(line, line.spans[k])
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


def _shape_score(line: Line, span: tuple[int, int]) -> float:
    x0, y0, x1, y1 = box(line, span)
    covered = np.zeros(x1 - x0, dtype=bool)
    for piece in line.pieces[span[0] : span[1]]:
        covered[piece.box[0] - x0 : piece.box[2] - x0] |= piece.columns
    empty = float((~covered).sum()) / line.height
    short = SHORT * max(0.0, LOW - (y1 - y0) / line.height)
    return BONUS - WIDE * max(0.0, (x1 - x0) / line.height - 1.1) - GAP * empty - short


def _spans(line: Line) -> list[tuple[int, int]]:
    spans = []
    for i in range(len(line.pieces)):
        for j in range(i + 1, min(len(line.pieces), i + MAX_PIECES) + 1):
            x0, _, x1, _ = box(line, (i, j))
            if j == i + 1 or x1 - x0 <= MAX_WIDTH * line.height:
                spans.append((i, j))
    return spans


def _line_height(heights: np.ndarray) -> float:
    """H: the median height of the marks at least TALL of the tallest (a digit's detached bar does not count)."""
    return float(np.median(heights[heights >= TALL * heights.max()]))


def _without_rules(binary: np.ndarray) -> tuple[np.ndarray, int]:
    """`binary` without its ruled lines (long thin horizontal marks), kept where a digit's stroke crosses one:
    (the ink left, how many lines were taken away)."""
    long_runs = _long_runs(binary, max(8, round(RULE_RUN * binary.shape[1])))
    if not long_runs.any():
        return binary, 0
    rest = binary & ~long_runs
    marks, count = ndimage.label(rest, structure=np.ones((3, 3)))
    if count == 0:
        return binary, 0
    heights = np.array([s[0].stop - s[0].start for s in ndimage.find_objects(marks)], dtype=float)
    height = _line_height(heights[heights >= 3] if (heights >= 3).any() else heights)
    runs, found = ndimage.label(long_runs, structure=np.ones((3, 3)))
    removed = np.zeros_like(binary)
    taken = 0
    for index, (rows, cols) in enumerate(ndimage.find_objects(runs)):
        own = runs[rows, cols] == index + 1
        length, thick = cols.stop - cols.start, float(own.sum()) / (cols.stop - cols.start)  # its mean thickness
        if length >= RULE_LENGTH * height and thick <= max(2, RULE_THICKNESS * height):
            removed[rows, cols] |= runs[rows, cols] == index + 1
            taken += 1
    if not taken:
        return binary, 0
    # where a stroke crosses the line, ink lies just above and just below it: the line's pixels there stay
    reach = max(2, round(RULE_THICKNESS * height))
    other = binary & ~removed
    counts = np.concatenate([np.zeros((1, other.shape[1]), np.int32), np.cumsum(other, axis=0, dtype=np.int32)])
    rows = np.arange(other.shape[0])
    above = (counts[rows] - counts[np.maximum(rows - reach, 0)]) > 0  # ink in the `reach` rows above
    below = (counts[np.minimum(rows + 1 + reach, other.shape[0])] - counts[rows + 1]) > 0  # and below
    crossing = ndimage.binary_closing(other | (removed & above & below), structure=np.ones((3, 1)))
    return other | (removed & crossing), taken


def _long_runs(binary: np.ndarray, length: int) -> np.ndarray:
    """The pixels of `binary` in horizontal runs of at least `length` (a row step up or down is bridged)."""
    bridged = binary | np.roll(binary, 1, axis=0) | np.roll(binary, -1, axis=0)
    padded = np.pad(bridged, ((0, 0), (1, 1))).astype(np.int8).ravel()
    change = np.diff(padded)
    starts, ends = np.flatnonzero(change == 1), np.flatnonzero(change == -1)
    keep = ends - starts >= length
    marker = np.zeros(padded.size + 1, dtype=np.int32)
    np.add.at(marker, starts[keep], 1)
    np.add.at(marker, ends[keep], -1)
    inside = np.cumsum(marker)[: padded.size].reshape(binary.shape[0], binary.shape[1] + 2)[:, 1:-1] > 0
    return inside & binary


def _cut(mark: np.ndarray, height: float) -> list[np.ndarray]:
    """A mark (bool, its box) as pieces: cut along its lowest-ink top-to-bottom paths when it is wider than SPLIT H."""
    rows, width = mark.shape
    if width <= SPLIT * height:
        return [mark]
    # cost[r, x]: the least ink a path from the top row to (r, x) crosses, moving down one row at a time
    ink = mark.astype(np.float32)
    cost = ink[0].copy()
    step = np.zeros((rows, width), dtype=np.int8)
    for r in range(1, rows):
        left = np.concatenate([[np.inf], cost[:-1]]) + DIAGONAL
        right = np.concatenate([cost[1:], [np.inf]]) + DIAGONAL
        options = np.stack([left, cost, right])
        choice = options.argmin(axis=0)
        step[r] = choice - 1
        cost = options[choice, np.arange(width)] + ink[r]
    margin = max(1, round(CUT_MARGIN * height))
    ends = [x for x in np.argsort(cost, kind="stable") if margin <= x < width - margin]
    chosen: list[int] = []
    limit = max(1, int(CUTS_PER_H * width / height))
    for x in ends:
        if cost[x] > rows * 0.5 or len(chosen) >= limit:
            break
        if all(abs(x - other) >= margin for other in chosen):
            chosen.append(int(x))
    if not chosen:
        return [mark]
    # each path as its column per row, traced back from its end
    paths = []
    for x in sorted(chosen):
        path = np.empty(rows, dtype=np.int64)
        path[-1] = x
        for r in range(rows - 1, 0, -1):
            path[r - 1] = path[r] + step[r, path[r]]
        paths.append(path)
    columns = np.arange(width)[None, :]
    parts, left = [], np.full(rows, -1)
    for path in [*paths, np.full(rows, width)]:
        part = mark & (columns > left[:, None]) & (columns <= path[:, None])
        if part.any():
            parts.append(part)
        left = np.maximum(left, path)
    # a sliver a wandering path cut off (shorter than SLIVER H) is no piece of its own: it joins its neighbour
    merged: list[np.ndarray] = []
    for part in parts:
        tall = np.flatnonzero(part.any(axis=1))
        if merged and (tall[-1] - tall[0] + 1 < SLIVER * height or _is_sliver(merged[-1], height)):
            merged[-1] = merged[-1] | part
        else:
            merged.append(part)
    return merged


def _is_sliver(part: np.ndarray, height: float) -> bool:
    tall = np.flatnonzero(part.any(axis=1))
    return bool(tall[-1] - tall[0] + 1 < SLIVER * height)
