"""The geometry of a line of digits (digitlab.inference.segment), without a model: specks and ruled lines
dropped, a mark too wide for one digit cut into pieces, and choose() grouping pieces by their scores."""

from __future__ import annotations

import numpy as np

from digitlab.inference import cutting, segment


def bars(*lefts: int, height: int = 40, width: int = 6, size=(80, 200)) -> np.ndarray:
    """Upright bars (ones) of `height` at the given left columns."""
    plane = np.zeros(size, dtype=bool)
    for left in lefts:
        plane[20 : 20 + height, left : left + width] = True
    return plane


def test_specks_are_dropped_relative_to_the_line_height():
    plane = bars(20, 80, 140)
    plane[5:8, 100:103] = True  # a speck: 3 px against a 40-px line
    line = segment.pieces(plane)
    assert line.height == 40 and len(line.pieces) == 3


def test_a_ruled_line_through_the_digits_is_taken_away_but_not_their_strokes():
    plane = bars(20, 80, 140)
    plane[40:43, :] = True  # crosses every bar
    line = segment.pieces(plane)
    assert line.rules == 1 and len(line.pieces) == 3
    assert all(piece.box[3] - piece.box[1] == 40 + 2 * segment.SOFT_EDGE for piece in line.pieces)  # bars whole


def test_a_wide_mark_is_cut_into_pieces_and_choose_can_group_them():
    plane = np.zeros((80, 200), dtype=bool)
    plane[20:60, 20:26] = plane[20:60, 60:66] = True
    plane[20:23, 20:66] = True  # two bars joined at the top: one mark, 46 px wide for a 40-px line
    line = segment.pieces(plane)
    assert len(line.pieces) >= 2 and {piece.mark for piece in line.pieces} == {0}
    boxes = [segment.box(line, span) for span in line.spans]
    whole = [k for k, b in enumerate(boxes) if b[0] <= 20 and b[2] >= 66]
    assert whole
    scores = np.full(len(line.spans), -5.0)
    scores[whole] = 0.0  # the model reads the pair as one digit
    assert segment.choose(line, scores) == [line.spans[whole[0]]]
    # or each bar as a digit: the left bar with the top bar's left half, the right one with the rest
    halves = [k for k, b in enumerate(boxes) if (b[0] <= 20 and 26 <= b[2] <= 50) or (30 <= b[0] <= 60 and b[2] >= 66)]
    assert len(halves) >= 2
    scores[:] = -5.0
    scores[halves] = -0.01
    chosen = segment.choose(line, scores)
    assert len(chosen) == 2 and all(line.spans.index(span) in halves for span in chosen)


def test_a_cut_crossing_two_strokes_costs_more_than_one():
    plane = np.zeros((80, 200), dtype=bool)
    plane[20:60, 20:26] = plane[20:60, 56:62] = True
    plane[20:23, 20:62] = plane[57:60, 20:62] = True  # a box: any cut through it crosses two strokes
    line = segment.pieces(plane)
    inner = [piece.crossed for piece in line.pieces[1:]]
    assert inner and min(inner) >= 2
    scores = np.zeros(len(line.spans))  # every part reads as surely as the whole
    (only,) = segment.choose(line, scores)
    assert only == (0, len(line.pieces))  # the shape penalties keep it one digit


def test_the_models_doubt_outweighs_the_shape_penalties():
    """Touching digits often overlap, so the cut between them crosses two strokes: when the model is sure of the
    parts and doubts the whole (a merged pair), the parts are read; when it is sure of the whole, the whole."""
    plane = np.zeros((80, 200), dtype=bool)
    plane[20:60, 20:26] = plane[20:60, 56:62] = True
    plane[20:23, 20:62] = plane[57:60, 20:62] = True
    line = segment.pieces(plane)
    whole = line.spans.index((0, len(line.pieces)))
    middle = len(line.pieces) // 2
    halves = [line.spans.index((0, middle)), line.spans.index((middle, len(line.pieces)))]
    assert line.pieces[middle].crossed >= 2
    scores = np.full(len(line.spans), np.log(0.05))
    scores[whole], scores[halves] = np.log(0.4), np.log(0.99)  # a merged pair: little confidence in the whole
    assert segment.choose(line, scores) == [line.spans[k] for k in halves]
    scores[whole], scores[halves] = np.log(0.99), np.log(0.6)  # one digit: its fragments are doubted
    assert segment.choose(line, scores) == [line.spans[whole]]


