"""GPU check: gradient PSD on CUDA agrees with the CPU, and its throughput next to a bare training step.

Run by ``benchmarks/gpu_check.sh`` on a machine with one CUDA GPU (about 2-3 min on an H100).

1. Agreement (fp32, TF32 off for both convolutions and matmuls): the same weights and images through
   :func:`gradient_psd` on ``cpu`` and ``cuda``. Passes when, for the mean curve and the 2-D spectrum,
   ``max|cuda - cpu| / max|cpu| <= 1e-4`` and every curve bin agrees to 1e-3 relative; the input
   gradients of one batch are also compared (``||cuda - cpu|| / ||cpu||``). bf16 autocast vs fp32 on the GPU
   is printed for information only (bf16 has an 8-bit mantissa, so ~1e-2 is expected).
2. Throughput at 224 px, 3 channels, bf16 autocast, channels-last models, cudnn.benchmark on:
   - ``train step``: model.train(), forward, cross-entropy, backward, SGD(momentum) step, batch resident on
     the GPU (what the public ResNet-50 figures measure);
   - ``bare grad``: model.eval(), forward + input gradient only, batch resident on the GPU;
   - ``bare grad, host data``: the same with each batch copied from a numpy array through pinned memory,
     as gradient_psd does;
   - ``bare grad, host data, prefetch``: the same with the next batch copied on a side stream (what-if);
   - ``gradient_psd``: the project's function on a numpy array (host), amp="bf16", once with the model in
     NCHW (as the workflow loads checkpoints) and once with ``channels_last=True``;
   - ``spectral part``: what gradient_psd adds after the backward (rfft2, radial bins, normalisation,
     accumulator), on GPU-resident gradients.
   Times are CUDA-event / synchronised medians of repeats after warm-up.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from shortcut_psd.gradients import gradient_psd, input_gradients  # noqa: E402
from shortcut_psd.models import Preprocessing, create_model  # noqa: E402
from shortcut_psd.spectral import RadialSpectrum, normalise_curves, normalise_spectra2d  # noqa: E402

TOL_CURVE = 1e-4  # max|d| / max|ref| on mean curve and 2-D spectrum
TOL_BIN = 1e-3  # per-bin relative difference of the mean curve


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    sync(dev)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


# -- 1. agreement --------------------------------------------------------------------------------------
def agreement(dev, quick: bool) -> list[tuple]:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    cases = [("test_resnet", 64, 1, 512, 128), ("resnet18", 96, 3, 128, 64)]
    if quick:
        cases = [("test_resnet", 32, 1, 32, 16)]
    for arch, size, chans, n, bs in cases:
        torch.manual_seed(0)
        ref_model = create_model(arch, num_classes=2, in_chans=chans).eval()
        # BN running stats away from (0, 1) so eval-mode BN is not an identity
        with torch.no_grad():
            for m in ref_model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        prep = Preprocessing(in_chans=chans, mean=0.45, std=0.25)
        rng = np.random.default_rng(1)
        x = rng.random((n, chans, size, size), dtype=np.float32)
        y = rng.integers(0, 2, n)
        cpu_m, gpu_m = copy.deepcopy(ref_model), copy.deepcopy(ref_model)
        a = gradient_psd([cpu_m], x, y, prep, batch_size=bs, device="cpu")
        b = gradient_psd([gpu_m], x, y, prep, batch_size=bs, device=dev)
        c = gradient_psd([gpu_m], x, y, prep, batch_size=bs, device=dev, amp="bf16")
        xb, yb = torch.from_numpy(x[:bs]), torch.from_numpy(y[:bs])
        ga = input_gradients(cpu_m.cpu(), xb, yb, prep)
        gb = input_gradients(gpu_m.to(dev), xb.to(dev), yb.to(dev), prep).cpu()
        g_rel = float((gb - ga).norm() / ga.norm())
        curve = float(np.abs(b.mean - a.mean).max() / np.abs(a.mean).max())
        per_bin = float((np.abs(b.mean - a.mean) / np.abs(a.mean)).max())
        spec = float(np.abs(b.spectrum_2d - a.spectrum_2d).max() / np.abs(a.spectrum_2d).max())
        cen = abs(b.scalars["centroid_cpp"] - a.scalars["centroid_cpp"])
        bf16 = float(np.abs(c.mean - b.mean).max() / np.abs(b.mean).max())
        ok = curve <= TOL_CURVE and spec <= TOL_CURVE and per_bin <= TOL_BIN and np.isfinite(b.mean).all()
        rows.append((f"{arch} {size}px N={n}", g_rel, curve, per_bin, spec, cen, bf16, ok))
        print(
            f"agreement {arch} {size}px N={n}: grad rel {g_rel:.2e} | curve {curve:.2e} | per-bin {per_bin:.2e} "
            f"| 2-D {spec:.2e} | centroid diff {cen:.2e} cpp | bf16 vs fp32 curve {bf16:.2e} -> "
            f"{'PASS' if ok else 'FAIL'}",
            flush=True,
        )
    torch.backends.cudnn.allow_tf32 = True
    return rows


# -- 2. throughput -------------------------------------------------------------------------------------
def throughput(dev, arch: str, size: int, bs: int, n_psd: int, repeats: int, psd_batches=()) -> list[tuple]:
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    chans = 3
    model = create_model(arch, num_classes=2, in_chans=chans).to(dev).to(memory_format=torch.channels_last)
    prep = Preprocessing(in_chans=chans, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    amp = dev.type == "cuda"
    rng = np.random.default_rng(0)
    host = rng.random((n_psd, chans, size, size), dtype=np.float32)
    labels = rng.integers(0, 2, n_psd)
    xg = prep(torch.from_numpy(host[:bs]).to(dev)).contiguous(memory_format=torch.channels_last)
    yg = torch.from_numpy(labels[:bs]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def ac():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp)

    def train_step():
        model.train()
        with ac():
            out = model(xg)
        loss = F.cross_entropy(out.float(), yg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def bare_grad():
        model.eval()
        x = xg.detach().requires_grad_(True)
        with ac():
            out = model(x)
        (g,) = torch.autograd.grad(F.cross_entropy(out.float(), yg, reduction="sum"), x)

    yall = torch.from_numpy(labels).to(dev)

    def bare_grad_host():
        """Each batch from host numpy through pinned memory, copied on the compute stream (as gradient_psd)."""
        model.eval()
        for s in range(0, n_psd, bs):
            chunk = torch.from_numpy(host[s : s + bs])
            if dev.type == "cuda":
                chunk = chunk.pin_memory()
            x = prep(chunk.to(dev, non_blocking=True))
            x = x.contiguous(memory_format=torch.channels_last).detach().requires_grad_(True)
            with ac():
                out = model(x)
            (g,) = torch.autograd.grad(F.cross_entropy(out.float(), yall[s : s + bs], reduction="sum"), x)

    def bare_grad_prefetch():
        """The same, with batch i+1 copied on a side stream while batch i computes (what-if)."""
        model.eval()
        side = torch.cuda.Stream(dev)
        main = torch.cuda.current_stream(dev)

        def fetch(s):
            chunk = torch.from_numpy(host[s : s + bs]).pin_memory()
            with torch.cuda.stream(side):
                return chunk.to(dev, non_blocking=True)

        nxt = fetch(0)
        for s in range(0, n_psd, bs):
            main.wait_stream(side)
            cur = nxt
            cur.record_stream(main)
            if s + bs < n_psd:
                nxt = fetch(s + bs)
            x = prep(cur).contiguous(memory_format=torch.channels_last).detach().requires_grad_(True)
            with ac():
                out = model(x)
            (g,) = torch.autograd.grad(F.cross_entropy(out.float(), yall[s : s + bs], reduction="sum"), x)

    nchw_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)

    def psd(b, cl):
        m = model if cl else nchw_model
        return lambda: gradient_psd(
            [m], host, labels, prep, batch_size=b, device=dev, amp="bf16" if amp else False, channels_last=cl
        )

    grads = torch.randn(bs, chans, size, size, device=dev)
    rs = RadialSpectrum(size, size, device=dev)

    def spectral():
        acc = rs.accumulator()
        for _ in range(n_psd // bs):
            c, s2 = rs.from_channels(grads, "mean")
            acc.update(normalise_curves(c, "sum"), normalise_spectra2d(s2, "sum", rs.col_weights))
        acc.result()

    steps = max(1, n_psd // bs)
    rows = []

    def measure(what, b, fn, images):
        try:
            t = timed(fn, dev, repeats)
        except Exception as exc:  # noqa: BLE001 - report and go on: one device run must yield the table
            print(f"throughput {arch} {what}: FAILED {type(exc).__name__}: {exc}", flush=True)
            rows.append((arch, what + " (FAILED)", b, float("nan")))
            return
        rows.append((arch, what, b, images / t))
        print(f"throughput {arch:12s} {what:34s} batch {b:4d}: {images / t:9.1f} img/s", flush=True)

    measure("train step (SGD), data on GPU", bs, lambda: [train_step() for _ in range(steps)], steps * bs)
    measure("bare grad, data on GPU", bs, lambda: [bare_grad() for _ in range(steps)], steps * bs)
    measure("bare grad, host data (pinned)", bs, bare_grad_host, n_psd)
    if dev.type == "cuda":
        measure("bare grad, host data, prefetch", bs, bare_grad_prefetch, n_psd)
    measure("gradient_psd, NCHW (workflow)", bs, psd(bs, False), n_psd)
    for b in (bs, *psd_batches):
        measure("gradient_psd, channels_last", b, psd(b, True), n_psd)
    measure("spectral part alone", bs, spectral, n_psd)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU smoke run of this script")
    args = ap.parse_args()
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    print(f"# torch {torch.__version__}, device {dev}", end="")
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        print(
            f": {p.name}, {p.total_memory / 2**30:.0f} GiB, cuda {torch.version.cuda}, cudnn "
            f"{torch.backends.cudnn.version()}",
            end="",
        )
    print(flush=True)
    agree = agreement(dev, args.quick)
    print(f"# agreement done in {time.perf_counter() - t0:.0f} s", flush=True)
    thr = []
    if args.quick:
        thr += throughput(dev, "test_resnet", 32, 8, 16, 1)
    else:
        for arch, extra in (("resnet50", (128,)), ("resnet18", ())):
            try:
                thr += throughput(dev, arch, 224, 256, 2048, 5, psd_batches=extra)
            except Exception as exc:  # noqa: BLE001 - keep the rest of the one device run
                print(f"throughput {arch}: FAILED {type(exc).__name__}: {exc}", flush=True)
            print(f"# {arch} done at {time.perf_counter() - t0:.0f} s", flush=True)
            torch.cuda.empty_cache()
    print(f"\n# total {time.perf_counter() - t0:.0f} s\n")
    print(
        "| case | grad rel diff | curve max diff / max | per-bin rel | 2-D max diff / max | bf16 vs fp32 | result |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, g, c, pb, s, _cen, bf, ok in agree:
        print(f"| {name} | {g:.1e} | {c:.1e} | {pb:.1e} | {s:.1e} | {bf:.1e} | {'PASS' if ok else 'FAIL'} |")
    print(
        f"\ntolerance: curve and 2-D <= {TOL_CURVE:g} of max, per bin <= {TOL_BIN:g} relative; fp32, TF32 off\n"
    )
    print("| model (224 px, bf16 autocast) | measure | batch | img/s | vs train step | vs bare grad |")
    print("|---|---|---|---|---|---|")
    train = {r[0]: r[3] for r in thr if r[1].startswith("train step")}
    bare = {r[0]: r[3] for r in thr if r[1].startswith("bare grad, data on GPU")}
    for arch, what, b, ips in thr:
        vt, vb = ips / train.get(arch, float("nan")), ips / bare.get(arch, float("nan"))
        print(f"| {arch} | {what} | {b} | {ips:.0f} | {vt:.2f} | {vb:.2f} |")
    if not all(r[-1] for r in agree):
        sys.exit(1)


if __name__ == "__main__":
    main()
