"""Seed lists: the one meaning of a flag that takes several seeds (reproduce --seeds, tune --retrain-seeds,
benchmarks/recipes.py --seeds): a count or a comma-separated list."""

from __future__ import annotations

from digitlab.errors import ConfigError

SEEDS_HELP = "a count (3 = seeds 0,1,2) or a comma-separated list (0,1,2; 7, alone is seed 7)"


def parse_seeds(text: str, flag_name: str = "--seeds") -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '7,' -> [7]; '5' -> [0, 1, 2, 3, 4] (five seeds)."""
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise ConfigError(f"{flag_name} {text!r} does not parse; give a count (3) or a list (0,1,2)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{flag_name} {text!r} must name at least one seed, none negative, none twice")
    return seeds
