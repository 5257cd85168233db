"""Collect every job's metrics and spectra into the study's tables (CSV)."""

import _common

log = _common.start(snakemake, "aggregate")  # noqa: F821

from shortcut_psd import aggregate as agg  # noqa: E402
from shortcut_psd.io import write_csv  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
st = P.stats
auc = agg.auc_table(P.results, P.conditions, P.artifacts)
log.info("AUC table: %d scored models", len(auc))
summary = agg.auc_summary(auc, ci=st["ci"])
tests = agg.init_tests(auc, n_resamples=st["permutations"], seed=st["seed"])
scalars, persistence = agg.psd_tables(P.results, P.conditions, P.inits, P.targets, P.seeds)
_, alignment, correlation = agg.alignment_tables(
    P.results,
    auc,
    P.inits,
    P.artifacts,
    P.targets,
    P.seeds,
    ci=st["ci"],
    n_permutations=st["permutations"],
    n_boot=st["bootstrap"],
    seed=st["seed"],
)
datasets = agg.dataset_table(sm.input.cards)
tables = {
    "auc": auc,
    "auc_summary": summary,
    "init_tests": tests,
    "psd_scalars": scalars,
    "psd_persistence": persistence,
    "alignment": alignment,
    "alignment_correlation": correlation,
    "datasets": datasets,
}
for name, frame in tables.items():
    write_csv(sm.output[name], frame.round(6))
    log.info("wrote %s (%d rows)", sm.output[name], len(frame))
if not correlation.empty:
    log.info("alignment vs gap:\n%s", correlation.to_string(index=False))
