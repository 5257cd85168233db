"""Learning order (docs/DEFINITIONS.md, "Learning order"): schedule, snapshots, scalars, aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from shortcut_psd import dynamics as D
from shortcut_psd.errors import ConfigError
from shortcut_psd.train import train_classifier

PSD = {
    "window": "hann",
    "spectrum": "power",
    "channels": "mean",
    "normalise": "sum",
    "include_corners": False,
    "batch_size": 64,
    "bands_cpp": [0.1, 0.25],
}
RECIPE = {"epochs": 3, "batch_size": 32, "lr": 3e-3, "augment": "none", "patience": 0, "weight_decay": 0.0}


def band_data(n: int, seed: int, size: int = 16, band=(0.3, 0.45)) -> tuple[np.ndarray, np.ndarray]:
    """White-noise images; positives carry extra noise confined to ``band`` (cycles/pixel), nothing else."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0.0, 1.0, (n, 1, size, size))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    mask = (f >= band[0]) & (f <= band[1])
    extra = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(0.0, 1.0, (n, 1, size, size))) * mask))
    extra *= 2.0 / extra.std()
    x = x + extra * y[:, None, None, None]
    return (0.5 + 0.1 * x).astype(np.float32), y


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


def prep(x):
    return (x - 0.5) / 0.1


def test_schedule_is_step0_log_steps_and_epoch_ends():
    assert D.snapshot_steps(20, 3, 3) == [0, 1, 4, 19, 20, 40, 60]
    assert D.snapshot_steps(5, 2, 0) == [0, 5, 10]
    assert D.snapshot_steps(1, 2, 3) == [0, 1, 2]