def test_the_line_slant_is_measured_and_taken_out_before_cutting():
    plane = np.zeros((80, 200), dtype=bool)
    for row in range(20, 60):  # two bars leaning forward by 0.3 columns per row, joined at the bottom
        shift = round(0.3 * (59 - row))
        plane[row, 40 + shift : 46 + shift] = plane[row, 75 + shift : 81 + shift] = True
    plane[57:60, 40:81] = True
    line = segment.pieces(plane)
    assert abs(line.slant - 0.3) < 0.05
    # the cuts lean with the bars: each bar's upper part lies whole in one piece, a different one for each
    left, right = (
        line.labels[20:50][plane[20:50] & (np.arange(200) < 70)],
        line.labels[20:50][plane[20:50] & (np.arange(200) >= 70)],
    )
    assert len(set(left.tolist())) == 1 and len(set(right.tolist())) == 1 and left[0] != right[0]


def test_groups_put_a_bar_with_its_body_and_keep_digits_apart():
    plane = bars(20, 80, 140)
    plane[14:17, 80:110] = True  # a bar over the second mark, apart from it
    line = segment.pieces(plane)
    assert len(line.pieces) == 4
    singles = [(k, k + 1) for k in range(4)]
    assert len(segment.groups(line, singles)) == 3  # the bar stands with the mark below it
    narrow = segment.pieces(bars(20, 28))  # 2 px apart: within APART H, one group
    assert len(segment.groups(narrow, [(0, 1), (1, 2)])) == 1


def test_a_detached_bar_goes_with_its_digit():
    plane = bars(40)
    plane[14:17, 46:70] = True  # a 5's bar, apart from its body
    line = segment.pieces(plane)
    assert len(line.pieces) == 2
    scores = np.array([-0.01 if span == (0, 2) else -1.0 for span in line.spans])
    assert segment.choose(line, scores) == [(0, 2)]


def test_marks_are_counted_before_any_is_cut():
    assert len(segment.marks(bars(20, 80, 140)).kept) == 3
    joined = bars(20, 60)
    joined[20:23, 20:66] = True  # one wide mark: cut only by pieces()
    found = segment.marks(joined)
    assert len(found.kept) == 1 and len(segment.pieces(joined, found).pieces) >= 2
    assert segment.marks(np.zeros((30, 30), dtype=bool)).kept == []


def _plain_band_costs(mark: np.ndarray, band: int):
    """cutting._band_costs as first written (a stack of every step per row): what the faster one must equal."""
    rows, width = mark.shape
    size = 2 * band + 1
    padded = np.pad(mark.astype(np.float32), ((0, 0), (band, band)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=1)
    cost = np.full((rows, width, size), np.inf, dtype=np.float32)
    cost[0, :, band] = windows[0, :, band]
    step = np.zeros((rows, width, size), dtype=np.int8)
    offsets = np.arange(-cutting.REACH, cutting.REACH + 1)
    for r in range(1, rows):
        before = np.pad(cost[r - 1], ((0, 0), (cutting.REACH, cutting.REACH)), constant_values=np.inf)
        options = np.stack(
            [before[:, cutting.REACH - d : cutting.REACH - d + size] + cutting.DIAGONAL * abs(d) for d in offsets]
        )
        choice = options.argmin(axis=0)
        step[r] = offsets[choice]
        cost[r] = np.take_along_axis(options, choice[None], axis=0)[0] + windows[r]
    return cost, step


def test_the_cutting_paths_costs_are_those_of_the_plain_programme():
    rng = np.random.default_rng(0)
    for band in (1, 3, 7):
        mark = rng.random((25, 40)) < 0.3
        cost, step = cutting._band_costs(mark, band)
        plain_cost, plain_step = _plain_band_costs(mark, band)
        assert np.array_equal(cost, plain_cost) and np.array_equal(step, plain_step)
