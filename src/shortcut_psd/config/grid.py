"""Names, hashes and the study's grid: what the Snakefile and the workflow's scripts read from a config."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: artifact name reserved for the one p = 0 model per (init, target, seed) trained on the raw target images,
#: shared by every artifact whose clean images are the raw data (see :func:`shares_clean_model`)
CLEAN = "none"


def fmt_p(p: float) -> str:
    """Prevalence as used in paths: 0, 0.1, 0.5, 1."""
    return f"{float(p):g}"


def config_hash(obj: Any) -> str:
    """Short stable hash of a JSON-serialisable value (stored in checkpoints to trace them to a config)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def source_pairs(config: dict) -> list[tuple[str, str]]:
    """(source data set, edit) pairs that must be pre-trained."""
    pairs = {(s["source"], s["edit"]) for s in config["inits"].values() if s["kind"] == "source"}
    return sorted(pairs)


def source_datasets(config: dict) -> list[str]:
    return sorted({s for s, _ in source_pairs(config)})


def shares_clean_model(config: dict, artifact: str) -> bool:
    """Whether ``artifact``'s p = 0 model is the shared clean model (artifact :data:`CLEAN`).

    True when the artifact's kind returns the raw images as its clean images
    (:data:`shortcut_psd.artifacts.CLEAN_IS_RAW`): a model trained on the raw target images is then
    exactly its p = 0 model. False (``photon_noise``: baseline-dose noise on every image): the artifact
    gets its own p = 0 model, trained on its own clean images in its fine-tuning job. The one place this
    rule lives (docs/DEFINITIONS.md, "Baselines").
    """
    from shortcut_psd.artifacts import clean_is_raw

    return clean_is_raw(config["artifacts"][artifact]["kind"])


def clean_model_artifacts(config: dict) -> list[str]:
    """The artifacts whose p = 0 metrics come from the shared clean model (rule evaluate_clean_model)."""
    return sorted(a for a in config["artifacts"] if shares_clean_model(config, a))


def own_p0_artifacts(config: dict) -> list[str]:
    """The artifacts that train their own p = 0 model (on their clean images), when 0 is a prevalence."""
    if not any(float(p) == 0 for p in config["prevalences"]):
        return []
    return sorted(a for a in config["artifacts"] if not shares_clean_model(config, a))


def shortcut_prevalences(config: dict, artifact: str) -> list[str]:
    """Prevalences (as in paths) trained in ``artifact``'s fine-tuning job, in order: every p > 0, after
    p = 0 for an artifact with its own p = 0 model."""
    ps = sorted({float(p) for p in config["prevalences"]})
    own = artifact in own_p0_artifacts(config)
    return [fmt_p(p) for p in ps if p > 0 or own]


def artifact_seed_for(config: dict, seed: int) -> int:
    """Seed of the artifact images that training seed ``seed`` uses: ``artifact_seed + seed`` when
    ``artifact_seed_follows_seed`` (default), else ``artifact_seed`` for every training seed."""
    base = int(config.get("artifact_seed", 0))
    return base + int(seed) if config.get("artifact_seed_follows_seed", True) else base


def artifact_seeds(config: dict) -> list[int]:
    """The distinct artifact seeds of the study (one set of artifact images per target, artifact and seed)."""
    return sorted({artifact_seed_for(config, s) for s in config["seeds"]})


def finetune_conditions(config: dict) -> list[tuple[str, str, str, str, int]]:
    """Every trained model as (init, target, artifact, p, seed).

    p = 0 models: one under artifact :data:`CLEAN` per (init, target, seed), when some artifact shares it,
    and one per artifact that does not (:func:`own_p0_artifacts`), under that artifact's name.
    """
    shared = clean_model_artifacts(config)
    out = []
    for init in config["inits"]:
        for target in config["targets"]:
            for seed in config["seeds"]:
                for p in config["prevalences"]:
                    if float(p) == 0:
                        if shared:
                            out.append((init, target, CLEAN, fmt_p(0), seed))
                        for art in own_p0_artifacts(config):
                            out.append((init, target, art, fmt_p(0), seed))
                    else:
                        for art in config["artifacts"]:
                            out.append((init, target, art, fmt_p(p), seed))
    return sorted(set(out))


def psd_options(psd: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``psd`` section as keyword arguments of the spectral functions (one mapping for all):
    :func:`~shortcut_psd.gradients.gradient_psd`, ``image_psd`` and ``artifact_psd`` all take them, so
    gradient, artifact and source spectra share window (and Tukey shape), spectrum, channel reduction,
    normalisation, corners and bands. ``tukey_alpha`` defaults to 0.5 for a section validated before the
    key existed."""
    return {
        "batch_size": int(psd["batch_size"]),
        "window": psd["window"],
        "tukey_alpha": float(psd.get("tukey_alpha", 0.5)),
        "spectrum": psd["spectrum"],
        "channels": psd["channels"],
        "normalise": psd["normalise"],
        "include_corners": bool(psd["include_corners"]),
        "bands": tuple(psd["bands_cpp"]),
    }
