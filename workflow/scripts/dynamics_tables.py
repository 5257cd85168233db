"""Learning order: per-model scalars, summaries over seeds, the natural vs medical test, and figures
(docs/DEFINITIONS.md, "Learning order"; code: shortcut_psd.dynamics): the tables and figures registered for
rule dynamics (shortcut_psd.layout.outputs), from one snapshot file per trained model."""

import _common

log = _common.start(snakemake, "dynamics")  # noqa: F821

from shortcut_psd import layout  # noqa: E402
from shortcut_psd.aggregate_dynamics import LearningOrder  # noqa: E402
from shortcut_psd.io import save_figure, write_csv  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
P = sm.params
entries = [dict(e, path=p) for e, p in zip(P.entries, list(sm.input.snapshots), strict=True)]
study = LearningOrder(entries, dict(P.items()))
log.info("%d of %d models have snapshots", len(study.per_model), len(entries))
for out in layout.outputs(rule="dynamics"):
    if out.kind == "table":
        write_csv(sm.output[out.name], out.produce(study))
    else:
        save_figure(out.produce(study), [sm.output[key] for key in out.keys], dpi=150)
_common.finish(log)
