"""The geometry of a line of digits (digitlab.inference.segment), without a model: specks and ruled lines
dropped, a mark too wide for one digit cut into pieces, and choose() grouping pieces by their scores."""

from __future__ import annotations

import numpy as np

from digitlab.inference import segment


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
    assert len(line.pieces) == 2
    whole = line.spans.index((0, 2))
    scores = np.full(len(line.spans), -5.0)
    scores[whole] = 0.0  # the model reads the pair as one digit
    assert segment.choose(line, scores) == [(0, 2)]
    scores[:] = -0.01
    scores[whole] = -5.0  # or each bar as a digit
    assert segment.choose(line, scores) == [(0, 1), (1, 2)]


def test_a_detached_bar_goes_with_its_digit():
    plane = bars(40)
    plane[14:17, 46:70] = True  # a 5's bar, apart from its body
    line = segment.pieces(plane)
    assert len(line.pieces) == 2
    scores = np.array([-0.01 if span == (0, 2) else -1.0 for span in line.spans])
    assert segment.choose(line, scores) == [(0, 2)]
