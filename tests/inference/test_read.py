"""Reading a line of digits (digitlab.inference.read, inference.segment) and predict's "not a digit" verdicts.

Lines are drawn with tests/drawings.py's strokes side by side: gaps, touching neighbours, a 5 whose bar is a
separate stroke, specks, a ruled line through the digits, up to 12 digits; each must come back as its digits,
left to right, with boxes in the picture's pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.inference.classifier import open_classifier
from digitlab.inference.decode import ImageError
from digitlab.inference.read import MAX_DIGITS, read_images, read_number
from digitlab.inference.recognise import recognise_images
from drawings import FOUR, SEVEN, drawing

ONE = [(0.5, 0.15), (0.5, 0.85)]
FIVE_BODY = [(0.33, 0.2), (0.3, 0.5), (0.55, 0.45), (0.7, 0.6), (0.65, 0.8), (0.3, 0.85)]
FIVE_BAR = [(0.4, 0.17), (0.72, 0.17)]
SHAPES = {"7": [SEVEN], "4": FOUR, "1": [ONE]}


@pytest.fixture(scope="module")
def classifier():
    return open_classifier(None)


def line(digits: str, step: int = 190, size: int = 200) -> Image.Image:
    """The digits (of SHAPES) drawn left to right, `step` px apart (under 160: their boxes overlap)."""
    canvas = Image.new("L", (step * (len(digits) - 1) + size, size), 255)
    for k, character in enumerate(digits):
        tile = drawing(size=(size, size), strokes=SHAPES[character])
        canvas.paste(
            Image.fromarray(
                np.minimum(np.asarray(canvas.crop((k * step, 0, k * step + size, size))), np.asarray(tile))
            ),
            (k * step, 0),
        )
    return canvas


def test_digits_with_gaps_are_read_left_to_right_with_their_boxes(classifier):
    reading = read_number(classifier, line("747"), "747.png")
    assert reading["number"] == "747" and not reading["not_a_digit"] and reading["reason"] is None
    lefts = [digit["box"][0] for digit in reading["digits"]]
    assert lefts == sorted(lefts) and all(0 <= digit["box"][0] < digit["box"][2] <= 570 for digit in reading["digits"])
    assert 0 < reading["digits"][1]["box"][0] - 190 < 100  # the 4's ink starts in its own tile
    json.dumps(reading)  # serialisable as it is


@pytest.mark.parametrize("count", [1, 2, 5, 12])
def test_numbers_of_1_to_12_digits(classifier, count):
    digits = "".join("741"[k % 3] for k in range(count))
    assert read_number(classifier, line(digits), "n.png")["number"] == digits


def test_touching_neighbours_are_split(classifier):
    picture = line("74", step=125)  # the 7's bar reaches into the 4's strokes
    assert read_number(classifier, picture, "touching.png")["number"] == "74"


def test_a_five_drawn_in_two_strokes_is_one_digit(classifier):
    picture = drawing(strokes=[FIVE_BODY, FIVE_BAR])
    assert len(read_number(classifier, picture, "five.png")["digits"]) == 1


def test_specks_and_a_ruled_line_are_ignored(classifier):
    picture = line("747")
    draw = ImageDraw.Draw(picture)
    draw.line([(0, 120), (picture.size[0], 120)], fill=0, width=3)  # a ruled line through the digits
    for x in (100, 300, 480):
        draw.rectangle([x, 185, x + 2, 187], fill=0)  # specks
    assert read_number(classifier, picture, "ruled.png")["number"] == "747"


def test_a_single_digit_reads_as_predict_answers_it(classifier):
    picture = drawing()
    (reading,) = read_images(classifier, [("seven.png", picture)])
    (predicted,) = recognise_images(classifier, [("seven.png", picture)])
    (digit,) = reading["digits"]
    assert np.array_equal(digit["image"], predicted["image"])
    assert {k: digit[k] for k in ("digit", "probability", "not_a_digit")} == {
        k: predicted[k] for k in ("digit", "probability", "not_a_digit")
    }


def test_predict_says_several_digits(classifier):
    (answer,) = recognise_images(classifier, [("747.png", line("747"))])
    assert answer["not_a_digit"] and answer["reason"].startswith("several digits (3)")
    assert answer["label"] in "0123456789"  # the best guess is still given


def test_low_confidence_is_not_a_digit(classifier, monkeypatch):
    monkeypatch.setattr(classifier, "reject_below", 1.01, raising=False)
    reading = read_number(classifier, line("74"), "74.png")
    assert reading["number"] == "??" and reading["not_a_digit"] and reading["reason"] == "low confidence"
    assert all(digit["reason"] == "low confidence" for digit in reading["digits"])


def test_too_many_digits_are_refused_in_one_line(classifier):
    picture = line("1" * (MAX_DIGITS + 3), step=60)
    with pytest.raises(ImageError, match=r"^many\.png: .*at most 32 digits") as caught:
        read_number(classifier, picture, "many.png")
    assert "\n" not in str(caught.value)


def test_a_blank_picture_is_refused(classifier):
    with pytest.raises(ImageError, match="no ink"):
        read_number(classifier, Image.new("L", (100, 60), 255), "blank.png")


def wide_zero() -> Image.Image:
    """A 0 wider than it is tall (1.2 H): one mark, wider than a cut is considered in."""
    picture = Image.new("L", (320, 200), 255)
    ImageDraw.Draw(picture).ellipse([40, 30, 256, 210 - 30], outline=0, width=14)
    return picture


def slanted(strokes: list, lean: float) -> list:
    """Strokes (fractions of the canvas) leaning forward by `lean` columns per row, kept inside the canvas."""
    return [[(0.1 + 0.7 * x + lean * (0.9 - y) * 0.7, y) for x, y in points] for points in strokes]


@pytest.mark.parametrize("name", ["wide zero", "slanted seven", "slanted four"])
def test_a_wide_or_slanted_single_digit_is_not_cut_in_two(classifier, name):
    if name == "wide zero":
        picture = wide_zero()
    else:
        picture = drawing(size=(260, 200), strokes=slanted([SEVEN] if "seven" in name else FOUR, 0.45))
    reading = read_number(classifier, picture, f"{name}.png")
    assert len(reading["digits"]) == 1, reading["number"]
    (answer,) = recognise_images(classifier, [(f"{name}.png", picture)])
    assert answer["reason"] is None or not answer["reason"].startswith("several")


def test_predict_does_not_call_one_digit_in_two_marks_several(classifier):
    picture = drawing(strokes=[FIVE_BODY, FIVE_BAR])  # a 5 whose bar is a separate stroke
    (answer,) = recognise_images(classifier, [("five.png", picture)])
    assert answer["reason"] is None or not answer["reason"].startswith("several")


def test_touching_neighbours_are_split_into_their_digits(classifier):
    picture = line("77", step=90)  # the first 7's stem runs into the second one's bar: one mark
    assert read_number(classifier, picture, "touching.png")["number"] == "77"
    (answer,) = recognise_images(classifier, [("touching.png", picture)])
    assert not (answer["reason"] or "").startswith("several")  # one mark: predict does not cut inside it


def test_a_star_is_read_as_no_digit_not_as_its_most_digit_like_part(classifier):
    """A star is one mark cut into pieces; one part alone may read as a confident digit, but its other parts are
    not small specks to be dropped for it (segment.SKIP): the reading holds no digit."""
    star = Image.new("L", (200, 200), 255)
    points = [(100, 20), (140, 170), (20, 70), (180, 70), (60, 170), (100, 20)]
    ImageDraw.Draw(star).line(points, fill=0, width=16, joint="curve")  # as tests/serve draws it
    reading = read_number(classifier, star, "star.png")
    assert reading["not_a_digit"] and "?" in reading["number"]


def test_a_tall_picture_is_cut_at_a_bounded_size_and_boxed_in_its_own_pixels(classifier):
    from PIL import Image, ImageDraw

    from digitlab.inference.read import WORK_HEIGHT, read_number

    image = Image.new("L", (2400, 1600), 255)
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 150, 1100, 1450), outline=0, width=110)  # a 0 about 1300 px tall, wider than 0.6 of it
    draw.line([(1500, 150), (2200, 150), (1700, 1450)], fill=0, width=110)  # a 7
    reading = read_number(classifier, image, "tall.png")
    assert reading["number"] == "07"
    assert reading["digits"][1]["box"][0] > 1300 and reading["digits"][1]["box"][2] <= 2400
    assert WORK_HEIGHT < 1300


def test_predict_cuts_no_picture_of_a_single_mark():
    from digitlab.inference.read import page, several_marks

    assert several_marks(drawing(), "seven.png") is None  # one mark: one digit, nothing to cut
    picture = line("747")
    found, whole = several_marks(picture, "747.png"), page(picture, "747.png")
    assert found.line.spans == whole.line.spans and found.boxes == whole.boxes
    settled = found.settled()
    assert settled.ink.size == 0 and all(np.array_equal(a, b) for a, b in zip(settled.images, whole.images))
