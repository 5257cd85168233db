"""Score the shared clean (p = 0) model on the clean, iid and ood test sets of every artifact that shares
it (its clean images are the raw data), each from the artifact images of the training seed's artifact
seed; ``prevalence_realised`` records the model's training counts (no artifacted image at p = 0)."""

import _common

log = _common.start(snakemake, "evaluate_clean_model")  # noqa: F821

from shortcut_psd import study  # noqa: E402
from shortcut_psd.io import write_json  # noqa: E402
from shortcut_psd.models import Preprocessing, load_checkpoint, pick_device  # noqa: E402

_common.ready()  # set-up done: the job's work starts here

sm = snakemake  # noqa: F821
P = sm.params
w = sm.wildcards
seed = int(w.seed)
model, meta = load_checkpoint(sm.input.model, pick_device(P.device))
prep = Preprocessing.from_dict(meta["preprocessing"])
for artifact, images, out in zip(P.artifacts, sm.input.images, sm.output.metrics, strict=True):
    data = study.load_condition_data(images, 0.0)
    sets = study.protocol_sets(data, 0.0, seed, max_train_images=P.max_train_images)
    identity = _common.condition(sm, artifact, 0.0)
    metrics = _common.score_condition(
        sm, model, prep, data, sets, identity, max_train_images=P.max_train_images
    )
    write_json(out, metrics)
    s = metrics["sets"]
    log.info(
        "%s: AUC clean %.3f, ood %.3f, gap %.3f", artifact, s["clean"]["auc"], s["ood"]["auc"], metrics["gap"]
    )
_common.finish(log)
