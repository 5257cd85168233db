"""Cost of learning-order snapshots: one fine-tuning job's work with snapshots on vs off (CPU).

The default config's fine-tuning (config.yaml: timm ``test_resnet``, 1 grey channel, 32 px, 600 training
images, batch 128, 4 epochs, AdamW, cosine, augment flip) on synthetic images of that shape, 400
validation and 400 test images per set, followed by the job's scoring of the clean, iid and ood test sets
(``study.evaluate``, 1000 bootstrap resamples); the snapshot schedule and subset sizes are the default
config's ``dynamics`` section (``log_steps`` 3, ``max_images`` 32, ``max_eval_images`` 128; 8 snapshots).
The job's ~7 s of Python/torch start-up is left out, so the ratio is an upper bound on what snapshots add
to the job's wall time. Median (and best) of interleaved repeats after a warm-up, 1 torch thread as in
the workflow (``threads: 1``).

    .venv/bin/python benchmarks/bench_dynamics.py           # about 1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_dynamics.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import json
import time

import _util
import numpy as np
import torch

from shortcut_psd import dynamics, study
from shortcut_psd.models import Preprocessing, create_model
from shortcut_psd.train import train_classifier

RECIPE = {"epochs": 4, "batch_size": 128, "lr": 2e-3, "augment": "flip", "patience": 3}
PSD = {"window": "hann", "spectrum": "power", "channels": "mean", "normalise": "sum", "include_corners": False,
       "batch_size": 256, "bands_cpp": [0.1, 0.25], "recipe": "default"}  # fmt: skip
DYN = {"log_steps": 3, "max_images": 32, "max_eval_images": 128}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# {_util.machine()}")
    _util.wait_quiet()
    print(f"# {_util.loadavg()} at start")
    rng = np.random.default_rng(0)
    size = 16 if args.quick else 32
    n_train, n_val, n_test = (200, 100, 100) if args.quick else (600, 400, 400)
    x = rng.random((n_train + n_val + n_test, 1, size, size), dtype=np.float32)
    y = rng.integers(0, 2, len(x))
    xt, yt = x[:n_train], y[:n_train]
    xv, yv = x[n_train : n_train + n_val], y[n_train : n_train + n_val]
    xs, ys = x[n_train + n_val :], y[n_train + n_val :]
    sets = {
        "train": (xt, yt),
        "val": (xv, yv),
        "test_clean": (xs, ys),
        "test_iid": (xs, ys),
        "test_ood": (xs, ys),
    }
    prep = Preprocessing(1, [0.5], [0.29])
    recorded = {}

    def job(snapshots: bool):
        torch.manual_seed(0)
        model = create_model("test_resnet", num_classes=2, in_chans=1)
        rec = None
        if snapshots:
            rec = dynamics.recorder_for(
                n_train, RECIPE, (xs, ys), prep, PSD, DYN, seed=0, device="cpu",
                eval_sets={k: sets[f"test_{k}"] for k in ("clean", "iid", "ood")},
            )  # fmt: skip
        model, _ = train_classifier(model, prep, (xt, yt), (xv, yv), recipe=RECIPE, seed=0, on_step=rec)
        study.evaluate(model, prep, sets, evaluation={"bootstrap": 1000}, seed=0, device="cpu")
        if rec is not None:
            recorded["n"] = len(rec.rows)
            recorded["seconds"] = rec.seconds

    job(False)
    job(True)  # warm-up
    t_all = time.perf_counter()
    cpu: dict[str, float] = {}
    med, best = _util.interleaved({"off": lambda: job(False), "on": lambda: job(True)}, args.repeats, cpu)
    ratio = med["on"] / med["off"]
    print(
        f"# {_util.loadavg()} at end; {recorded['n']} snapshots, {recorded['seconds']:.2f} s in the last run"
    )
    print(f"job without snapshots: median {med['off']:.2f} s (best {best['off']:.2f})")
    print(f"job with snapshots:    median {med['on']:.2f} s (best {best['on']:.2f})")
    print(f"ratio on/off: {ratio:.3f} (best/best {best['on'] / best['off']:.3f}); target <= 1.25: "
          f"{'met' if ratio <= 1.25 else 'MISSED'}")  # fmt: skip
    print(
        f"process CPU time: off {cpu['off']:.2f} s, on {cpu['on']:.2f} s, ratio {cpu['on'] / cpu['off']:.3f}"
    )
    print(f"# total {time.perf_counter() - t_all:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"machine": _util.machine(), "median": med, "best": best, "cpu": cpu, "ratio": ratio},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
