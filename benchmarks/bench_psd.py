"""Gradient-PSD throughput vs a bare forward + input-gradient pass, and gradient_psd's peak memory.

For each case (model, image size, batch) on the CPU:

- ``bare``: the same batches from the same in-memory float32 array, model in eval mode, preprocessing,
  forward, summed cross-entropy, ``torch.autograd.grad(loss, x)`` (input gradient only: no parameter
  gradient is computed, which is the least work any input-gradient method can do);
- ``psd``: :func:`shortcut_psd.gradients.gradient_psd` on those images (defaults: Hann window, power,
  channel mean, sum normalisation, 2-D spectrum kept);
- ``spectral``: the spectral part alone (channel mean, rfft2, radial index_add, normalisations,
  accumulator update) on gradient-shaped tensors, to show where any gap comes from.

Throughput is images per second from the median of interleaved repeats after a warm-up
(the ratios of best times and of CPU times are printed too: they are less disturbed by other processes). Then
(unless ``--no-memory``) it runs gradient_psd in fresh subprocesses on the first N of the same 2048 images (N = 256 and
2048) and prints each one's peak resident memory (ru_maxrss) and its rise over the resident memory just
before the call: it must not grow with N.

    .venv/bin/python benchmarks/bench_psd.py            # about 2-3 min on 2 cores
    .venv/bin/python benchmarks/bench_psd.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import _util
import numpy as np
import torch
import torch.nn.functional as F

from shortcut_psd.gradients import gradient_psd
from shortcut_psd.models import Preprocessing, create_model
from shortcut_psd.spectral import RadialSpectrum, normalise_curves, normalise_spectra2d

# (label, arch, size, channels, batch, images, repeats, torch threads)
CASES = [
    ("test_resnet 64px", "test_resnet", 64, 1, 256, 1024, 9, 1),
    ("test_resnet 64px", "test_resnet", 64, 1, 256, 1024, 9, 2),
    ("resnet18 224px", "resnet18", 224, 3, 32, 64, 7, 2),
]
QUICK = [
    ("test_resnet 64px", "test_resnet", 64, 1, 64, 128, 2, 2),
    ("resnet18 224px", "resnet18", 224, 3, 8, 8, 1, 2),
]


def make_case(arch: str, size: int, chans: int, n: int, seed: int = 0):
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=2, in_chans=chans).eval()
    prep = Preprocessing(in_chans=chans, mean=0.45, std=0.25)
    rng = np.random.default_rng(seed)
    images = rng.random((n, chans, size, size), dtype=np.float32)
    labels = rng.integers(0, 2, n)
    return model, prep, images, labels


def bare_pass(model, prep, images, labels, batch):
    """Forward + input gradient of every batch; the floor for any gradient-based measure."""
    model.eval()
    y_all = torch.from_numpy(labels.astype(np.int64))
    with torch.enable_grad():
        for s in range(0, len(images), batch):
            x01 = torch.from_numpy(images[s : s + batch])
            x = prep(x01).detach().requires_grad_(True)
            loss = F.cross_entropy(model(x), y_all[s : s + batch], reduction="sum")
            (g,) = torch.autograd.grad(loss, x)
    return g


def psd_pass(model, prep, images, labels, batch):
    return gradient_psd([model], images, labels, prep, batch_size=batch, device="cpu")


def spectral_pass(grads: torch.Tensor, n_batches: int, size: int):
    """What gradient_psd adds after the backward, on a (B, C, H, W) gradient batch, n_batches times."""
    rs = RadialSpectrum(size, size)
    acc = rs.accumulator()
    for _ in range(n_batches):
        c, s2 = rs.from_channels(grads, "mean")
        acc.update(normalise_curves(c, "sum"), normalise_spectra2d(s2, "sum", rs.col_weights))
    return acc.result()


def run_case(label, arch, size, chans, batch, n, repeats, threads) -> dict:
    torch.set_num_threads(threads)
    model, prep, images, labels = make_case(arch, size, chans, n)
    grads = torch.randn(batch, chans, size, size)
    nb = -(-n // batch)
    fns = {
        "bare": lambda: bare_pass(model, prep, images, labels, batch),
        "psd": lambda: psd_pass(model, prep, images, labels, batch),
        "spectral": lambda: spectral_pass(grads, nb, size),
    }
    for fn in fns.values():  # warm-up
        fn()
    cpu: dict[str, float] = {}
    med, best = _util.interleaved(fns, repeats, cpu)
    row = {
        "case": label,
        "batch": batch,
        "images": n,
        "threads": torch.get_num_threads(),
        "bare_ips": n / med["bare"],
        "psd_ips": n / med["psd"],
        "ratio": med["bare"] / med["psd"],
        "ratio_best": best["bare"] / best["psd"],
        "ratio_cpu": cpu["bare"] / cpu["psd"],
        "spectral_share": med["spectral"] / med["psd"],
        "load": _util.loadavg(),
    }
    print(
        f"{label:18s} {threads} thr, batch {batch:4d} x {nb} | bare {row['bare_ips']:8.1f} img/s | gradient_psd "
        f"{row['psd_ips']:8.1f} img/s | ratio {row['ratio']:.3f} (best-of {row['ratio_best']:.3f}, cpu-time {row['ratio_cpu']:.3f}) | spectral part {100 * row['spectral_share']:.1f}% "
        f"of psd time | {row['load']}",
        flush=True,
    )
    return row


# -- memory --------------------------------------------------------------------------------------------
MEM_TOTAL, MEM_SIZE, MEM_BATCH = 2048, 64, 256


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() // 1024


def memory_child(n: int) -> None:
    """In a fresh process: the same 2048 images in memory for every N, gradient_psd on the first N."""
    torch.set_num_threads(1)
    model, prep, images, labels = make_case("test_resnet", MEM_SIZE, 1, MEM_TOTAL)
    before = _rss_kib()
    t0 = time.perf_counter()
    res = gradient_psd([model], images[:n], labels[:n], prep, batch_size=MEM_BATCH, device="cpu")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"n": res.n, "rss_before_kib": before, "peak_kib": peak, "seconds": seconds}))


def memory_check() -> list[dict]:
    rows = []
    for n in (256, 2048):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["rise_kib"] = r["peak_kib"] - r["rss_before_kib"]
        rows.append(r)
        print(
            f"gradient_psd test_resnet {MEM_SIZE}px batch {MEM_BATCH}, N={r['n']:5d}: peak RSS "
            f"{r['peak_kib'] / 1024:7.1f} MiB, rise during the call {r['rise_kib'] / 1024:6.1f} MiB "
            f"({r['seconds']:.1f} s) | {_util.loadavg()}",
            flush=True,
        )
    grow = rows[1]["rise_kib"] - rows[0]["rise_kib"]
    verdict = "flat" if abs(grow) < 0.1 * max(rows[0]["rise_kib"], 1) + 8 * 1024 else "GROWS"
    print(f"peak memory vs N: rise differs by {grow / 1024:+.1f} MiB from N=256 to N=2048 -> {verdict}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--only", help="run only the cases whose '<label> <threads>thr' contains this text")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    print(f"# {_util.machine()}")
    if not args.quick:
        _util.wait_quiet()
    t0 = time.perf_counter()
    cases = QUICK if args.quick else CASES
    if args.only:
        cases = [c for c in cases if args.only in f"{c[0]} {c[-1]}thr"]
    rows = [run_case(*c) for c in cases]
    mem = [] if args.no_memory else memory_check()
    print(f"# target ratio >= 0.90: {'met' if all(r['ratio'] >= 0.9 for r in rows) else 'MISSED'}")
    print(f"# total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": _util.machine(), "rows": rows, "memory": mem}, fh, indent=1)


if __name__ == "__main__":
    main()
