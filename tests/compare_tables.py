"""Are two results folders' tables identical? The check behind every refactoring that must not change results.

    .venv/bin/python tests/compare_tables.py RESULTS_BEFORE RESULTS_AFTER

Compares every ``tables/*.csv`` (same set of files, same columns, same rows in the same order, values
equal: exactly for text and integers, floats to 1e-12 relative, NaN equal to NaN) and prints one line per
table; exits 1 if any differs. Run the same config and seeds on the same machine (CPU) before and after
the change, e.g. the smoke study: ``snakemake --cores 2 --configfile configs/smoke.yaml --config
results=/tmp/before`` on the old commit, ``.../after`` on the new.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def compare_table(a: Path, b: Path, rtol: float = 1e-12) -> str | None:
    """None when equal, else what differs first."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    if list(x.columns) != list(y.columns):
        return f"columns {list(x.columns)} vs {list(y.columns)}"
    if len(x) != len(y):
        return f"{len(x)} vs {len(y)} rows"
    for col in x.columns:
        u, v = x[col], y[col]
        if pd.api.types.is_float_dtype(u) and pd.api.types.is_float_dtype(v):
            same = np.isclose(u, v, rtol=rtol, atol=0.0, equal_nan=True)
        else:
            # missing equals missing (pandas' string dtype keeps NaN through astype(str))
            same = ((u.astype(str) == v.astype(str)) | (u.isna() & v.isna())).to_numpy(dtype=bool)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            return (
                f"column {col!r}, row {i}: {u.iloc[i]!r} vs {v.iloc[i]!r} ({int((~same).sum())} rows differ)"
            )
    return None


def compare(before: Path, after: Path) -> list[str]:
    """One line per table; lines starting with 'DIFF' or 'MISSING' mark a difference."""
    a = {p.name for p in (before / "tables").glob("*.csv")}
    b = {p.name for p in (after / "tables").glob("*.csv")}
    out = [f"MISSING {name} (only in {before if name in a else after})" for name in sorted(a ^ b)]
    for name in sorted(a & b):
        why = compare_table(before / "tables" / name, after / "tables" / name)
        out.append(f"same    {name}" if why is None else f"DIFF    {name}: {why}")
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    lines = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(lines))
    differ = [line for line in lines if not line.startswith("same")]
    print(f"{len(lines) - len(differ)} of {len(lines)} tables identical")
    return 1 if differ or not lines else 0


if __name__ == "__main__":
    sys.exit(main())
