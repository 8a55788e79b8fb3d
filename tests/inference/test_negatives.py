"""Generated non-digits as the model sees them (digitlab.inference.negatives): a seeded pool, cached, and drawn
again when the cached file is damaged."""

from __future__ import annotations

import numpy as np

from digitlab.inference.negatives import pool


def test_a_pool_is_cached_and_a_damaged_cache_is_drawn_again(tmp_path):
    quiet = lambda *args, **kwargs: None  # noqa: E731
    first = pool(8, "train", seed=3, cache=tmp_path, log=quiet)
    assert first.shape == (8, 28, 28) and first.dtype == np.uint8 and first.max() > 0
    (cached,) = tmp_path.glob("*.npy")
    assert np.array_equal(pool(8, "train", seed=3, cache=tmp_path, log=quiet), first)
    cached.write_bytes(b"\x93NUMPY damaged")
    assert np.array_equal(pool(8, "train", seed=3, cache=tmp_path, log=quiet), first)
    assert np.array_equal(np.load(cached), first)  # and the damaged file replaced
