"""Published weights (RadImageNet's and torchvision's ResNet-50 layouts), the architecture record, inspection.

The checkpoints are written here in exactly the published layouts from randomly initialised torchvision
models (no download): the timm model built by a ``file`` init must give the torchvision model's outputs.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from shortcut_psd import weights as W
from shortcut_psd.cli import main as cli_main
from shortcut_psd.config import load_yaml, prepare
from shortcut_psd.errors import ConfigError, ModelError
from shortcut_psd.models import (
    Arch,
    Preprocessing,
    arch_of,
    build_init,
    create_model,
    load_checkpoint,
    save_checkpoint,
)
from shortcut_psd.study import make_init, pretrain_source

TINY_VIT = {"img_size": 16, "patch_size": 4, "depth": 2, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial batch-norm statistics and affine parameters (fresh ones are 0/1 and hide key mix-ups)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def tv_resnet50():
    torch.manual_seed(5)
    return _randomise_bn(torchvision.models.resnet50(weights=None), 5)


def _radimagenet_file(tv: nn.Module, path):
    """RadImageNet's PyTorch release: a module whose ``backbone`` is ``Sequential(*children()[:9])``."""

    class Backbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(*list(tv.children())[:9])

    state = Backbone().state_dict()
    assert "backbone.0.weight" in state and "backbone.4.0.conv1.weight" in state
    assert "backbone.1.running_mean" in state and not any(k.startswith("backbone.9") for k in state)
    torch.save(state, path)
    return nn.Sequential(*list(tv.children())[:9]).eval()


def _file_init(path, layout: str, in_chans_data: int = 3, **spec):
    """``build_init`` of a ``file`` init of the weights at ``path`` in ``layout`` (more init keys: ``spec``),
    with a fresh 2-class head: ``(model, preprocessing, info)``."""
    return build_init(
        {"kind": "file", "path": str(path), "layout": layout, **spec},
        arch=None,
        num_classes=2,
        in_chans_data=in_chans_data,
    )


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_head(model.forward_features(x), pre_logits=True)


def test_radimagenet_layout_loads_and_matches_torchvision(tmp_path, tv_resnet50):
    path = tmp_path / "RadImageNet-ResNet50_notop.pth"
    reference = _radimagenet_file(tv_resnet50, path)
    torch.manual_seed(0)
    model, prep, info = _file_init(path, "radimagenet")
    model.eval()
    assert info["arch"] == "resnet50" and info["layout"] == "radimagenet"
    assert info["missing"] == [] and info["unexpected"] == []
    x01 = torch.rand(2, 3, 64, 64)
    # RadImageNet's own input: an OpenCV (BGR) read of 0-255 values, scaled as (x - 127.5) * 2 / 255
    bgr255 = x01.flip(1) * 255
    theirs = reference((bgr255 - 127.5) * 2 / 255).flatten(1)
    ours = _features(model, prep(x01))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.5, 0.5, 0.5) and prep.channel_order == "bgr"
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    # grey images: replicated, so the channel order cannot matter
    grey = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(prep(grey), (grey.expand(-1, 3, -1, -1) - 0.5) / 0.5)
    assert model.get_classifier().out_features == 2


