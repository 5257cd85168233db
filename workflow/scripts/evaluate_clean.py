"""Score one clean (p = 0) model on every artifact's clean, iid and ood test sets."""

import _common

log = _common.start(snakemake, "evaluate_clean_model")  # noqa: F821

from shortcut_psd import study  # noqa: E402
from shortcut_psd.io import write_json  # noqa: E402
from shortcut_psd.models import Preprocessing, load_checkpoint, pick_device  # noqa: E402

sm = snakemake  # noqa: F821
P = sm.params
w = sm.wildcards
seed = int(w.seed)
model, meta = load_checkpoint(sm.input.model, pick_device(P.device))
prep = Preprocessing.from_dict(meta["preprocessing"])
for artifact, images, out in zip(P.artifacts, sm.input.images, sm.output.metrics, strict=True):
    sets = study.protocol_sets(study.load_condition_data(images, 0.0), 0.0, seed)
    identity = {"init": w.init, "target": w.target, "artifact": artifact, "prevalence": 0.0, "seed": seed}
    metrics = study.evaluate(
        model, prep, sets, evaluation=P.evaluation, seed=seed, device=P.device, identity=identity
    )
    write_json(out, metrics)
    s = metrics["sets"]
    log.info(
        "%s: AUC clean %.3f, ood %.3f, gap %.3f", artifact, s["clean"]["auc"], s["ood"]["auc"], metrics["gap"]
    )
