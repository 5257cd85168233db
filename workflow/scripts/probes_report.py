"""The probes' tables and figures: band reliance per model and band, the three views related per (init,
target), and each artifact's own band next to its shortcut gap (docs/DEFINITIONS.md, "Probes"): those
registered for rule probes_report (shortcut_psd.layout.outputs; functions and study object in
shortcut_psd.probe_tables), from the files this job was given (snakemake.input, looked up by kind)."""

import _common

log = _common.start(snakemake, "probes_report")  # noqa: F821

from shortcut_psd import layout  # noqa: E402
from shortcut_psd import probe_tables as pt  # noqa: E402
from shortcut_psd.io import save_figure, write_csv  # noqa: E402

sm = snakemake  # noqa: F821
timer = _common.ready()
study = pt.ProbeStudy(layout.Inputs(sm.input), dict(sm.params.items()))
for out in layout.outputs(rule="probes_report"):
    if out.kind == "table":
        write_csv(sm.output[out.name], out.produce(study))
    else:
        save_figure(out.produce(study), [sm.output[key] for key in out.keys])
log.info("%d probe runs -> tables and figures in %s", len(study.runs), timer)
_common.finish(log)