def test_torchvision_layout_loads_and_matches_torchvision(tmp_path, tv_resnet50):
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(tv_resnet50.state_dict(), path)
    model, prep, info = _file_init(path, "torchvision", in_chans_data=1)
    model.eval()
    assert info["arch"] == "resnet50" and sorted(info["dropped_head"]) == ["fc.bias", "fc.weight"]
    x01 = torch.rand(2, 3, 64, 64)
    mean = torch.tensor(W.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(W.IMAGENET_STD).view(1, 3, 1, 1)
    trunk = nn.Sequential(*list(tv_resnet50.children())[:9]).eval()
    with torch.no_grad():
        theirs = trunk((x01 - mean) / std).flatten(1)
    torch.testing.assert_close(_features(model, prep(x01)), theirs, rtol=1e-4, atol=1e-4)
    assert prep.mean == W.IMAGENET_MEAN and prep.std == W.IMAGENET_STD and prep.channel_order == "rgb"
    # the ResNet depth comes from the keys
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    _, _, info18 = _file_init(tmp_path / "resnet18.pth", "torchvision")
    assert info18["arch"] == "resnet18"


def test_a_file_in_another_layout_names_missing_and_unexpected_keys(tmp_path, tv_resnet50):
    torch.save(tv_resnet50.state_dict(), tmp_path / "tv.pth")
    with pytest.raises(ModelError, match=r"layout 'radimagenet'.*missing \(.*\).*unexpected \(.*\)") as err:
        _file_init(tmp_path / "tv.pth", "radimagenet", arch="resnet50")
    assert "bn1.running_mean" in str(err.value)  # named on both sides: missing (timm) and foreign (file)
    _radimagenet_file(tv_resnet50, tmp_path / "rad.pth")
    with pytest.raises(ModelError, match=r"missing \(.*\).*unexpected \(backbone\.") as err:
        _file_init(tmp_path / "rad.pth", "torchvision", arch="resnet50")
    state = torch.load(tmp_path / "rad.pth", weights_only=True)
    state.pop("backbone.4.0.conv1.weight")
    state["backbone.9.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "rad_bad.pth")
    with pytest.raises(ModelError, match=r"layer1\.0\.conv1\.weight.*backbone\.9\.weight"):
        _file_init(tmp_path / "rad_bad.pth", "radimagenet")
    with pytest.raises(ConfigError, match="unknown weights layout 'keras'"):
        _file_init(tmp_path / "rad.pth", "keras")


def test_keras_h5_is_recognised_and_refused(tmp_path):
    h5 = tmp_path / "RadImageNet-ResNet50_notop.h5"
    h5.write_bytes(W.HDF5_MAGIC + b"\0" * 64)
    with pytest.raises(ModelError, match="Keras/HDF5.*layout: radimagenet"):
        _file_init(h5, "radimagenet")
    assert W.inspect_weights(h5)["layout"] == "keras-h5"


def test_inspect_weights_command(tmp_path, tv_resnet50, capsys):
    _radimagenet_file(tv_resnet50, tmp_path / "rad.pth")
    torch.save(tv_resnet50.state_dict(), tmp_path / "tv.pth")
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "odd.pt")
    assert cli_main(["inspect-weights", str(tmp_path / "rad.pth")]) == 0
    out = capsys.readouterr().out
    assert "layout: radimagenet" in out and "architecture: resnet50" in out and "loads: yes" in out
    assert "bgr" in out
    assert cli_main(["inspect-weights", str(tmp_path / "tv.pth")]) == 0
    out = capsys.readouterr().out
    assert "layout: torchvision" in out and "loads: yes" in out
    # a wrong layout named on the command line: does not load, and says which keys
    assert cli_main(["inspect-weights", str(tmp_path / "tv.pth"), "--layout", "radimagenet"]) == 1
    out = capsys.readouterr().out
    assert "loads: no" in out and "missing" in out
    assert cli_main(["inspect-weights", str(tmp_path / "odd.pt")]) == 1
    assert "layout: unknown" in capsys.readouterr().out
    # a shortcut-psd checkpoint
    model = create_model("test_resnet", num_classes=2, in_chans=1)
    save_checkpoint(tmp_path / "model.pt", model, {"preprocessing": Preprocessing(1, 0.5, 0.25)})
    assert cli_main(["inspect-weights", str(tmp_path / "model.pt"), "--json"]) == 0
    assert '"layout": "shortcut-psd-checkpoint"' in capsys.readouterr().out


def test_inspect_weights_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    assert cli_main(["inspect-weights", str(tmp_path / "evil.pt")]) == 2
    assert not marker.exists()


# -- the architecture record ------------------------------------------------------------------------------
def test_arch_record_reserved_kwargs_and_roundtrip():
    rec = Arch("vit_tiny_patch16_224", 1, 2, TINY_VIT)
    assert Arch.from_meta(rec.to_meta()) == rec
    with pytest.raises(ModelError, match="in_chans and num_classes come from the data"):
        Arch("resnet50", 3, 2, {"in_chans": 1})
    model = rec.create()
    assert arch_of(model) == rec
    model.reset_classifier(5)
    assert arch_of(copy.deepcopy(model)).num_classes == 5


@pytest.mark.parametrize("kind", ["scratch", "source", "file"])
def test_every_init_builds_the_configured_kwargs_and_reloads(tmp_path, kind):
    """A ViT with its own image and patch size: trained, saved, reloaded by the next job (the bug of #17:
    the scratch init ignored model.kwargs, the checkpoint recorded them, the reload failed)."""
    from shortcut_psd.data.store import ImageSet  # noqa: F401 - the data model the study functions take

    rng = np.random.default_rng(0)
    images = rng.random((12, 1, 16, 16), dtype=np.float32)
    arch = "vit_tiny_patch16_224"
    checkpoint = None
    spec = {"kind": kind}
    if kind == "source":
        src = Arch(arch, 1, 3, TINY_VIT).create()
        save_checkpoint(tmp_path / "src.pt", src, {"preprocessing": Preprocessing(1, 0.5, 0.2)})
        checkpoint = str(tmp_path / "src.pt")
        spec = {"kind": "source", "source": "x", "edit": "none"}
    elif kind == "file":
        torch.save(Arch(arch, 1, 3, TINY_VIT).create().state_dict(), tmp_path / "w.pt")
        spec = {"kind": "file", "path": str(tmp_path / "w.pt"), "in_chans": 1, "mean": [0.5], "std": [0.2]}
    model, prep, info = make_init(
        spec,
        checkpoint=checkpoint,
        arch=arch,
        model_kwargs=TINY_VIT,
        num_classes=2,
        clean_train_images=images,
        seed=0,
        device="cpu",
    )
    assert info["arch_record"]["kwargs"] == TINY_VIT and model.patch_embed.patch_size == (4, 4)
    assert model(prep(torch.from_numpy(images))).shape == (12, 2)
    save_checkpoint(tmp_path / "model.pt", model, {"preprocessing": prep})
    again, meta = load_checkpoint(tmp_path / "model.pt")
    assert meta["model_kwargs"] == TINY_VIT and arch_of(again) == arch_of(model)
    with pytest.raises(ModelError, match="but the model was built with"):
        save_checkpoint(tmp_path / "bad.pt", model, {"preprocessing": prep, "model_kwargs": {}})


def test_pretrain_records_the_built_arch():
    from shortcut_psd.data.store import ImageSet

    rng = np.random.default_rng(0)
    n = 24
    ds = ImageSet(
        name="src",
        images=rng.random((n, 1, 16, 16), dtype=np.float32),
        labels=np.arange(n) % 3,
        split=np.array(["train"] * 16 + ["val"] * 8),
        group=np.arange(n).astype(str),
        classes=["a", "b", "c"],
    )
    recipe = {"epochs": 1, "batch_size": 8, "lr": 0.001, "augment": "none", "patience": 0}
    model, meta, _ = pretrain_source(
        ds, arch="vit_tiny_patch16_224", model_kwargs=TINY_VIT, recipe=recipe, seed=0, progress=False
    )
    assert meta["model_kwargs"] == TINY_VIT and meta["in_chans"] == 1 and meta["num_classes"] == 3


# -- config ------------------------------------------------------------------------------------------------
def test_config_refuses_a_size_the_model_cannot_take_and_names_the_fix(repo):
    cfg = load_yaml(repo / "configs" / "smoke.yaml")
    cfg["model"] = {"arch": "vit_tiny_patch16_224", "kwargs": {"depth": 2}}
    with pytest.raises(
        ConfigError, match=r"image.size.*Set model\.kwargs: \{depth: 2, img_size: 16, patch_size: 8\}"
    ):
        prepare(copy.deepcopy(cfg), workdir=repo)
    cfg["model"]["kwargs"] = TINY_VIT
    prepare(copy.deepcopy(cfg), workdir=repo)


def test_config_file_inits_with_layouts(repo, tmp_path, tv_resnet50):
    cfg = load_yaml(repo / "configs" / "smoke.yaml")
    _radimagenet_file(tv_resnet50, tmp_path / "rad.pth")
    cfg["inits"] = {"rad": {"kind": "file", "path": str(tmp_path / "rad.pth"), "layout": "radimagenet"}}
    prepare(copy.deepcopy(cfg), workdir=repo)  # no mean/std needed: the layout brings them
    cfg["inits"]["rad"]["layout"] = "timm"
    with pytest.raises(ConfigError, match=r"inits\.rad\.mean.*layout: torchvision \| radimagenet"):
        prepare(copy.deepcopy(cfg), workdir=repo)
    cfg["inits"]["rad"]["layout"] = "caffe"
    with pytest.raises(ConfigError, match="layout.*Allowed values: timm, torchvision, radimagenet"):
        prepare(copy.deepcopy(cfg), workdir=repo)
