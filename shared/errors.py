"""Errors that tell the user what was wrong and what is allowed."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


class ParameterError(ValueError):
    """A parameter has an unknown name, a wrong type or a value outside the allowed ones."""

    def __init__(self, name: str, problem: str, allowed: Iterable[str] | str | None = None):
        message = f"parameter '{name}': {problem}"
        if allowed is not None:
            listed = allowed if isinstance(allowed, str) else ", ".join(map(str, allowed))
            message += f" (allowed: {listed})"
        super().__init__(message)
        self.name = name


class MissingInputError(FileNotFoundError):
    """A local dataset or checkpoint that a parameter points to is missing."""

    def __init__(self, param: str, path: str | Path | None, expected: str):
        where = f"'{path}'" if path else "nothing (the parameter is not set)"
        super().__init__(
            f"parameter '{param}' points to {where}, but it must name {expected}. "
            f"Put the files there, or pass --set {param}=/path/to/it."
        )
        self.param = param


def require_files(param: str, folder: str | Path | None, names: Iterable[str], what: str) -> Path:
    """Return ``folder`` as a Path if it holds every file in ``names``; else MissingInputError."""
    names = list(names)
    expected = f"{what}: a folder holding {', '.join(names)}"
    if not folder:
        raise MissingInputError(param, None, expected)
    folder = Path(folder).expanduser()
    missing = [n for n in names if not (folder / n).exists()]
    if not folder.is_dir() or missing:
        raise MissingInputError(param, folder, expected + (f" (missing: {', '.join(missing)})" if folder.is_dir() else ""))
    return folder


def require_hf_folder(param: str, folder: str | Path | None, what: str,
                      files: Iterable[str] = ("config.json",)) -> Path:
    """A local Hugging Face folder (``save_pretrained`` output): ``files`` and weights, else MissingInputError."""
    folder = require_files(param, folder, files, what)
    if not any(any(folder.glob(pattern)) for pattern in ("*.safetensors", "*.bin")):
        raise MissingInputError(param, folder, f"{what}, with weights (model.safetensors, pytorch_model.bin or their shards)")
    return folder


class CorruptInputError(ValueError):
    """A file that a parameter points to exists but cannot be read as what it should be."""

    def __init__(self, param: str, path: str | Path, problem: str, expected: str):
        super().__init__(f"parameter '{param}': the file '{path}' is not readable as {expected} ({problem}). "
                         f"Replace it with an intact copy, or pass --set {param}=/path/to/another.")
        self.param, self.path = param, Path(path)


@contextmanager
def reading(param: str, path: str | Path, expected: str) -> Iterator[None]:
    """Turn any error raised while reading ``path`` into a CorruptInputError naming ``param`` and the file."""
    try:
        yield
    except (MissingInputError, CorruptInputError, KeyboardInterrupt):
        raise
    except Exception as error:  # a library's own message ("header too large", ...) becomes the detail
        raise CorruptInputError(param, path, f"{type(error).__name__}: {error}", expected) from error


def safetensors_problem(path: Path) -> str | None:
    """What makes ``path`` unreadable as a safetensors file (truncated, a broken header), or None; reads the
    header only (8 bytes of length, then JSON), so a multi-GB checkpoint is checked in milliseconds."""
    import json
    import struct

    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than a safetensors header"
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            return f"its header claims {length} bytes, the file has {size}"
        try:
            header = json.loads(f.read(length))
        except ValueError as error:
            return f"its header is not JSON ({error})"
    if not isinstance(header, dict):
        return "its header is not a mapping of tensors"
    try:
        ends = [int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"]
    except (KeyError, IndexError, TypeError, ValueError):
        return "a tensor of its header has no valid data_offsets"
    data = size - 8 - length
    if ends and max(ends) != data:
        return f"its tensors need {max(ends)} bytes of data, the file has {data} (truncated?)"
    return None