@pytest.mark.parametrize(
    ("dyn", "key"),
    [
        ({"log_steps": -1}, "dynamics.log_steps"),
        ({"max_images": 0}, "dynamics.max_images"),
        ({"gap_threshold": 1.5}, "dynamics.gap_threshold"),
        ({"log_step": 2}, "dynamics.log_step"),
        ({"inits_natural": ["a"], "inits_medical": ["a"]}, "dynamics.inits_natural"),
    ],
)
def test_schedule_errors_name_the_key(dyn, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        D.check_dynamics(dyn)


def test_unknown_recipe_names_the_key():
    with pytest.raises(ConfigError, match=r"psd\.recipe"):
        D.recipe_options({**PSD, "recipe": "nope"})
    for name, spectrum, normalise in (("freqbias", "amplitude", "minmax"), ("fsr", "power", "sum")):
        opts, drop = D.recipe_options({**PSD, "recipe": name})
        assert (opts["window"], opts["spectrum"], opts["channels"], opts["normalise"], opts["rings"]) == (
            "none",
            spectrum,
            "mean",
            normalise,
            name,
        )
        assert drop and opts["include_corners"] and opts["bands"] == (0.1, 0.25)


def _ref_freqbias(g: np.ndarray) -> np.ndarray:
    """FreqBias (grad.py: cal_power, azimuthalAverage), one image (C, H, W), written out plainly: channel
    sum, |fft2| shifted, mean over rings floor(distance from ((W-1)/2, (H-1)/2)) but the first and last,
    min-max."""
    a = np.abs(np.fft.fftshift(np.fft.fft2(g.sum(0))))
    rows, cols = np.indices(a.shape)
    r = np.floor(np.hypot(cols - (a.shape[1] - 1) / 2, rows - (a.shape[0] - 1) / 2)).astype(int)
    prof = np.array([a[r == k].mean() for k in range(1, r.max())])
    return (prof - prof.min()) / (prof.max() - prof.min())


def _ref_fsr(g: np.ndarray) -> np.ndarray:
    """Fourier-Sensitivity-Regularization (regularizers.py: sfs; notebook: rotavg), one image (C, N, N):
    channel mean, unitary |fft2|^2 shifted, sums over rings round(distance from the zero frequency) but
    the zero frequency, normalised to sum 1."""
    p = np.abs(np.fft.fftshift(np.fft.fft2(g.mean(0), norm="ortho"))) ** 2
    offsets = np.arange(-(p.shape[0] // 2), p.shape[0] - p.shape[0] // 2)
    r = np.round(np.hypot(*np.meshgrid(offsets, offsets, indexing="ij")))
    out = np.array([p[r == k].sum() for k in np.unique(r)[1:]])
    return out / out.sum()


@pytest.mark.parametrize("size", [16, 32])
def test_recipe_spectra_follow_the_tools(size):
    """Each recipe equals a plain per-image numpy version of the tool's steps (docs/DEFINITIONS.md,
    "Learning order", bullet Recipes), and the recorder stores the mean of those curves."""
    rng = np.random.default_rng(size)
    g = rng.normal(size=(4, 3, size, size)).astype(np.float32)
    fb = D.RecipeSpectrum("freqbias", size, size)
    curves, spec2d = fb(torch.as_tensor(g))
    np.testing.assert_allclose(curves.numpy(), [_ref_freqbias(x) for x in g], atol=1e-5)
    assert fb.freqs.shape == (curves.shape[1],) and np.all(np.diff(fb.freqs) > 0) and fb.freqs[0] > 0
    assert spec2d.shape == (4, size, size)
    fsr = D.RecipeSpectrum("fsr", size, size)
    curves, spec2d = fsr(torch.as_tensor(g))
    assert curves[:, 0].abs().max() == 0 and np.allclose(fsr.freqs, np.arange(len(fsr.freqs)) / size)
    np.testing.assert_allclose(curves[:, 1:].numpy(), [_ref_fsr(x) for x in g], atol=1e-6)
    np.testing.assert_allclose(spec2d.sum(dim=(1, 2)).numpy(), 1, rtol=1e-5)
    x, y = band_data(8, 0, size=size)
    net = small_net(0)
    freqs, curve, _ = D.recipe_psd(net, x, y, prep, "fsr", batch_size=3)
    xp = prep(torch.as_tensor(x)).requires_grad_(True)
    nn.functional.cross_entropy(net.eval()(xp), torch.as_tensor(y), reduction="sum").backward()
    ref = np.mean([_ref_fsr(gi) for gi in xp.grad.numpy()], axis=0)
    np.testing.assert_allclose(curve[1:], ref, rtol=1e-4)


def _train(on_step, x, y):
    model = small_net(0)
    n = len(x) // 4 * 3
    model, _ = train_classifier(
        model, prep, (x[:n], y[:n]), (x[n:], y[n:]), recipe=RECIPE, seed=0, on_step=on_step
    )
    return model


def test_snapshots_do_not_disturb_training(tmp_path):
    x, y = band_data(192, 0)
    off = _train(None, x, y)
    steps = D.snapshot_steps(5, 3, 2)
    rec = D.SnapshotRecorder(
        steps, x[-32:], y[-32:], prep, {**PSD, "recipe": "fsr"}, eval_sets={"clean": (x[-48:], y[-48:])}
    )
    on = _train(rec, x, y)
    for (k, a), b in zip(off.state_dict().items(), on.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    rec.save(tmp_path / "dynamics.npz")
    snap = D.load_snapshots(tmp_path / "dynamics.npz")
    assert snap["steps"].tolist() == steps
    assert snap["curves"].shape == (len(steps), len(snap["freqs"]))
    assert snap["curves"][:, 0].max() == 0  # fsr: no DC
    np.testing.assert_allclose(snap["curves"].sum(1), 1, rtol=1e-6)
    assert snap["spectra2d"].shape[0] == len(snap["spectra2d_steps"]) == 3
    assert snap["auc_clean"].shape == (len(steps),)
    assert D.covers(tmp_path / "dynamics.npz", steps[:3])
    assert not D.covers(tmp_path / "dynamics.npz", [*steps, 999])


def test_scalars_known_values():
    steps = np.array([0, 1, 2, 4, 8])
    assert D.half_change_step(steps, [0, 0.1, 0.6, 0.9, 1.0]) == 2
    assert D.half_change_step(steps, [1, 0.9, 0.4, 0.1, 0.0]) == 2
    assert np.isnan(D.half_change_step(steps, [1, 1, 1, 1, 1]))
    assert D.first_exceeding(steps, [0, 0.05, 0.2, 0.3, 0.3], 0.1) == 2
    assert np.isnan(D.first_exceeding(steps, [0, 0, 0, 0, 0], 0.1))


def _per_model(n_seeds: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for init, shift in (("photos", 0.0), ("clinical", 5.0)):
        for s in range(n_seeds):
            rows.append({"phase": "finetune", "init": init, "artifact": "tag", "target": "t", "prevalence": "1",
                         "seed": s, "onset_high": 10 + shift + rng.normal()})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_seeds", [1, 2, 5])
def test_summary_and_test_follow_the_design(n_seeds):
    pm = _per_model(n_seeds)
    summ = D.summarise(pm, ci=0.95, steps={"finetune": (0.0, 40.0)})
    assert set(summ.columns) == set(D.SUMMARY_COLUMNS)
    row = summ[summ.init == "photos"].iloc[0]
    if n_seeds == 1:
        assert np.isnan(row["lo"]) and "seed variation absent" in row["resampled"]
    else:
        assert row["lo"] <= row["mean"] <= row["hi"]
        assert 0.0 <= row["lo"] and row["hi"] <= 40.0  # inside the steps' range (a t interval, clipped)
        if n_seeds == 2:  # t with 1 df: wider than the two seeds' own range
            vals = pm[pm.init == "photos"]["onset_high"]
            assert row["lo"] < vals.min() and vals.max() < row["hi"]
    tests = D.source_tests(pm, ["photos"], ["clinical"], alpha=0.05, permutations=2000, seed=0)
    t = tests.iloc[0]
    if n_seeds < 4:  # 2 / C(2n, n) > 0.05
        assert np.isnan(t["p"]) and "smallest attainable p" in t["note"]
    else:
        assert t["p"] <= 0.05 and t["difference"] < 0


def test_cli_dynamics_on_a_checkpoint_sequence(tmp_path):
    from shortcut_psd import models
    from shortcut_psd.cli import main

    x, y = band_data(24, 3)
    np.savez(tmp_path / "imgs.npz", images=np.clip(x, 0, 1), labels=y)
    paths = []
    for k in range(3):
        torch.manual_seed(k)
        model = models.create_model("test_resnet", num_classes=2, in_chans=1)
        paths.append(str(tmp_path / f"m{k}.pt"))
        models.save_checkpoint(
            paths[-1], model, {"preprocessing": {"in_chans": 1, "mean": [0.5], "std": [0.1]}}
        )
    out = tmp_path / "dyn.npz"
    argv = [
        "dynamics",
        "--checkpoints",
        *paths,
        "--steps",
        "0",
        "5",
        "10",
        "--images",
        str(tmp_path / "imgs.npz"),
    ]
    argv += ["--out", str(out), "--device", "cpu", "--recipe", "freqbias"]
    assert main(argv) == 0
    snap = D.load_snapshots(out)
    assert snap["steps"].tolist() == [0, 5, 10] and str(snap["recipe"]) == "freqbias"
    assert snap["curves"].min() >= 0 and snap["curves"].max() <= 1  # the mean of min-max normalised curves
    assert main([*argv[:6], "10", "5", *argv[8:]]) != 0  # steps must increase
    with pytest.raises(ConfigError, match="--steps"):
        D.checkpoint_sequence(paths, x, y, PSD, steps=[0, 5])


def test_snapshot_params_keep_stored_settings_when_they_cover_the_schedule(tmp_path):
    config = {"psd": PSD, "dynamics": {"log_steps": 3}, "inits": {}}
    req = D.snapshot_settings(config)
    rec = D.SnapshotRecorder(D.snapshot_steps(20, 2, 3), *band_data(8, 0), prep, PSD)
    rec.meta = {"steps_per_epoch": 20, "epochs": 2, "log_steps": 3}
    rec.rows = {s: {"freqs": np.arange(3.0), "curve": np.ones(3) / 3} for s in rec.steps}
    path = tmp_path / "dynamics.npz"
    D.write(path, rec, {"seed": 0}, req)
    # fewer log-spaced steps: [0, 1, 19, 20, 40] is covered by the stored [0, 1, 4, 19, 20, 40] -> no rerun
    fewer = D.snapshot_settings({**config, "dynamics": {"log_steps": 2}})
    kept = D.snapshot_params(fewer, [path])
    assert kept == req and repr(kept) == repr(req)  # same text too: Snakemake compares params as text
    # more steps are not covered; another PSD option changes every snapshot -> rerun
    more = D.snapshot_settings({**config, "dynamics": {"log_steps": 6}})
    assert D.snapshot_params(more, [path]) == more
    other = D.snapshot_settings({**config, "psd": {**PSD, "recipe": "fsr"}})
    assert D.snapshot_params(other, [path]) == other
    assert other["psd"]["recipe_options"] == D.RECIPES["fsr"] and "recipe_options" not in req["psd"]
    assert D.snapshot_params(req, [tmp_path / "missing.npz"]) == req
    view = D.requested_view(D.load_snapshots(path), 2)
    assert view["steps"].tolist() == [0, 1, 19, 20, 40]
    # a snapshot recorded under an older definition of the recipe retrains
    older = {**other, "psd": {**other["psd"], "recipe_options": {**D.RECIPES["fsr"], "window": "hann"}}}
    D.write(path, rec, {"seed": 0}, older)
    assert D.snapshot_params(other, [path]) == other != older


def test_split_modules_keep_every_name():
    """dynamics.py re-exports the modules it was split into: the same objects under the old names."""
    from shortcut_psd import dynamics_record, dynamics_scalars, dynamics_schedule, dynamics_summary

    for name in D.__all__:
        assert hasattr(D, name), name
    assert D.SnapshotRecorder is dynamics_record.SnapshotRecorder
    assert D.model_scalars is dynamics_scalars.model_scalars
    assert D.snapshot_params is dynamics_schedule.snapshot_params
    assert D.summarise is dynamics_summary.summarise


def test_centroid_figure_counts_each_seed_once():
    """Fine-tuning's centroid curve is the shared clean model's: an artifact's own p = 0 model (photon noise)
    shares the seeds, so taking it too would double the units the band's t interval treats as independent."""
    import matplotlib

    matplotlib.use("Agg")
    from shortcut_psd import dynamics_plots

    rng = np.random.default_rng(0)
    freqs = np.linspace(0.05, 0.5, 8)

    def snap(phase, artifact, seed):
        return {"phase": phase, "init": "photos", "artifact": artifact, "prevalence": "0", "seed": seed,
                "steps": np.arange(4), "freqs": freqs, "curves": rng.random((4, 8))}  # fmt: skip

    snaps = [snap("finetune", a, s) for a in ("none", "photon_noise") for s in (0, 1)]
    snaps += [snap("pretrain", "none", s) for s in (0, 1)]
    fig = dynamics_plots.centroid_curves(snaps, ci=0.95)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert labels == ["photos (n=2)", "photos (n=2)"], labels
