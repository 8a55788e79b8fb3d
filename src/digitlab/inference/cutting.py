"""Where a line of handwritten digits may be cut (for inference.segment): ruled lines taken away, the hand's
slant measured, and a mark too wide for one digit cut, upright, along lowest-ink paths into pieces that
segment.choose() may group again (over-segmentation: every likely boundary between touching digits is offered,
each with the strokes its path crossed).

Holds the tuned constants (in units of the line's height H), without_rules, slant, cut, line_height and the
private helpers for runs, shearing and the paths' costs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

TALL = 0.5  # marks at least this share of the tallest one's height measure the line's height
RULE_RUN = 0.25  # a horizontal run longer than this share of the image's width may be a ruled line...
RULE_LENGTH = 2.5  # ...and is one if it is at least this many H long
RULE_THICKNESS = 0.25  # and at most this share of H thick
SPLIT = 0.9  # a mark wider than this share of H may hold touching digits: cut candidates are made in it
CUT_MARGIN = 0.1  # no cut nearer than this share of H to a mark's side, or to another cut
DIP = 0.03  # a cut goes through a dip in the paths' cost: lowest within this share of H either side
CUTS_PER_H = 4  # at most this many cuts per H of a mark's width
CRUMB = 0.03  # a cut-off part with less than this share of its mark's ink joins its neighbour
DIAGONAL = 0.3  # a cutting path's cost per column it steps sideways, against 1 for each ink pixel it crosses
REACH = 2  # the most columns it steps sideways from one row to the next
BAND = 0.3  # and it stays within this share of H of the column it crosses the middle row at
MAX_SLANT = 0.4  # the most slant (columns per row) taken out before cutting


def line_height(heights: np.ndarray) -> float:
    """H: the median height of the marks at least TALL of the tallest (a digit's detached bar does not count)."""
    return float(np.median(heights[heights >= TALL * heights.max()]))


def slant(marks: np.ndarray, kept: list[int]) -> float:
    """The line's slant (columns to the right per row up) from its marks' ink, each about its own centre: a
    forward-leaning hand gives a positive slant, clipped to +-MAX_SLANT."""
    rows, cols = np.nonzero(np.isin(marks, kept))
    if rows.size < 2:
        return 0.0
    which = marks[rows, cols]
    count = np.bincount(which).astype(float)
    centred_y = rows - (np.bincount(which, rows) / np.maximum(count, 1))[which]
    centred_x = cols - (np.bincount(which, cols) / np.maximum(count, 1))[which]
    spread = float((centred_y**2).sum())
    return float(np.clip(-(centred_x * centred_y).sum() / spread, -MAX_SLANT, MAX_SLANT)) if spread else 0.0


def without_rules(binary: np.ndarray) -> tuple[np.ndarray, int]:
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
    height = line_height(heights[heights >= 3] if (heights >= 3).any() else heights)
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


def _shear(mark: np.ndarray, slant: float, back: bool = False) -> np.ndarray:
    """The mark with each row shifted so that a stroke leaning by `slant` stands upright (or, `back`, the reverse
    of that on a sheared plane): integer shifts, so that every pixel maps to one pixel."""
    rows = mark.shape[0]
    shifts = np.round(-slant * (rows - 1 - np.arange(rows))).astype(int)
    shifts -= shifts.min()
    reach = int(shifts.max())
    if back:
        return np.stack([mark[r, shifts[r] : shifts[r] + mark.shape[1] - reach] for r in range(rows)])
    out = np.zeros((rows, mark.shape[1] + reach), dtype=mark.dtype)
    for r in range(rows):
        out[r, shifts[r] : shifts[r] + mark.shape[1]] = mark[r]
    return out


def cut(mark: np.ndarray, height: float, slant: float = 0.0) -> list[tuple[np.ndarray, int]]:
    """A mark (bool, its box) as pieces, each with the strokes the cut on its left crossed: cut along its
    lowest-ink top-to-bottom paths, the line's slant taken out first, when it is wider than SPLIT H upright."""
    upright = _shear(mark, slant)
    columns = np.flatnonzero(upright.any(axis=0))
    if columns[-1] - columns[0] + 1 <= SPLIT * height:
        return [(mark, 0)]
    return [(_shear(part, slant, back=True), crossed) for part, crossed in _cut_upright(upright, height)]


def _cut_upright(mark: np.ndarray, height: float) -> list[tuple[np.ndarray, int]]:
    """An upright mark cut along lowest-ink top-to-bottom paths, each through a column of the middle row and
    never more than BAND H from it: a path steps up to REACH columns a row at DIAGONAL per column (around a
    neighbour's stroke, through paper) and crosses ink at 1 per pixel. The paths through the local minima of that
    cost along the middle row (no two nearer than CUT_MARGIN H, none nearer than that to a side), cheapest first,
    at most CUTS_PER_H per H of width. Parts with under CRUMB of the mark's ink join their left neighbour."""
    rows, width = mark.shape
    middle = rows // 2
    band = max(1, round(BAND * height))
    upper, upper_step = _band_costs(mark[: middle + 1][::-1], band)  # from the middle row up
    lower, lower_step = _band_costs(mark[middle:], band)  # and down
    cost = upper[-1].min(axis=1) + lower[-1].min(axis=1) - mark[middle]
    inked = np.flatnonzero(mark.any(axis=0))
    margin = max(1, round(CUT_MARGIN * height))
    lowest = ndimage.minimum_filter1d(cost, 2 * max(1, round(DIP * height)) + 1, mode="nearest")
    ends = [
        int(x)
        for x in np.argsort(cost, kind="stable")
        if inked[0] + margin <= x <= inked[-1] - margin and cost[x] <= lowest[x] and cost[x] <= rows * 0.5
    ]
    chosen: list[int] = []
    limit = max(1, int(CUTS_PER_H * (inked[-1] - inked[0] + 1) / height))
    for x in ends:
        if len(chosen) < limit and all(abs(x - other) >= margin for other in chosen):
            chosen.append(x)
    if not chosen:
        return [(mark, 0)]
    paths = []
    for x in sorted(chosen):
        top = _trace(upper, upper_step, x, band)[::-1]  # rows 0..middle
        bottom = _trace(lower, lower_step, x, band)  # rows middle..end
        paths.append(np.concatenate([top, bottom[1:]]))
    columns = np.arange(width)[None, :]
    parts, left, crossed = [], np.full(rows, -1), 0
    for path in [*paths, np.full(rows, width)]:
        part = mark & (columns > left[:, None]) & (columns <= path[:, None])
        if part.any():
            parts.append((part, crossed))
        left = np.maximum(left, path)
        on = mark[np.arange(rows), np.minimum(path, width - 1)]
        crossed = int(on[0]) + int((on[1:] & ~on[:-1]).sum())  # the ink runs along the path: strokes crossed
    # a crumb a wandering path cut off is no piece of its own
    total = float(mark.sum())
    merged: list[tuple[np.ndarray, int]] = []
    for part, cross in parts:
        if merged and (part.sum() < CRUMB * total or merged[-1][0].sum() < CRUMB * total):
            merged[-1] = (merged[-1][0] | part, merged[-1][1])
        else:
            merged.append((part, cross))
    return merged


def _band_costs(mark: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """For paths starting at each column x of row 0 and staying within `band` columns of it: cost[r, x, j], the
    least ink crossed to reach (r, x - band + j), and step[r, x, j], the offset in j it came from."""
    rows, width = mark.shape
    size = 2 * band + 1
    padded = np.pad(mark.astype(np.float32), ((0, 0), (band, band)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)  # (rows, width, size)
    cost = np.full((rows, width, size), np.inf, dtype=np.float32)
    cost[0, :, band] = windows[0, :, band]
    step = np.zeros((rows, width, size), dtype=np.int8)
    # a row's costs, inf beyond the band; the steps' sums in float64, as the costs plus a float64 step cost were
    before = np.full((width, size + 2 * REACH), np.inf)
    lowest = np.empty((width, size))
    better = np.empty((width, size), dtype=bool)
    for r in range(1, rows):
        before[:, REACH : REACH + size] = cost[r - 1]
        # the cheapest of the 2 REACH + 1 steps, the first of equals (as argmin), kept in place: no stacking
        np.copyto(lowest, before[:, 2 * REACH : 2 * REACH + size])
        lowest += DIAGONAL * REACH
        chosen = step[r]
        chosen[:] = -REACH
        for d in range(-REACH + 1, REACH + 1):
            option = before[:, REACH - d : REACH - d + size] + DIAGONAL * abs(d)
            np.less(option, lowest, out=better)
            np.copyto(lowest, option, where=better)
            chosen[better] = d
        cost[r] = lowest + windows[r]
    return cost, step


def _trace(cost: np.ndarray, step: np.ndarray, x: int, band: int) -> np.ndarray:
    """The column per row of the cheapest path from (0, x) to the last row, out of _band_costs()."""
    rows = cost.shape[0]
    j = int(cost[-1, x].argmin())
    path = np.empty(rows, dtype=np.int64)
    for r in range(rows - 1, -1, -1):
        path[r] = x - band + j
        if r:
            j -= int(step[r, x, j])
    return path
