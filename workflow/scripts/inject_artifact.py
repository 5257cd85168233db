"""Every target image with and without one artifact, and the artifact's radial PSD.

The PSD takes the config's ``psd`` options (channels included), spreads over the images' groups (cluster
bootstrap) and records the mean curve under every window of ``spectral.WINDOWS`` (``window_curves``)."""

import _common

log = _common.start(snakemake, "inject_artifact")  # noqa: F821

import numpy as np  # noqa: E402

from shortcut_psd.artifacts import apply_artifact  # noqa: E402
from shortcut_psd.config import psd_options  # noqa: E402
from shortcut_psd.data import load_imageset  # noqa: E402
from shortcut_psd.gradients import artifact_psd  # noqa: E402
from shortcut_psd.io import save_npz  # noqa: E402
from shortcut_psd.spectral import WINDOWS  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
spec = dict(P.spec)
kind = spec.pop("kind")
timer = _common.ready()
ds = load_imageset(sm.input.data)
log.info(
    "artifact '%s' (%s, %s) on %d images of '%s'", sm.wildcards.artifact, kind, spec, len(ds.images), ds.name
)
clean, artifacted = apply_artifact(kind, ds.images, seed=int(P.seed), **spec)
save_npz(
    sm.output.images,
    clean=clean,
    artifacted=artifacted,
    labels=ds.labels,
    split=ds.split,
    group=ds.group,
    kind=np.asarray(kind),
)
psd = P.psd
result = artifact_psd(clean, artifacted, groups=ds.group, also_windows=WINDOWS, **psd_options(psd))
result.save(sm.output.psd)
diff = artifacted - clean
log.info(
    "difference std %.4f, max |diff| %.4f; artifact PSD scalars %s; took %s",
    diff.std(),
    np.abs(diff).max(),
    result.scalars,
    timer,
)
_common.finish(log)
