"""The probes' tables and figures: band reliance per model and band, the three views related per (init,
target), and each artifact's own band next to its shortcut gap (docs/DEFINITIONS.md, "Probes")."""

import _common

log = _common.start(snakemake, "probes_report")  # noqa: F821

from shortcut_psd import probe_tables as pt  # noqa: E402
from shortcut_psd.io import save_figure, write_csv  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
st = P.stats
timer = _common.ready()
runs = {}
for path in sm.input.probes:
    # .../probes/{init}/{target}/seed{seed}/probes.npz
    parts = str(path).split("/")
    runs[(parts[-4], parts[-3], int(parts[-2].removeprefix("seed")))] = pt.load_probes(path)
reliance = pt.band_reliance_table(runs, ci=st["ci"], seed=st["seed"])
write_csv(sm.output.probe_band_reliance, reliance)
relations = pt.relations_table(pt.relation_views(P.results, runs))
write_csv(sm.output.probe_relations, relations)
own = pt.artifact_band_table(
    P.results,
    runs,
    artifacts=P.artifacts,
    artifact_seeds={int(k): int(v) for k, v in P.artifact_seeds.items()},
    ci=st["ci"],
    seed=st["seed"],
)
write_csv(sm.output.probe_artifact_band, own)
save_figure(pt.plot_band_reliance(reliance), [sm.output.band_png, sm.output.band_pdf])
save_figure(pt.plot_heatmaps(runs), [sm.output.heat_png, sm.output.heat_pdf])
log.info("%d probe runs -> tables and figures in %s", len(runs), timer)
