"""Build one data set (built-in or user format) into data.npz, with its card and contact sheet."""

import _common

log = _common.start(snakemake, "prepare_dataset")  # noqa: F821

from shortcut_psd.data import save_imageset  # noqa: E402
from shortcut_psd.data.builtin import BUILTINS  # noqa: E402
from shortcut_psd.data.card import contact_sheet, write_card  # noqa: E402
from shortcut_psd.data.formats import user_spec  # noqa: E402
from shortcut_psd.data.user import load_user_dataset  # noqa: E402

sm = snakemake  # noqa: F821
spec = dict(sm.params.spec)
image = sm.params.image
timer = _common.ready()
if spec["format"] == "builtin":
    builder = BUILTINS[spec["builtin"]]
    log.info(
        "building built-in data set '%s' at %d px with %s", spec["builtin"], image["size"], spec["params"]
    )
    ds = builder(image_size=image["size"], seed=sm.params.seed, **spec["params"])
    if image["channels"] == 3:
        import numpy as np

        ds.images = np.repeat(ds.images, 3, axis=1)
else:
    log.info("loading user data set '%s' (%s) from %s", sm.wildcards.dataset, spec["format"], spec["path"])
    user = user_spec(spec)  # the format registry maps the config's entry to the loader's spec
    ds = load_user_dataset(
        user,
        image_size=image["size"],
        channels=image["channels"],
        seed=sm.params.seed,
        val_fraction=spec.get("val_fraction", 0.15),
        test_fraction=spec.get("test_fraction", 0.15),
    )
ds.name = sm.wildcards.dataset
counts = ds.counts()
log.info("built %d images of %s in %s; per split and class: %s", len(ds.images), ds.image_size, timer, counts)
save_imageset(sm.output.data, ds)
write_card(ds, sm.output.card, sm.output.card_md)
contact_sheet(ds, sm.output.sheet)
log.info("done in %s", timer)
_common.finish(log)
