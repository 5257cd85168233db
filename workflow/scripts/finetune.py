"""Fine-tune one init on one target under the shortcut protocol, once per prevalence p, and score each.

Rule ``finetune`` passes the shared clean model (p = 0, artifact ``none``, on the raw target images);
the shortcut rules pass every prevalence of one artifact: every p > 0, and p = 0 first for an artifact
whose clean images are not the raw data (its own p = 0 model, trained on its clean images; at p = 0 the
protocol puts the artifact on no image). Each p starts again from the same init (same seed, same fresh
head), so a model does not depend on which other prevalences share its job. ``finetune.max_train_images``
is applied before the protocol (``study.protocol_sets``); the realised prevalence is recorded in
``metrics.json`` (``prevalence_realised``).
"""

import _common

log = _common.start(snakemake, "finetune")  # noqa: F821

from shortcut_psd import dynamics, study  # noqa: E402
from shortcut_psd import models as M  # noqa: E402
from shortcut_psd.config import config_hash  # noqa: E402
from shortcut_psd.io import write_csv, write_json  # noqa: E402
from shortcut_psd.models import save_checkpoint  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
P = sm.params
w = sm.wildcards
seed = int(w.seed)
init = P.init


def as_list(files):
    """One output is a string, several are a list: the clean rule has one model, the shortcut rule many."""
    return [files] if isinstance(files, str) else list(files)


outputs = zip(
    P.prevalences,
    as_list(sm.output.model),
    as_list(sm.output.history),
    as_list(sm.output.metrics),
    as_list(sm.output.dynamics),
    strict=True,
)
data = None
for p_name, model_path, history_path, metrics_path, dynamics_path in outputs:
    p = float(p_name)
    timer = _common.Timer()
    if data is None:
        data = study.load_condition_data(sm.input.data, p)
    cap = int(P.recipe.get("max_train_images", 0))
    sets = study.protocol_sets(data, p, seed, max_train_images=cap)
    model, prep, info = _common.make_init(
        sm, num_classes=2, clean_train_images=data["clean"][data["split"] == "train"]
    )
    log.info("p = %g: init '%s': %s", p, w.init, {k: v for k, v in info.items() if k != "source_meta"})
    # learning order (docs/DEFINITIONS.md, "Learning order"): snapshots of the gradient PSD and test AUCs
    snapshots = dynamics.recorder_for(
        len(sets["train"][1]),
        P.recipe,
        sets["test_clean"],
        prep,
        P.snapshots["psd"],
        P.snapshots["dynamics"],
        seed=seed,
        device=M.pick_device(P.device),
        eval_sets={k: sets[f"test_{k}"] for k in ("clean", "iid", "ood")},
    )
    model, history = study.finetune_condition(
        model, prep, sets, recipe=P.recipe, seed=seed, device=P.device, on_step=snapshots
    )
    identity = _common.condition(sm, P.artifact, p)
    metrics = _common.score_condition(sm, model, prep, data, sets, identity, max_train_images=cap)
    metrics["best_epoch"] = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    metrics["epochs_run"] = len(history)
    meta = {  # arch, model_kwargs, in_chans, num_classes: from the model's own record (models.Arch)
        "classes": ["negative", "positive"],
        "preprocessing": prep.to_dict(),
        "init": {"name": w.init, **init["spec"]},
        "condition": identity,
        "recipe": dict(P.recipe),
        "config_hash": config_hash({"init": init, "recipe": P.recipe, **identity}),
    }
    write_csv(history_path, history)
    write_json(metrics_path, metrics)
    save_checkpoint(model_path, model, meta)
    dynamics.write(dynamics_path, snapshots, identity, P.snapshots)
    s = metrics["sets"]
    log.info(
        "p = %g: AUC clean %.3f, iid %.3f, ood %.3f, gap %.3f (best epoch %d of %d) in %s",
        p,
        s["clean"]["auc"],
        s["iid"]["auc"],
        s["ood"]["auc"],
        metrics["gap"],
        metrics["best_epoch"],
        len(history),
        timer,
    )
_common.finish(log)
