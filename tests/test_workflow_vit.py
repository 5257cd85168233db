"""The smoke DAG on a transformer family with its own kwargs (marked slow; CI runs it).

A tiny ViT at 16 px (``img_size: 16, patch_size: 4``, two blocks) runs through data -> source edit ->
pre-training -> artifacts -> fine-tuning -> PSDs -> tables and figures, on a cut-down smoke config (one
seed, one source, one artifact). Every checkpoint the pipeline writes (pre-trained and fine-tuned, from
``scratch`` and from the in-pipeline source) must hold the configured kwargs and reload: before the
architecture record, the scratch init ignored ``model.kwargs`` and the reload applied them, so the next
job could not read the checkpoint (issue 17). The ResNet family runs in tests/test_workflow_e2e.py.
"""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, snakemake, write_config

from shortcut_psd.models import arch_of, load_checkpoint

pytestmark = pytest.mark.slow

VIT = {
    "arch": "vit_tiny_patch16_224",
    "kwargs": {"img_size": 16, "patch_size": 4, "depth": 2, "embed_dim": 32, "num_heads": 2},
}


def test_smoke_dag_on_a_vit_with_kwargs(tmp_path):
    cfg = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    cfg.update(
        results=str(tmp_path / "r"),
        seeds=[0],
        model=VIT,
        inits={
            "scratch": {"kind": "scratch"},
            "photos": {"kind": "source", "source": "photos", "edit": "none"},
        },
        artifacts={"tag": {"kind": "tag"}},
    )
    cfg["datasets"] = {k: v for k, v in cfg["datasets"].items() if k != "clinical"}
    config = write_config(tmp_path / "vit.yaml", cfg)
    res = snakemake("--cores", "2", "--configfile", str(config), "-q", "--nolock", timeout=1800)
    assert res.returncode == 0, res.stdout[-5000:]
    r = tmp_path / "r"
    checkpoints = sorted(r.glob("pretrain/**/model.pt")) + sorted(r.glob("finetune/**/model.pt"))
    assert len(checkpoints) >= 5
    for path in checkpoints:
        model, meta = load_checkpoint(path)
        assert meta["arch"] == VIT["arch"] and meta["model_kwargs"] == VIT["kwargs"], path
        assert model.patch_embed.patch_size == (4, 4) and arch_of(model).kwargs == VIT["kwargs"]
    for table in ("auc", "psd_scalars", "alignment"):
        assert (r / "tables" / f"{table}.csv").stat().st_size > 0
    assert (r / "figures" / "gradient_psd.png").is_file()
