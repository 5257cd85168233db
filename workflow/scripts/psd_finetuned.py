"""Gradient PSD of every fine-tuned model of one init, target and seed (each with its own head)."""

import _common

log = _common.start(snakemake, "psd_finetuned")  # noqa: F821

from shortcut_psd import study  # noqa: E402
from shortcut_psd.data import load_imageset  # noqa: E402
from shortcut_psd.models import Preprocessing, load_checkpoint, pick_device  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
seed = int(sm.wildcards.seed)
timer = _common.ready()
target = load_imageset(sm.input.data)
x, y, groups = study.psd_images(target, P.psd, seed)
by_label = dict(zip(P.labels, sm.input.models, strict=True))
for out in sm.output.psd:
    # outputs are .../{artifact}/p{p}/seed{seed}/psd.npz
    parts = out.split("/")
    label = f"{parts[-4]}/{parts[-3]}"
    model, meta = load_checkpoint(by_label[label], pick_device(P.device))
    prep = Preprocessing.from_dict(meta["preprocessing"])
    result = study.model_psd([model], prep, x, y, P.psd, device=P.device, groups=groups)
    result.save(out)
    log.info("%s: centroid %.4f cycles/pixel", label, result.scalars["centroid_cpp"])
log.info("%d fine-tuned models in %s", len(sm.output.psd), timer)
_common.finish(log)
