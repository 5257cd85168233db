"""Pre-train the model on one (edited) source data set."""

import _common

log = _common.start(snakemake, "pretrain")  # noqa: F821

from shortcut_psd import dynamics, study  # noqa: E402
from shortcut_psd import models as M  # noqa: E402
from shortcut_psd.config import config_hash  # noqa: E402
from shortcut_psd.data import load_imageset  # noqa: E402
from shortcut_psd.io import write_csv  # noqa: E402
from shortcut_psd.models import save_checkpoint  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
seed = int(sm.wildcards.seed)
timer = _common.ready()
ds = load_imageset(sm.input.data)
snapshots = dynamics.SourceSnapshots(
    ds, P.recipe, P.snapshots["psd"], P.snapshots["dynamics"], seed=seed, device=M.pick_device(P.device)
)
model, meta, history = study.pretrain_source(
    ds,
    arch=P.arch,
    model_kwargs=P.model_kwargs,
    recipe=P.recipe,
    seed=seed,
    device=P.device,
    on_step=snapshots,
)
meta["config_hash"] = config_hash(
    {
        "arch": P.arch,
        "kwargs": P.model_kwargs,
        "recipe": P.recipe,
        "seed": seed,
        "source": sm.wildcards.source,
        "edit": sm.wildcards.edit,
    }
)
write_csv(sm.output.history, history)
save_checkpoint(sm.output.model, model, meta)
dynamics.write(
    sm.output.dynamics,
    snapshots.recorder,
    {"source": sm.wildcards.source, "edit": sm.wildcards.edit, "seed": seed},
    P.snapshots,
)
log.info(
    "pre-trained in %s; best val loss %.4f; last epoch %s",
    timer,
    meta["best_val_loss"],
    history.iloc[-1].to_dict(),
)
_common.finish(log)
