"""The shortcut protocol (Source Matters, 2024): which images carry the artifact at prevalence ``p``.

Protocol, for a binary target with a ``positive`` class and a prevalence ``p`` in ``[0, 1]``:

- **train** and **val**: the artifact is on ``round(p * n_pos)`` of the *positive* images of that split
  (round half up) and on no negative image, so it is correlated with the positive label.
- **test_clean**: no image carries the artifact.
- **test_iid**: the training rule applied to the test split (``round(p * n_pos)`` positives).
- **test_ood**: the correlation reversed: the artifact on *every negative* and on *no positive*.

Metric: ROC-AUC on each test set; shortcut gap = AUC(test_clean) - AUC(test_ood). An ``ood`` AUC far
below 0.5 means the model reads the artifact, not the anatomy.

Which positives get the artifact is fixed by ``seed``: one seeded permutation per split, of which the
first ``round(p * n_pos)`` are taken. Sets are therefore nested across prevalences (the images
artifacted at p = 0.2 are among those at p = 0.5 for the same seed), so a sweep over ``p`` changes
only the prevalence. ``clean`` is what every image gets anyway (for photon noise, baseline-dose noise),
``artifacted`` the same images with the artifact; both ``(N, C, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np

from shortcut_psd.errors import ConfigError, DataError

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # one independent random stream per split


def _check(labels: np.ndarray, split: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray, float]:
    labels = np.asarray(labels)
    split = np.asarray(split).astype(str)
    if labels.shape != split.shape or labels.ndim != 1:
        raise DataError(f"labels {labels.shape} and split {split.shape} must be 1-D of one length")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"prevalence p must lie in [0, 1]; got {p}")
    return labels, split, p


def _prevalence_mask(
    labels: np.ndarray, split: np.ndarray, p: float, seed: int, positive: int, splits: tuple[str, ...]
) -> np.ndarray:
    mask = np.zeros(len(labels), dtype=bool)
    for s in splits:
        idx = np.flatnonzero((split == s) & (labels == positive))
        k = int(np.floor(p * len(idx) + 0.5))
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_STREAMS[s]]))
        mask[idx[rng.permutation(len(idx))[:k]]] = True
    return mask


def artifact_mask(labels, split, p: float, seed: int, positive: int = 1) -> np.ndarray:
    """Bool ``(N,)``: True where a train or val image carries the artifact (never a test image).

    ``round(p * n_pos)`` positives of each of ``train`` and ``val``, chosen by ``seed``.
    """
    labels, split, p = _check(labels, split, p)
    return _prevalence_mask(labels, split, p, seed, positive, ("train", "val"))


def build_sets(
    clean: np.ndarray,
    artifacted: np.ndarray,
    labels,
    split,
    p: float,
    seed: int,
    positive: int = 1,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The protocol's image sets as ``{name: (images, labels)}``.

    Keys: ``train``, ``val`` (artifact on a fraction ``p`` of positives), ``test_clean`` (none),
    ``test_iid`` (training rule on the test split), ``test_ood`` (artifact on every negative, no positive).
    """
    labels, split, p = _check(labels, split, p)
    clean = np.asarray(clean)
    artifacted = np.asarray(artifacted)
    if clean.shape != artifacted.shape or len(clean) != len(labels):
        raise DataError(
            f"clean {clean.shape} and artifacted {artifacted.shape} images must match each other and the "
            f"{len(labels)} labels"
        )
    values = np.unique(labels)
    if len(values) > 2:
        raise DataError(
            f"the target has {len(values)} classes (labels {values[:10].tolist()}); the shortcut protocol needs "
            f"a binary target (negative vs positive label {positive}): use a two-class data set"
        )
    for s in ("train", "val", "test"):
        ls = labels[split == s]
        if len(ls) == 0:
            raise DataError(f"split '{s}' is empty; the shortcut protocol needs train, val and test images")
        if not (ls == positive).any() or (ls == positive).all():
            raise DataError(f"split '{s}' needs both positive (label {positive}) and negative images")

    def pick(mask: np.ndarray, s: str) -> tuple[np.ndarray, np.ndarray]:
        idx = np.flatnonzero(split == s)
        m = mask[idx].reshape((-1,) + (1,) * (clean.ndim - 1))
        return np.where(m, artifacted[idx], clean[idx]), labels[idx]

    train_val = _prevalence_mask(labels, split, p, seed, positive, ("train", "val"))
    iid = _prevalence_mask(labels, split, p, seed, positive, ("test",))
    ood = (split == "test") & (labels != positive)
    return {
        "train": pick(train_val, "train"),
        "val": pick(train_val, "val"),
        "test_clean": pick(np.zeros(len(labels), bool), "test"),
        "test_iid": pick(iid, "test"),
        "test_ood": pick(ood, "test"),
    }
