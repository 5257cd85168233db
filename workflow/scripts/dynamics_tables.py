"""Learning order: per-model scalars, summaries over seeds, the natural vs medical test, and figures
(docs/DEFINITIONS.md, "Learning order"; code: shortcut_psd.dynamics)."""

import _common

log = _common.start(snakemake, "dynamics")  # noqa: F821

from pathlib import Path  # noqa: E402

from shortcut_psd import dynamics as D  # noqa: E402
from shortcut_psd import dynamics_plots  # noqa: E402
from shortcut_psd.io import save_figure, write_csv  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
P = sm.params
dyn = D.check_dynamics(P.dynamics)
st = P.stats
entries = [dict(e, path=p) for e, p in zip(P.entries, list(sm.input.snapshots), strict=True)]
per_model, snaps = D.collect(
    entries,
    log_steps=int(dyn["log_steps"]),
    gap_threshold=float(dyn["gap_threshold"]),
    auc_threshold=float(dyn["auc_threshold"]),
)
log.info("%d of %d models have snapshots", len(per_model), len(entries))
n_boot, seed, ci = int(st["bootstrap"]), int(st["seed"]), float(st["ci"])
if len(per_model):
    summary = D.summarise(per_model, n_boot=n_boot, seed=seed, ci=ci)
    tests = D.source_tests(
        per_model,
        dyn["inits_natural"],
        dyn["inits_medical"],
        alpha=float(st.get("alpha", 0.05)),
        permutations=int(st["permutations"]),
        seed=seed,
    )
else:
    import pandas as pd

    summary, tests = pd.DataFrame(columns=D.SUMMARY_COLUMNS), pd.DataFrame(columns=D.TEST_COLUMNS)
write_csv(sm.output.per_model, per_model)
write_csv(sm.output.summary, summary)
write_csv(sm.output.tests, tests)


def paths(name):
    return [sm.output[f"{name}_png"], str(Path(sm.output[f"{name}_png"]).with_suffix(".pdf"))]


save_figure(dynamics_plots.heatmap(snaps), paths("dynamics_heatmap"), dpi=150)
save_figure(
    dynamics_plots.centroid_curves(snaps, n_boot=n_boot, seed=seed, ci=ci),
    paths("dynamics_centroid"),
    dpi=150,
)
save_figure(
    dynamics_plots.shortcut_timing(snaps, n_boot=n_boot, seed=seed, ci=ci),
    paths("dynamics_shortcut"),
    dpi=150,
)
