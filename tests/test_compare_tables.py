"""tests/compare_tables.py: the identity check of refactorings finds what differs and passes what does not."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare_tables  # noqa: E402


def _write(root: Path, name: str, df: pd.DataFrame) -> None:
    (root / "tables").mkdir(parents=True, exist_ok=True)
    df.to_csv(root / "tables" / name, index=False)


def test_identical_tables_pass_and_any_change_is_named(tmp_path):
    df = pd.DataFrame({"init": ["a", "b"], "auc": [0.5, np.nan], "n": [1, 2], "note": [np.nan, "x"]})
    _write(tmp_path / "x", "t.csv", df)
    _write(tmp_path / "y", "t.csv", df)
    assert compare_tables.compare(tmp_path / "x", tmp_path / "y") == ["same    t.csv"]
    _write(tmp_path / "y", "t.csv", df.assign(auc=[0.5 + 1e-9, np.nan]))
    (line,) = compare_tables.compare(tmp_path / "x", tmp_path / "y")
    assert line.startswith("DIFF") and "'auc', row 0" in line
    _write(tmp_path / "y", "t.csv", df.assign(init=["a", "c"]))
    assert "'init', row 1" in compare_tables.compare(tmp_path / "x", tmp_path / "y")[0]
    _write(tmp_path / "y", "t.csv", df.assign(note=["y", "x"]))
    assert "'note', row 0" in compare_tables.compare(tmp_path / "x", tmp_path / "y")[0]
    _write(tmp_path / "y", "u.csv", df)
    assert any(s.startswith("MISSING u.csv") for s in compare_tables.compare(tmp_path / "x", tmp_path / "y"))
