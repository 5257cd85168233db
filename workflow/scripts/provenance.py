"""Write the resolved config (schema defaults filled in) and the package versions that made the results."""

import _common

log = _common.start(snakemake, "provenance")  # noqa: F821

import platform  # noqa: E402
from importlib import metadata  # noqa: E402

import yaml  # noqa: E402

from shortcut_psd.io import write_text  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
versions = {}
for dist in (
    "shortcut-psd",
    "torch",
    "timm",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
    "pandas",
    "snakemake",
):
    try:
        versions[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        versions[dist] = "not installed"
doc = {"config": dict(sm.params.config), "python": platform.python_version(), "packages": versions}
write_text(sm.output[0], yaml.safe_dump(doc, sort_keys=False))
log.info("wrote %s", sm.output[0])
_common.finish(log)
