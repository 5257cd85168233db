"""Apply a frequency-domain edit to a source data set and record the edited images' radial spectrum."""

import _common

log = _common.start(snakemake, "edit_source")  # noqa: F821

from shortcut_psd.config import psd_options  # noqa: E402
from shortcut_psd.data import load_imageset, save_imageset  # noqa: E402
from shortcut_psd.edits import apply_edit  # noqa: E402
from shortcut_psd.gradients import image_psd  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
spec = dict(sm.params.edit)
kind = spec.pop("kind")
psd_opts = sm.params.psd
ds = load_imageset(sm.input.data)
log.info(
    "source '%s': %d images; edit '%s' (%s) with %s", ds.name, len(ds.images), sm.wildcards.edit, kind, spec
)
ds.images = apply_edit(kind, ds.images, **spec)
ds.meta = {**ds.meta, "edit": {"name": sm.wildcards.edit, "kind": kind, **spec}}
save_imageset(sm.output.data, ds)
train_images, _ = ds.subset("train")
result = image_psd(train_images, **psd_options(psd_opts))
result.save(sm.output.spectrum)
log.info("spectrum of %d training images: %s", result.n, result.scalars)
_common.finish(log)
