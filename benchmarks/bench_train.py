"""Training throughput: the project's ``train_classifier`` vs a plain PyTorch loop on in-memory tensors.

Same model (timm ``test_resnet``, 1 grey channel, 2 classes, the same initial weights), images (32 px),
batch, optimiser (AdamW, lr 2e-3, weight decay 0.05), cosine schedule, epochs, and one validation pass per
epoch in both. ``train_classifier`` runs with ``augment: none`` and ``patience: 0`` so that it does the
same work as the plain loop; a third row shows it with the default config's ``augment: flip``. Throughput
is training images per second over whole calls (validation included), median of interleaved repeats after
a warm-up, with 1 and with 2 torch threads.

    .venv/bin/python benchmarks/bench_train.py           # about 1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_train.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import time

import _util
import numpy as np
import torch
import torch.nn.functional as F

from shortcut_psd.models import Preprocessing, create_model
from shortcut_psd.train import train_classifier

LR, WD = 2e-3, 0.05


def plain_loop(model, prep, xt, yt, xv, yv, *, epochs: int, bs: int, seed: int = 0):
    """What one would write by hand: shuffle, forward, loss, backward, step; validate each epoch."""
    torch.use_deterministic_algorithms(False)  # undo train_classifier's CPU default, which is global
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    n = len(xt)
    steps = n // bs + (1 if n % bs > 1 else 0)
    total = steps * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
    )
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            loss = F.cross_entropy(model(prep(xt[idx])), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(prep(xv[i : i + 2 * bs])) for i in range(0, len(xv), 2 * bs)])
            float(F.cross_entropy(logits, yv))
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    n_train, n_val, size, bs, epochs, repeats = (2048, 256, 32, 128, 2, 7)
    if args.quick:
        n_train, n_val, epochs, repeats = 256, 64, 1, 1
    logging.getLogger("shortcut_psd.train").setLevel(logging.WARNING)
    print(f"# {_util.machine()}")
    if not args.quick:
        _util.wait_quiet()
    rng = np.random.default_rng(0)
    xt = rng.random((n_train, 1, size, size), dtype=np.float32)
    yt = rng.integers(0, 2, n_train)
    xv = rng.random((n_val, 1, size, size), dtype=np.float32)
    yv = rng.integers(0, 2, n_val)
    xt_t, yt_t = torch.from_numpy(xt), torch.from_numpy(yt)
    xv_t, yv_t = torch.from_numpy(xv), torch.from_numpy(yv)
    prep = Preprocessing(in_chans=1, mean=0.5, std=0.29)
    torch.manual_seed(0)
    init = create_model("test_resnet", num_classes=2, in_chans=1)
    recipe = {
        "epochs": epochs,
        "batch_size": bs,
        "lr": LR,
        "weight_decay": WD,
        "optimizer": "adamw",
        "schedule": "cosine",
        "augment": "none",
        "patience": 0,
    }

    def project(augment="none"):
        m = copy.deepcopy(init)
        train_classifier(
            m, prep, (xt, yt), (xv, yv), recipe={**recipe, "augment": augment}, seed=0, device="cpu"
        )

    def plain():
        plain_loop(copy.deepcopy(init), prep, xt_t, yt_t, xv_t, yv_t, epochs=epochs, bs=bs)

    rows = []
    t_all = time.perf_counter()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        fns = {"plain": plain, "project": project, "project_flip": lambda: project("flip")}
        for fn in fns.values():
            fn()
        cpu: dict[str, float] = {}
        med, best = _util.interleaved(fns, repeats, cpu)
        ips = {k: n_train * epochs / v for k, v in med.items()}
        row = {
            "threads": threads,
            **{f"{k}_ips": v for k, v in ips.items()},
            "ratio": med["plain"] / med["project"],
            "ratio_best": best["plain"] / best["project"],
            "ratio_cpu": cpu["plain"] / cpu["project"],
        }
        row["load"] = _util.loadavg()
        rows.append(row)
        print(
            f"test_resnet {size}px batch {bs}, {n_train} train + {n_val} val images x {epochs} epochs, "
            f"{threads} thread(s): plain {ips['plain']:7.1f} img/s | train_classifier {ips['project']:7.1f} "
            f"img/s | ratio {row['ratio']:.3f} (best-of {row['ratio_best']:.3f}, cpu-time {row['ratio_cpu']:.3f}) | with augment flip {ips['project_flip']:7.1f} img/s | {row['load']}",
            flush=True,
        )
    print(f"# target ratio >= 0.95: {'met' if all(r['ratio'] >= 0.95 for r in rows) else 'MISSED'}")
    print(f"# total {time.perf_counter() - t_all:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": _util.machine(), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
