"""Collect every job's metrics and spectra into the study's tables (CSV)."""

import _common

log = _common.start(snakemake, "aggregate")  # noqa: F821

from shortcut_psd import aggregate as agg  # noqa: E402
from shortcut_psd.io import write_csv  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
st = P.stats
timer = _common.ready()
records = agg.load_metrics(P.results, P.inits, P.targets, P.artifacts, P.prevalences, P.seeds)
auc = agg.auc_table(records)
log.info("AUC table: %d scored models", len(auc))
summary, replicates = agg.auc_summary(records, n_boot=st["bootstrap"], seed=st["seed"], ci=st["ci"])
tests = agg.init_tests(
    auc, replicates, n_resamples=st["permutations"], seed=st["seed"], ci=st["ci"], alpha=st["alpha"]
)
scalars, persistence = agg.psd_tables(P.results, P.conditions, P.inits, P.targets, P.seeds)
per_seed = agg.alignment_per_seed(
    P.results, P.inits, P.artifacts, P.targets, P.seeds, {int(k): int(v) for k, v in P.artifact_seeds.items()}
)
alignment, windows, association = agg.alignment_tables(
    per_seed,
    auc,
    summary,
    ci=st["ci"],
    n_permutations=st["permutations"],
    n_boot=st["bootstrap"],
    seed=st["seed"],
    alpha=st["alpha"],
)
datasets = agg.dataset_table(sm.input.cards)
tables = {
    "auc": auc,
    "auc_summary": summary,
    "init_tests": tests,
    "psd_scalars": scalars,
    "psd_persistence": persistence,
    "alignment": alignment,
    "alignment_windows": windows,
    "alignment_association": association,
    "datasets": datasets,
}
for name, frame in tables.items():
    write_csv(sm.output[name], frame.round(6))
    log.info("wrote %s (%d rows)", sm.output[name], len(frame))
if not association.empty:
    log.info("alignment vs gap (question 3):\n%s", association.to_string(index=False))
log.info("aggregation took %s", timer)
