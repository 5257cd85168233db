"""Draw the report's figures from the tables and the saved spectra: the figures registered for rule figures
(shortcut_psd.layout.outputs; functions and study object in shortcut_psd.plots), each from the files this
job was given (snakemake.input, looked up by kind) to the PNG and PDF the rule names for it."""

import _common

log = _common.start(snakemake, "figures")  # noqa: F821

from pathlib import Path  # noqa: E402

from shortcut_psd import layout, plots  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
data = plots.FigureData(layout.Inputs(sm.input), dict(sm.params.items()))
for fig in layout.outputs(rule="figures"):
    plots.save(fig.produce(data), Path(sm.output[f"{fig.name}_png"]).with_suffix(""))
    log.info("wrote %s (png, pdf)", fig.name)
log.info("figures written to %s", Path(sm.output[0]).parent)
_common.finish(log)
