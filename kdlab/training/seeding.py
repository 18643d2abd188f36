"""Seeded blocks that leave the caller's random streams as they were, so one part's seed never shifts another's."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block on ``seed`` (python, numpy, torch and the shuffle seed Lightning publishes in
    ``PL_GLOBAL_SEED``, see :func:`kdlab.data.sampling.shuffle_seed`), then restore what the caller had."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    published = os.environ.get("PL_GLOBAL_SEED")
    with torch.random.fork_rng():
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        os.environ["PL_GLOBAL_SEED"] = str(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            if published is None:
                os.environ.pop("PL_GLOBAL_SEED", None)
            else:
                os.environ["PL_GLOBAL_SEED"] = published
