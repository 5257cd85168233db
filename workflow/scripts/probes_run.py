"""Behavioural probes (band-masking reliance, Fourier heat map) of one init before fine-tuning (through a
seeded linear probe on the target) and of every fine-tuned model of that init, target and seed, in one job.

The probe images are the same for every seed (seed ``probes.seed``) and so are the group resamples of the
AUCs (seed ``stats.seed``): the seeds x groups bootstrap of the report crosses them (docs/DEFINITIONS.md,
"Probes")."""

import _common

log = _common.start(snakemake, "probes")  # noqa: F821

import numpy as np  # noqa: E402

from shortcut_psd import probes  # noqa: E402
from shortcut_psd.data import load_imageset  # noqa: E402
from shortcut_psd.io import save_npz, write_json  # noqa: E402
from shortcut_psd.models import Preprocessing, load_checkpoint, pick_device  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
opts = probes.probe_options(P.probes)
seed = int(sm.wildcards.seed)
device = pick_device(P.device)
timer = _common.ready()
target = load_imageset(sm.input.data)
idx = target.indices("test")
x, y, groups = probes.probe_images(
    target.images[idx], target.labels[idx], target.group[idx], opts["max_images"], opts["seed"]
)
h, w = x.shape[-2:]
bands = probes.resolve_bands(opts["bands"], h, w, opts["n_bands"])
common = {"n_boot": int(P.stats["bootstrap"]), "boot_seed": int(P.stats["seed"]), "device": device}

train_x, train_y = target.subset("train")
model, prep, info = _common.make_init(sm, num_classes=target.num_classes, clean_train_images=train_x)
probe, probe_info = probes.linear_probe(
    model,
    prep,
    train_x,
    train_y,
    target.num_classes,
    seed=seed,
    max_images=opts["probe_train_images"],
    l2=opts["probe_l2"],
    batch_size=opts["batch_size"],
    device=device,
)
log.info("linear probe of '%s': %s", sm.wildcards.init, probe_info)
labels, results = (
    ["pretrained"],
    [probes.probe_model(probe, prep, x, y, groups, bands, opts, heatmap=True, **common)],
)
heat = set(probes.heatmap_labels(P.labels, opts["heatmap_models"]))
for label, path in zip(P.labels, sm.input.models, strict=True):
    m, meta = load_checkpoint(path, device)
    pp = Preprocessing.from_dict(meta["preprocessing"])
    results.append(probes.probe_model(m, pp, x, y, groups, bands, opts, heatmap=label in heat, **common))
    labels.append(label)
    log.info(
        "%s: AUC clean %.3f, reliance %s",
        label,
        results[-1]["bands"]["auc_clean"],
        np.round(results[-1]["bands"]["reliance"], 3).tolist(),
    )
save_npz(sm.output.npz, **probes.stack_results(labels, results))
write_json(
    sm.output.json,
    {
        "init": sm.wildcards.init,
        "target": sm.wildcards.target,
        "seed": seed,
        "labels": labels,
        "bands_cpp": [[lo, hi if np.isfinite(hi) else None] for lo, hi in bands.tolist()],
        "n_images": len(y),
        "n_groups": len(set(groups.tolist())),
        "linear_probe": probe_info,
        "options": opts,
        "seconds": float(str(timer).split()[0]),
    },
)
log.info("%d models probed in %s", len(labels), timer)
_common.finish(log)
