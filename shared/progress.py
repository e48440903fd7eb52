"""Progress bars for long loops: tqdm.auto, silent under CI or PAPERSUITE_QUIET."""
from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def quiet() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("PAPERSUITE_QUIET"))


def progress(iterable: Iterable[T], desc: str | None = None, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar (disabled when quiet)."""
    return tqdm(iterable, desc=desc, disable=quiet(), **kwargs)
