"""Every figure writes a real PNG and PDF from small synthetic frames; missing columns fail clearly."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from shortcut_psd import plots as P

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FREQS = np.linspace(0, 0.5, 17)
INITS = ("imagenet", "radimagenet")


def _curve(slope, noise=0.0):
    return (1 + FREQS * 40) ** slope * (1 + noise)


def spectra_df():
    rows = []
    for label, slope in (("photos", -2.0), ("clinical", -2.5), ("photos/whiten", 0.0)):
        for f, pw in zip(FREQS, _curve(slope), strict=True):
            rows.append({"label": label, "freq": f, "power": pw, "lo": 0.8 * pw, "hi": 1.2 * pw})
    return pd.DataFrame(rows)


def grad_df():
    rows = []
    for init, slope in zip(INITS, (-1.0, -2.0), strict=True):
        for f, pw in zip(FREQS, _curve(slope), strict=True):
            rows.append({"init": init, "freq": f, "power": pw, "lo": 0.9 * pw, "hi": 1.1 * pw})
    return pd.DataFrame(rows)


def art_df():
    rows = []
    for art, slope in (("photon_noise", 0.3), ("nlm_denoise", -0.5)):
        for f, pw in zip(FREQS, _curve(slope), strict=True):
            rows.append({"artifact": art, "freq": f, "power": pw})
    return pd.DataFrame(rows)


def before_after_df():
    g = grad_df()
    pre = g.assign(stage="pre-trained")
    post = g.assign(stage="fine-tuned", power=g.power * 1.3, lo=g.lo * 1.3, hi=g.hi * 1.3)
    scratch = g[g.init == INITS[0]].assign(init="scratch", stage="fine-tuned")  # no pre-trained curve
    return pd.concat([pre, post, scratch], ignore_index=True)


def auc_df():
    rows = []
    for art in ("photon_noise", "band_noise"):
        for k, init in enumerate(INITS):
            for p in (0.0, 0.2, 0.5, 1.0):
                for ts, m in (("clean", 0.85), ("iid", 0.85 + 0.1 * p), ("ood", 0.85 - 0.6 * p - 0.05 * k)):
                    rows.append({"init": init, "artifact": art, "prevalence": p, "test_set": ts,
                                 "auc_mean": m, "auc_lo": m - 0.05, "auc_hi": m + 0.05})  # fmt: skip
    return pd.DataFrame(rows)


def align_df():
    rows = []
    for i, init in enumerate(INITS):
        for j, art in enumerate(("photon_noise", "nlm_denoise", "tag")):
            g = 0.1 * i + 0.2 * j
            rows.append({"init": init, "artifact": art, "alignment": 0.5 + 0.1 * j + 0.05 * i,
                         "gap_mean": g, "gap_lo": g - 0.05, "gap_hi": g + 0.07})  # fmt: skip
    return pd.DataFrame(rows)


def heat_df():
    return align_df()[["init", "artifact", "gap_mean"]]


def examples():
    rng = np.random.default_rng(0)
    clean = rng.random((4, 16, 16)).astype(np.float32)
    return {"clean": clean, "photon_noise": np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)}


CASES = {
    "spectra": lambda: P.plot_spectra(spectra_df()),
    "spectra_noband": lambda: P.plot_spectra(spectra_df().drop(columns=["lo", "hi"])),
    "gradient_psd": lambda: P.plot_gradient_psd(grad_df(), art_df()),
    "gradient_psd_alone": lambda: P.plot_gradient_psd(grad_df()),
    "before_after": lambda: P.plot_before_after(before_after_df()),
    "auc_vs_prevalence": lambda: P.plot_auc_vs_prevalence(auc_df()),
    "alignment_vs_gap": lambda: P.plot_alignment_vs_gap(
        align_df(), "within-artifact ρ = 0.71 [0.20, 0.95], p = 0.012"
    ),
    "alignment_no_stats": lambda: P.plot_alignment_vs_gap(align_df()),
    "examples": lambda: P.plot_examples(examples(), "Artifacts", difference=("clean", "photon_noise")),
    "heatmap": lambda: P.plot_heatmap(heat_df(), "init", "artifact", "gap_mean", "Shortcut gap"),
}


def test_agg_backend():
    assert matplotlib.get_backend().lower() == "agg"


@pytest.mark.parametrize("name", list(CASES))
def test_figure_writes_png_and_pdf(name, tmp_path):
    fig = CASES[name]()
    assert isinstance(fig, Figure)
    title = fig._suptitle.get_text() if fig._suptitle else " ".join(ax.get_title() for ax in fig.axes)
    assert title.strip(), "every figure has a title"
    png, pdf = P.save(fig, tmp_path / name)
    assert png == tmp_path / f"{name}.png" and pdf == tmp_path / f"{name}.pdf"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary files left"
    assert fig.number not in plt.get_fignums(), "save closes the figure"


REQUIRED = {
    "plot_spectra": (P.plot_spectra, spectra_df, ("label", "freq", "power")),
    "plot_gradient_psd": (P.plot_gradient_psd, grad_df, ("init", "freq", "power", "lo", "hi")),
    "plot_before_after": (
        P.plot_before_after,
        before_after_df,
        ("init", "stage", "freq", "power", "lo", "hi"),
    ),
    "plot_auc_vs_prevalence": (
        P.plot_auc_vs_prevalence,
        auc_df,
        ("init", "artifact", "prevalence", "test_set", "auc_mean", "auc_lo", "auc_hi"),
    ),
    "plot_alignment_vs_gap": (
        P.plot_alignment_vs_gap,
        align_df,
        ("init", "artifact", "alignment", "gap_mean", "gap_lo", "gap_hi"),
    ),
}


@pytest.mark.parametrize("name", list(REQUIRED))
def test_missing_column_raises_clear_value_error(name):
    fn, build, cols = REQUIRED[name]
    for col in cols:
        with pytest.raises(ValueError, match=f"missing column.*'{col}'"):
            fn(build().drop(columns=col))


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="artifact"):
        P.plot_gradient_psd(grad_df(), art_df().drop(columns="artifact"))
    with pytest.raises(ValueError, match="stage"):
        P.plot_before_after(before_after_df().replace({"stage": {"fine-tuned": "finetuned"}}))
    with pytest.raises(ValueError, match="test_set"):
        P.plot_auc_vs_prevalence(auc_df().replace({"test_set": {"ood": "reversed"}}))
    with pytest.raises(ValueError, match="gap_mean"):
        P.plot_heatmap(heat_df(), "init", "artifact", "gap", "t")
    with pytest.raises(ValueError, match="aggregate"):
        P.plot_heatmap(pd.concat([heat_df(), heat_df()]), "init", "artifact", "gap_mean", "t")
    with pytest.raises(ValueError, match="shape"):
        P.plot_examples({"x": np.zeros((2, 3, 4, 4))}, "t")
    with pytest.raises(ValueError, match="difference"):
        P.plot_examples({"x": np.zeros((2, 4, 4))}, "t", difference=("x", "y"))
    with pytest.raises(ValueError, match="aggregate seeds"):
        P.plot_gradient_psd(pd.concat([grad_df(), grad_df()]))
    with pytest.raises(ValueError, match="aggregate seeds"):
        P.plot_auc_vs_prevalence(pd.concat([auc_df(), auc_df()]))
    with pytest.raises(ValueError, match="empty"):
        P.plot_spectra(spectra_df().iloc[:0])
