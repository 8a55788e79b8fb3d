"""digitlab.shard: --shard K/N and Slurm array tasks as a share of a list, every item in exactly one shard."""

from __future__ import annotations

import pytest

from digitlab.errors import ConfigError
from digitlab.shard import WHOLE, Shard


@pytest.mark.parametrize("length", [0, 1, 5, 41])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_take_every_item_exactly_once(length, count):
    items = list(range(length))
    taken = [Shard(k, count).take(items) for k in range(1, count + 1)]
    assert sorted(item for share in taken for item in share) == items
    for k, share in enumerate(taken, 1):
        assert all(item % count == k - 1 for item in share)  # item i goes to shard i mod N + 1
        assert share == sorted(share)  # in the list's order


def test_items_appended_later_leave_earlier_ones_where_they_were():
    before, after = list(range(10)), list(range(14))
    for k in (1, 2, 3):
        assert Shard(k, 3).take(after)[: len(Shard(k, 3).take(before))] == Shard(k, 3).take(before)


def test_parse_flag():
    assert Shard.parse("2/4", environ={}) == Shard(2, 4)
    assert Shard.parse(" 1 / 1 ", environ={}) == WHOLE
    assert str(Shard.parse("3/5", environ={})) == "3/5" and Shard.parse("3/5", environ={}).source == "--shard"


def test_nothing_given_is_the_whole_list():
    assert Shard.parse(None, environ={}) == WHOLE and WHOLE.whole


def test_flag_wins_over_slurm():
    assert Shard.parse("1/2", environ={"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}) == Shard(1, 2)


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(1, 4)),
        ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(4, 4)),
        # --array=0-3: ids from 0
        (
            {
                "SLURM_ARRAY_TASK_ID": "0",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "3",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            Shard(1, 4),
        ),
        # --array=10-13
        ({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}, Shard(3, 4)),
        # --array=1-7:2 -> ids 1, 3, 5, 7
        (
            {
                "SLURM_ARRAY_TASK_ID": "5",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "7",
                "SLURM_ARRAY_TASK_STEP": "2",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            Shard(3, 4),
        ),
        # no MIN set: ids assumed from 1
        ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "2"}, Shard(2, 2)),
    ],
)
def test_slurm_array_task(environ, expected):
    shard = Shard.parse(None, environ=environ)
    assert shard == expected
    assert f"SLURM_ARRAY_TASK_ID={environ['SLURM_ARRAY_TASK_ID']}" in shard.source


@pytest.mark.parametrize("text", ["3/2", "0/2", "a/b", "2", "1/0", "-1/2", "1/2/3", ""])
def test_bad_shards_are_refused_in_one_line(text):
    with pytest.raises(ConfigError) as error:
        Shard.parse(text, environ={})
    assert "\n" not in str(error.value) and "--shard" in str(error.value)


@pytest.mark.parametrize(
    "environ",
    [
        # --array=1,3,8: three tasks whose ids are no evenly spaced range
        {
            "SLURM_ARRAY_TASK_ID": "3",
            "SLURM_ARRAY_TASK_MIN": "1",
            "SLURM_ARRAY_TASK_MAX": "8",
            "SLURM_ARRAY_TASK_COUNT": "3",
        },
        {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"},  # ids from 0 but MIN unset: shard 0
        {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"},
        {"SLURM_ARRAY_TASK_ID": "2"},  # no count
    ],
)
def test_slurm_arrays_that_cannot_be_mapped_are_refused(environ):
    with pytest.raises(ConfigError, match="pass --shard K/N"):
        Shard.parse(None, environ=environ)
