"""Cost of the behavioural probes (docs/DEFINITIONS.md, "Probes") in the default study, on the CPU.

Runs what one ``probes`` job of the default config (config.yaml) does, with the config's own ``probes``,
``stats`` and image options, on the embedded ``brain_tissue`` target built at the config's size: a linear
probe of a ``model.arch`` backbone on the training images, then band reliance (with the seeds x groups
bootstrap replicates) of it and of one model per fine-tuned condition of an (init, target, seed), and the
heat maps that ``probes.heatmap_models`` asks for. Models have random weights (the cost does not depend on
them). One torch thread, as each job of ``--cores 2`` gets (``threads: 1``). Prints the seconds of each
part, one job's total, the Python + torch start-up of a job (a subprocess importing what the job script
imports), and the estimate for the whole study: ``jobs x (job + start-up) / 2`` cores, plus the report job.

    .venv/bin/python benchmarks/bench_probes.py            # about 1 min on 2 cores
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

from _util import REPO, SRC, loadavg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "config.yaml"))
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import torch
    import yaml

    from shortcut_psd import probes
    from shortcut_psd.config import finetune_conditions, prepare
    from shortcut_psd.data.builtin import build_builtin
    from shortcut_psd.models import Preprocessing, create_model

    torch.set_num_threads(1)
    cfg = yaml.safe_load(open(args.config))
    prepare(cfg, [args.config])
    opts = probes.probe_options(cfg["probes"])
    print(f"config {args.config}; probes {opts}; {loadavg()}")
    t0 = time.perf_counter()
    spec = dict(cfg["datasets"]["brain_tissue"])  # the embedded target (grey)
    target = build_builtin("brain_tissue", image_size=cfg["image"]["size"], **spec.get("params", {}))
    print(f"target built in {time.perf_counter() - t0:.1f} s (not part of a probe job)")
    conds = finetune_conditions(cfg)
    init0, t0_, seed0 = conds[0][0], conds[0][1], conds[0][4]
    labels = sorted(f"{a}/p{p}" for (i, t, a, p, s) in conds if (i, t, s) == (init0, t0_, seed0))
    jobs = len({(i, t, s) for (i, t, _, _, s) in conds})
    idx = target.indices("test")
    x, y, g = probes.probe_images(
        target.images[idx], target.labels[idx], target.group[idx], opts["max_images"], opts["seed"]
    )
    bands = probes.resolve_bands(opts["bands"], *x.shape[-2:], opts["n_bands"])
    c = target.images.shape[1]
    prep = Preprocessing(in_chans=c, mean=(0.5,) * c, std=(0.25,) * c)
    common = {"n_boot": int(cfg["stats"]["bootstrap"]), "boot_seed": 0, "device": "cpu"}
    heat = set(probes.heatmap_labels(labels, opts["heatmap_models"]))

    def model():
        torch.manual_seed(0)
        return create_model(cfg["model"]["arch"], num_classes=target.num_classes, in_chans=c)

    cpu0 = time.process_time()
    t = time.perf_counter()
    tx, ty = target.subset("train")
    probe, _ = probes.linear_probe(
        model(),
        prep,
        tx,
        ty,
        target.num_classes,
        seed=0,
        max_images=opts["probe_train_images"],
        l2=opts["probe_l2"],
    )
    t_probe = time.perf_counter() - t
    t = time.perf_counter()
    probes.probe_model(probe, prep, x, y, g, bands, opts, heatmap=False, **common)
    t_band = time.perf_counter() - t
    t = time.perf_counter()
    probes.probe_model(probe, prep, x, y, g, bands, opts, heatmap=True, **common)
    t_heat = time.perf_counter() - t - t_band
    n_models = 1 + len(labels)
    n_heat = 1 + len(heat)
    job = t_probe + n_models * t_band + n_heat * t_heat
    # CPU seconds of the same parts (less disturbed by other processes than wall time)
    cpu_measured = time.process_time() - cpu0  # probe + 1 band reliance + 1 band reliance with heat map
    wall_measured = t_probe + 2 * t_band + t_heat
    cpu_job = job * cpu_measured / wall_measured
    code = "import numpy, torch, timm; from shortcut_psd import probes, study; from shortcut_psd.data import load_imageset"
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC), "PATH": ""})
    t_start = time.perf_counter() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_start = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pandas, matplotlib.pyplot; import shortcut_psd.probe_tables"],
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": ""},
    )
    t_report = time.perf_counter() - t
    total = jobs * (job + t_start) / args.cores + t_report
    total_cpu = jobs * (cpu_job + cpu_start) / args.cores + t_report
    print(
        f"{len(x)} probe images x {len(bands)} bands; {n_models} models per job ({n_heat} heat maps of "
        f"{opts['heatmap_images']} images, step {opts['heatmap_step']})"
    )
    print(
        f"linear probe {t_probe:.2f} s; band reliance {t_band:.2f} s per model; heat map {t_heat:.2f} s each"
    )
    print(
        f"one job: {job:.1f} s compute + {t_start:.1f} s start-up; {jobs} jobs on {args.cores} cores "
        f"+ report start-up {t_report:.1f} s -> about {total:.0f} s added to the study; {loadavg()}"
    )
    print(
        f"CPU time: one job {cpu_job:.1f} s + start-up {cpu_start:.1f} s -> about {total_cpu:.0f} s "
        f"on {args.cores} otherwise idle cores"
    )
    del np


if __name__ == "__main__":
    main()
