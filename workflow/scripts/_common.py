"""Shared start-up for the workflow's scripts (Snakemake puts this folder on sys.path).

Makes the library importable without installing it (per-rule conda environments hold only third-party
packages), sends logging and warnings to the rule's log file, and sets the thread count.

Timing marks: :func:`ready` marks the end of a job's set-up (interpreter start, imports); :func:`finish`,
the last line of every script, logs ``timing: setup_s=<process start to ready> work_s=<ready to finish>
cpu_s=<CPU time> max_rss_mb=<peak memory> preloaded=<0|1>`` (``benchmarks/bench_startup.py`` reads it
beside the rule's benchmark file to give the fixed cost per rule) and ends the process at once.

Local runs: :func:`start` first hands the job to the preloader (``shortcut_psd.preload``), whose fork
runs this same script with torch and timm already imported.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
# First on the path even when an installed copy (e.g. another checkout's editable install) is there too:
# a job runs the library of the workflow that started it.
if str(SRC) in sys.path:
    sys.path.remove(str(SRC))
sys.path.insert(0, str(SRC))

from shortcut_psd import preload  # noqa: E402 - torch-free; needs SRC on the path


def start(snakemake, name: str) -> logging.Logger:
    """Log to the rule's log file (and stderr), set torch threads; return the script's logger.

    First, a local run's job hands itself to the preloader (``shortcut_psd.preload``): a fork of a
    process that has imported torch, timm and the library runs this same script, and this process exits
    with its status. Where the preloader cannot take the job, it runs here the ordinary way."""
    status = preload.delegate(process_start_time())
    if status is not None:
        preload.exit_now(status)
    log_path = Path(snakemake.log[0])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [
        logging.FileHandler(log_path, mode="w"),
        logging.StreamHandler(sys.stderr),
    ]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    log = logging.getLogger(name)
    sys.excepthook = _log_uncaught(log)
    threads = int(getattr(snakemake, "threads", 1) or 1)
    if "torch" in sys.modules or _wants_torch(snakemake):
        import torch

        torch.set_num_threads(threads)
    log.info("start: rule %s, wildcards %s, threads %d", snakemake.rule, dict(snakemake.wildcards), threads)
    if preload.in_child():
        log.info("preloaded: forked by the preloader (%d ms after the job started)", _since_start_ms())
    elif preload.LAST_REFUSAL:
        log.info("preloader not used: %s", preload.LAST_REFUSAL[0])
    log.info("outputs: %s", ", ".join(map(str, snakemake.output)))
    return log


def _log_uncaught(log: logging.Logger):
    """An excepthook that writes a failing script's error (and traceback) to the rule's log, not only to
    stderr, so the log named by Snakemake says why the job failed. The exit status stays 1."""

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("job failed: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    return hook


def _wants_torch(snakemake) -> bool:
    return snakemake.rule not in ("prepare_dataset", "aggregate", "figures", "provenance", "probes_report")


_READY: list[float] = []  # wall clock (time.time()) when the job's set-up ended


def ready() -> Timer:
    """Mark the end of the job's set-up (imports): what follows is its work. Returns a Timer of the work."""
    _READY.append(time.time())
    return Timer()


def process_start_time() -> float | None:
    """Wall-clock time (s since the epoch) at which this job's process started, from /proc (None
    elsewhere). In a preloaded child, the start of the job process it serves: its set-up counts from
    there, as a fresh process's would."""
    if preload.client_start_time() is not None:
        return preload.client_start_time()
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime (clock ticks after boot)
        uptime = float(Path("/proc/uptime").read_text().split()[0])  # 10 ms resolution (btime has 1 s)
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def finish(log: logging.Logger) -> None:
    """The job succeeded: log its timing, flush the log and end the process now (exit status 0).

    Every output is written (atomically, files closed) before this is called. Skipping the interpreter's
    tear-down saves 1.5-3 s per job once torch and timm are loaded (measured: 3.2 s vs 0.1 s under load 3),
    about a tenth of a default fine-tuning job. A job that fails never gets here: it raises, and exits 1
    the usual way with the traceback in its log."""
    if _READY:
        t0 = process_start_time()
        setup = f"{_READY[0] - t0:.2f}" if t0 is not None else "nan"
        cpu, rss = preload.usage()
        log.info(
            "timing: setup_s=%s work_s=%.2f cpu_s=%.2f max_rss_mb=%.0f preloaded=%d",
            setup,
            time.time() - _READY[0],
            cpu,
            rss,
            preload.in_child(),
        )
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    preload.exit_now(0)


def _since_start_ms() -> float:
    t0 = process_start_time()
    return 1000.0 * (time.time() - t0) if t0 is not None else float("nan")


def make_init(snakemake, *, num_classes: int, clean_train_images):
    """``shortcut_psd.study.make_init`` for the job's init: ``params.init`` (its ``spec``, ``arch`` and
    ``model_kwargs``), ``input.init`` (the checkpoint of a ``source`` or ``file`` init; empty for the
    others), the ``seed`` wildcard (the fresh head's seed) and ``params.device``. Returns
    ``(model, preprocessing, info)``."""
    from shortcut_psd import study

    init, checkpoint = snakemake.params.init, snakemake.input.init
    return study.make_init(
        init["spec"],
        checkpoint=str(checkpoint) if checkpoint else None,
        arch=init["arch"],
        model_kwargs=init["model_kwargs"],
        num_classes=num_classes,
        clean_train_images=clean_train_images,
        seed=int(snakemake.wildcards.seed),
        device=snakemake.params.device,
    )


def condition(snakemake, artifact: str, p: float) -> dict:
    """The condition (``identity``) of a model of this job: its ``init`` and ``target`` wildcards,
    ``artifact``, prevalence ``p`` and the ``seed`` wildcard."""
    w = snakemake.wildcards
    return {"init": w.init, "target": w.target, "artifact": artifact, "prevalence": p, "seed": int(w.seed)}


def score_condition(snakemake, model, prep, data, sets, identity: dict, *, max_train_images: int) -> dict:
    """``shortcut_psd.study.score_condition`` of a model on the condition ``identity`` (see :func:`condition`)
    with the job's ``params.evaluation``, ``params.device`` and ``params.artifact_seed``: the model's
    ``metrics.json``. Used by finetune and evaluate_clean."""
    from shortcut_psd import study

    P = snakemake.params
    return study.score_condition(
        model,
        prep,
        data,
        sets,
        identity["prevalence"],
        seed=identity["seed"],
        evaluation=P.evaluation,
        device=P.device,
        identity=identity,
        artifact_seed=P.artifact_seed,
        max_train_images=max_train_images,
    )


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __str__(self) -> str:
        return f"{time.perf_counter() - self.t0:.1f} s"
