"""Atomic file output and small JSON helpers.

Every file this project writes goes to a temporary name in the same folder and is renamed into place
only when complete, so a job killed mid-write never leaves a file that looks finished (rename is atomic
on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

#: errors of the write itself (not of reading inputs inside the block): reported with the output's path
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the final suffix (``suffix`` overrides it) so libraries that pick a format
    from the extension (matplotlib, numpy) behave. On any exception the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create output folder {path.parent}: {exc.strerror}. "
            "Check that the results folder is writable and the disk is not full."
        ) from exc
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.",
            suffix=(suffix if suffix is not None else "".join(path.suffixes)) + ".tmp",
            dir=path.parent,
        )
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot write {path}: creating a file in {path.parent} failed ({exc.strerror}). "
            "Check that the results folder is writable and the disk is not full.",
        ) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp's name ends in ".tmp": libraries that append an extension (np.savez) need the real one last.
    real_tmp = tmp_path.with_name(tmp_path.name[: -len(".tmp")])
    try:
        tmp_path.rename(real_tmp)
        yield real_tmp
        os.replace(real_tmp, path)
    except BaseException as exc:
        for p in (tmp_path, real_tmp):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise OSError(
                exc.errno,
                f"cannot write {path}: {exc.strerror}; nothing was written (the partial file was removed). "
                "Free space or give a results folder on a writable disk with room, then rerun.",
            ) from exc
        raise


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf; null is explicit and parseable everywhere
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (numpy scalars/arrays converted, NaN -> null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez_compressed`` written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure(fig, paths: list[str | os.PathLike] | tuple, **kwargs: Any) -> None:
    """Save a matplotlib figure to each path (format from the extension), atomically."""
    for p in paths:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=Path(p).suffix.lstrip("."), bbox_inches="tight", **kwargs)
