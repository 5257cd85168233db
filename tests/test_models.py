"""models.py: creation, preprocessing, inits, heads, checkpoints (no network, tiny timm models)."""

from __future__ import annotations

import builtins
import pickle

import numpy as np
import pytest
import timm
import torch
from test_train import one_torch_thread  # noqa: F401 - one_torch_thread: autouse

from shortcut_psd.errors import ConfigError, ModelError
from shortcut_psd.models import (
    Preprocessing,
    build_init,
    create_model,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    with_fresh_head,
)

ARCH = "test_resnet"


def _backbone(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _same_backbone(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = _backbone(a.state_dict()), _backbone(b.state_dict())
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- create_model / device ------------------------------------------------------------------------------
def test_create_model_sets_classes_and_channels():
    m = create_model(ARCH, num_classes=3, in_chans=1)
    assert m(torch.rand(2, 1, 32, 32)).shape == (2, 3)


def test_unknown_arch_names_it_and_suggests():
    with pytest.raises(ModelError, match="unknown timm architecture 'resnet5'.*resnet50"):
        create_model("resnet5", num_classes=2, in_chans=1)


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            pick_device("cuda")


# -- preprocessing --------------------------------------------------------------------------------------
def test_preprocessing_grey_to_rgb_and_normalises():
    prep = Preprocessing(3, (0.1, 0.2, 0.3), (0.5, 0.25, 0.1))
    x = torch.rand(2, 1, 4, 5)
    y = prep(x)
    assert y.shape == (2, 3, 4, 5)
    for c, (m, s) in enumerate(zip(prep.mean, prep.std, strict=True)):
        torch.testing.assert_close(y[:, c], (x[:, 0] - m) / s)


def test_preprocessing_scalar_broadcast_roundtrip_and_errors():
    prep = Preprocessing(1, 0.5, 0.25)
    assert prep.mean == (0.5,) and prep.std == (0.25,)
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    with pytest.raises(ModelError, match="3 input channels but the images have 2"):
        Preprocessing(3, 0.5, 0.2)(torch.rand(1, 2, 4, 4))
    with pytest.raises(ModelError, match="takes 1 input channels but the images have 3"):
        prep(torch.rand(1, 3, 4, 4))
    with pytest.raises(ModelError, match="divide them by 255"):
        Preprocessing(3, (123.7, 116.3, 103.5), (58.4, 57.1, 57.4))
    with pytest.raises(ModelError, match="positive std"):
        Preprocessing(1, 0.5, 0.0)


# -- scratch --------------------------------------------------------------------------------------------
def test_scratch_init_uses_data_stats_and_caller_seed():
    torch.manual_seed(3)
    m1, prep, info = build_init(
        {"kind": "scratch"}, arch=ARCH, num_classes=2, in_chans_data=1, image_mean_std=(0.4, 0.2)
    )
    torch.manual_seed(3)
    m2, _, _ = build_init(
        {"kind": "scratch"}, arch=ARCH, num_classes=2, in_chans_data=1, image_mean_std=(0.4, 0.2)
    )
    assert prep == Preprocessing(1, (0.4,), (0.2,))
    assert info["kind"] == "scratch" and info["in_chans"] == 1
    assert all(
        torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
    )
    with pytest.raises(ConfigError, match="image_mean_std"):
        build_init({"kind": "scratch"}, arch=ARCH, num_classes=2, in_chans_data=1)
    with pytest.raises(ConfigError, match="unknown init kind 'imagenet'"):
        build_init({"kind": "imagenet"}, arch=ARCH, num_classes=2, in_chans_data=1)


# -- checkpoints ----------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_is_weights_only(tmp_path):
    torch.manual_seed(0)
    model = create_model(ARCH, num_classes=4, in_chans=1).eval()
    prep = Preprocessing(1, 0.3, 0.2)
    path = tmp_path / "model.pt"
    save_checkpoint(
        path, model, {"preprocessing": prep, "classes": ("a", "b", "c", "d"), "seed": np.int64(2)}
    )
    assert not list(tmp_path.glob(".*"))  # no temporary left behind
    raw = torch.load(path, weights_only=True)
    assert raw["meta"]["arch"] == ARCH and raw["meta"]["seed"] == 2
    loaded, meta = load_checkpoint(path)
    assert meta["num_classes"] == 4 and meta["in_chans"] == 1 and meta["classes"] == ["a", "b", "c", "d"]
    assert Preprocessing.from_dict(meta["preprocessing"]) == prep
    assert not loaded.training
    x = torch.rand(3, 1, 32, 32)
    torch.testing.assert_close(loaded(x), model(x))


def test_checkpoint_meta_must_be_plain(tmp_path):
    model = create_model(ARCH, num_classes=2, in_chans=1)
    with pytest.raises(ModelError, match="only plain types"):
        save_checkpoint(
            tmp_path / "m.pt", model, {"preprocessing": Preprocessing(1, 0.5, 0.2), "x": object()}
        )
    with pytest.raises(ModelError, match="preprocessing"):
        save_checkpoint(tmp_path / "m.pt", model, {})
    assert not (tmp_path / "m.pt").exists()


def test_missing_and_damaged_checkpoint_name_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ModelError, match=f"{missing}.*does not exist"):
        load_checkpoint(missing)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(ModelError, match=f"{damaged}.*damaged"):
        load_checkpoint(damaged)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match="not a shortcut-psd checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


class _Evil:
    """Unpickling this calls open(marker, 'w'): a stand-in for arbitrary code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": {"fc.weight": torch.zeros(1)}, "x": _Evil(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    assert not marker.exists()
    with pytest.raises(ModelError, match="refused to load"):
        load_checkpoint(path)
    spec = {"kind": "file", "path": str(path), "arch": ARCH, "mean": 0.5, "std": 0.25}
    with pytest.raises(ModelError, match="refused to load"):
        build_init(spec, arch=None, num_classes=2, in_chans_data=1)
    timm_spec = {"kind": "timm", "name": "test_resnet.r160_in1k", "path": str(path)}
    with pytest.raises(ModelError, match="refused to load"):
        build_init(timm_spec, arch=None, num_classes=2, in_chans_data=1)
    assert not marker.exists()


# -- source init ----------------------------------------------------------------------------------------
def test_source_init_keeps_preprocessing_and_replaces_head(tmp_path):
    torch.manual_seed(1)
    pre = create_model(ARCH, num_classes=7, in_chans=1)
    prep = Preprocessing(1, 0.45, 0.22)
    save_checkpoint(tmp_path / "src.pt", pre, {"preprocessing": prep})
    model, got, info = build_init(
        {"kind": "source", "checkpoint": str(tmp_path / "src.pt")},
        arch=ARCH,
        num_classes=2,
        in_chans_data=1,
        image_mean_std=(0.9, 0.1),
    )
    assert got == prep and info["arch"] == ARCH
    assert model.get_classifier().out_features == 2
    assert _same_backbone(model, pre)


# -- timm init ------------------------------------------------------------------------------------------
def test_timm_init_offline_raises_model_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ModelError, match=r"could not download.*resnet18\.a1_in1k.*HF_HUB_OFFLINE.*'file'"):
        build_init({"kind": "timm", "name": "resnet18.a1_in1k"}, arch=None, num_classes=2, in_chans_data=1)


def test_timm_init_unknown_name():
    with pytest.raises(ModelError, match="unknown timm architecture 'resnet18x'"):
        build_init({"kind": "timm", "name": "resnet18x"}, arch=None, num_classes=2, in_chans_data=1)


def test_timm_init_preprocessing_from_pretrained_cfg(monkeypatch):
    real = timm.create_model

    def fake(name, pretrained=False, **kwargs):  # "hub" weights without the hub
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", fake)
    model, prep, info = build_init(
        {"kind": "timm", "name": "test_resnet.r160_in1k"}, arch=None, num_classes=2, in_chans_data=1
    )
    assert prep == Preprocessing(3, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert info["arch"] == ARCH and model(prep(torch.rand(2, 1, 32, 32))).shape == (2, 2)


def test_timm_init_from_local_file_needs_no_network(tmp_path):
    torch.manual_seed(5)
    donor = create_model(ARCH, num_classes=9, in_chans=3)
    torch.save(donor.state_dict(), tmp_path / "hub.pt")
    spec = {"kind": "timm", "name": "test_resnet.r160_in1k", "path": str(tmp_path / "hub.pt")}
    model, prep, info = build_init(spec, arch=None, num_classes=2, in_chans_data=1)
    assert _same_backbone(model, donor) and model.fc.out_features == 2
    assert prep.mean == (0.5, 0.5, 0.5) and info["path"] == str(tmp_path / "hub.pt")
    with pytest.raises(ModelError, match="does not exist"):
        build_init({**spec, "path": str(tmp_path / "none.pt")}, arch=None, num_classes=2, in_chans_data=1)


# -- file init ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def donor():
    torch.manual_seed(11)
    return create_model(ARCH, num_classes=5, in_chans=3)


def _file_spec(path, **kw):
    return {
        "kind": "file",
        "path": str(path),
        "arch": ARCH,
        "in_chans": 3,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        **kw,
    }


@pytest.mark.parametrize("wrap", ["raw", "state_dict", "module_prefix"])
def test_file_init_loads_backbone_and_fresh_head(tmp_path, donor, wrap):
    state = donor.state_dict()
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 90}
    elif wrap == "module_prefix":
        state = {"model": {f"module.{k}": v for k, v in state.items()}}
    torch.save(state, tmp_path / "w.pt")
    torch.manual_seed(0)
    model, prep, info = build_init(_file_spec(tmp_path / "w.pt"), arch=None, num_classes=2, in_chans_data=1)
    assert _same_backbone(model, donor)
    assert model.get_classifier().out_features == 2
    assert sorted(info["dropped_head"]) == ["fc.bias", "fc.weight"]
    assert info["missing"] == [] and info["unexpected"] == []
    assert prep.in_chans == 3 and prep.mean == (0.485, 0.456, 0.406)
    assert model(prep(torch.rand(2, 1, 32, 32))).shape == (2, 2)


def test_file_init_missing_keys_strict_and_lenient(tmp_path, donor):
    state = dict(donor.state_dict())
    state.pop("layer1.0.conv1.weight")
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(
        ModelError, match=r"1 backbone keys missing \(layer1\.0\.conv1\.weight\).*extra\.weight"
    ):
        build_init(_file_spec(tmp_path / "w.pt", strict=True), arch=None, num_classes=2, in_chans_data=1)
    model, _, info = build_init(_file_spec(tmp_path / "w.pt"), arch=None, num_classes=2, in_chans_data=1)
    assert info["missing"] == ["layer1.0.conv1.weight"] and info["unexpected"] == ["extra.weight"]
    assert torch.equal(model.layer1[0].conv2.weight, donor.layer1[0].conv2.weight)


def test_file_init_wrong_architecture_and_bad_specs(tmp_path, donor):
    torch.save(donor.state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelError, match="tensor shapes differ"):
        build_init(_file_spec(tmp_path / "w.pt", in_chans=1), arch=None, num_classes=2, in_chans_data=1)
    other = {f"backbone.{k}": v for k, v in donor.state_dict().items()}
    torch.save(other, tmp_path / "prefixed.pt")
    with pytest.raises(ModelError, match="only 0 of .* backbone tensors match"):
        build_init(_file_spec(tmp_path / "prefixed.pt"), arch=None, num_classes=2, in_chans_data=1)
    with pytest.raises(ModelError, match="does not exist"):
        build_init(_file_spec(tmp_path / "absent.pt"), arch=None, num_classes=2, in_chans_data=1)
    with pytest.raises(ConfigError, match=r"\['mean', 'std'\]"):
        build_init(
            {"kind": "file", "path": str(tmp_path / "w.pt"), "arch": ARCH},
            arch=None,
            num_classes=2,
            in_chans_data=1,
        )
    with pytest.raises(ModelError, match="takes 1 input channels but the images have 3"):
        torch.save(create_model(ARCH, num_classes=2, in_chans=1).state_dict(), tmp_path / "grey.pt")
        build_init(
            _file_spec(tmp_path / "grey.pt", in_chans=1, mean=0.5, std=0.2),
            arch=None,
            num_classes=2,
            in_chans_data=3,
        )


# -- heads ----------------------------------------------------------------------------------------------
def test_with_fresh_head_is_seeded_and_leaves_original(donor):
    before = {k: v.clone() for k, v in donor.state_dict().items()}
    rng_before = torch.get_rng_state()
    a, b, c = (with_fresh_head(donor, 2, s) for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.equal(a.fc.weight, b.fc.weight) and not torch.equal(a.fc.weight, c.fc.weight)
    assert a.fc.out_features == 2 and donor.fc.out_features == 5
    assert _same_backbone(a, donor)
    assert all(torch.equal(before[k], v) for k, v in donor.state_dict().items())
