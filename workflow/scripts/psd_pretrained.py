"""Gradient PSD of an init before fine-tuning: its backbone with K fresh linear heads, averaged.

The spread is over the images' groups (cluster bootstrap), and the mean curve is also recorded under every
window of ``spectral.WINDOWS`` (``window_curves``), from the same gradients."""

import _common

log = _common.start(snakemake, "psd_pretrained")  # noqa: F821

from shortcut_psd import study  # noqa: E402
from shortcut_psd.data import load_imageset  # noqa: E402
from shortcut_psd.spectral import WINDOWS  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
seed = int(sm.wildcards.seed)
timer = _common.ready()
target = load_imageset(sm.input.data)
model, prep, info = _common.make_init(
    sm, num_classes=target.num_classes, clean_train_images=target.subset("train")[0]
)
heads = study.pretrained_heads(model, target.num_classes, P.psd["head_seeds"])
x, y, groups = study.psd_images(target, P.psd, seed)
log.info(
    "init '%s' (%s): gradient PSD on %d '%s' images of %d groups, %d fresh heads",
    sm.wildcards.init,
    info.get("arch"),
    len(x),
    P.psd["split"],
    len(set(groups)),
    len(heads),
)
result = study.model_psd(heads, prep, x, y, P.psd, device=P.device, groups=groups, also_windows=WINDOWS)
result.save(sm.output.psd)
log.info("scalars %s in %s", result.scalars, timer)
_common.finish(log)
