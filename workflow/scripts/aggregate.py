"""Collect every job's metrics and spectra into the study's tables (CSV): the tables registered for rule
aggregate (shortcut_psd.layout.outputs; functions and study object in shortcut_psd.aggregate), each from the
files this job was given (snakemake.input, looked up by kind) to the file the rule names for it."""

import _common

log = _common.start(snakemake, "aggregate")  # noqa: F821

from shortcut_psd import aggregate as agg  # noqa: E402
from shortcut_psd import layout  # noqa: E402
from shortcut_psd.io import write_csv  # noqa: E402

sm = snakemake  # noqa: F821
timer = _common.ready()
study = agg.Aggregation(layout.Inputs(sm.input), dict(sm.params.items()))
for table in layout.outputs(rule="aggregate"):
    frame = table.produce(study)
    write_csv(sm.output[table.name], frame.round(6))
    log.info("wrote %s (%d rows)", sm.output[table.name], len(frame))
association = study.alignment[2]
if not association.empty:
    log.info("alignment vs gap (question 3):\n%s", association.to_string(index=False))
log.info("aggregation took %s", timer)
_common.finish(log)
