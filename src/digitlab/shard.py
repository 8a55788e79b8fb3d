"""Shards: one process's deterministic share of a list of work items, so that N processes (a batch scheduler's
array job, machines sharing one folder) split the list between them and each item runs exactly once.

Shard K of N takes items K-1, K-1+N, K-1+2N, ... of the list (item i goes to shard i mod N + 1), so shards
1/N ... N/N together take every item once, whatever the list's length, as long as every shard sees the same
list in the same order; items appended to its end later (figure3's tuned cells) keep the earlier ones' shards.

`Shard.parse` reads `--shard K/N` or, when it is not given, a Slurm array job's environment:
SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (`#SBATCH --array=1-4` runs four tasks with ids 1..4). Slurm's
ids start wherever --array says (1-4, 0-3, 10-13, even 1-7:2), so K counts from SLURM_ARRAY_TASK_MIN in steps
of SLURM_ARRAY_TASK_STEP: K = (ID - MIN) / STEP + 1 (MIN 1 and STEP 1 where Slurm did not set them). An array
of ids that is not one evenly spaced range (--array=1,3,8) cannot be mapped and is refused; pass --shard.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from digitlab.errors import ConfigError

T = TypeVar("T")
SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # K, from 1
    count: int  # N
    source: str = field(default="", compare=False)  # for messages: "--shard", the Slurm task, or "" (made in code)

    @classmethod
    def parse(cls, text: str | None, environ: Mapping[str, str] = os.environ) -> Shard:
        """`--shard K/N`; without it a Slurm array task's share; without either, the whole list (1/1)."""
        if text is not None:
            match = SHARD.fullmatch(text)
            if not match:
                raise ConfigError(f"--shard {text!r} does not parse; give K/N, e.g. --shard 2/4 (the second of four)")
            return cls.checked(int(match[1]), int(match[2]), f"--shard {text.strip()}", "--shard")
        if environ.get("SLURM_ARRAY_TASK_ID") is None:
            return cls(1, 1)
        return cls.from_slurm(environ)

    @classmethod
    def from_slurm(cls, environ: Mapping[str, str]) -> Shard:
        """A Slurm array task's shard: K = (ID - MIN) / STEP + 1 of N = COUNT (see the module's docstring)."""
        names = ("ID", "MIN", "MAX", "STEP", "COUNT")
        values = {}
        for name in names:
            text = environ.get(f"SLURM_ARRAY_TASK_{name}")
            if text is None:
                continue
            if not text.strip().isdigit():
                raise ConfigError(f"SLURM_ARRAY_TASK_{name}={text!r} is not a number; pass --shard K/N instead")
            values[name] = int(text)
        task, first, step = values["ID"], values.get("MIN", 1), values.get("STEP", 1) or 1
        count = values.get("COUNT")
        if count is None and "MAX" in values:
            count = (values["MAX"] - first) // step + 1
        described = ", ".join(f"SLURM_ARRAY_TASK_{name}={values[name]}" for name in names if name in values)
        if count is None:
            raise ConfigError(f"a Slurm array task ({described}) without SLURM_ARRAY_TASK_COUNT; pass --shard K/N")
        regular = "MAX" not in values or (values["MAX"] - first) == (count - 1) * step
        if not regular or (task - first) % step:
            raise ConfigError(
                f"the Slurm array's task ids ({described}) are not one evenly spaced range such as --array=1-{count}, "
                f"so this task's share is unknown; pass --shard K/N"
            )
        last = first + (count - 1) * step
        array = f"SLURM_ARRAY_TASK_ID={task} of the array {first}-{last}" + (f":{step}" if step > 1 else "")
        return cls.checked((task - first) // step + 1, count, described, array)

    @classmethod
    def checked(cls, index: int, count: int, given: str, source: str) -> Shard:
        """Shard `index` of `count`, or a ConfigError that names what was `given`."""
        if count < 1 or not 1 <= index <= count:
            way_out = f"e.g. --shard 1/{max(count, 1)}" if source == "--shard" else "pass --shard K/N"
            raise ConfigError(
                f"{given} names shard {index} of {count}; shards count from 1 to N (N at least 1): {way_out}"
            )
        return cls(index, count, source)

    @property
    def whole(self) -> bool:
        """Whether this shard is the whole list."""
        return self.count == 1

    def take(self, items: list[T]) -> list[T]:
        """This shard's items, in their order: item i (from 0) when i mod N == K - 1."""
        return list(items[self.index - 1 :: self.count])

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)  # every item: what no --shard and no Slurm array means
