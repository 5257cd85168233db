"""The results layout, written once: every file the workflow writes, as a pattern under the results folder,
and the registry of the report's tables and figures.

Torch-free and importable without Snakemake. The rules build their inputs and outputs from it
(``workflow/rules/common.smk``); the aggregation scripts look their files up among the job's inputs
(:class:`Inputs`) instead of rebuilding paths from the results folder; the library's readers take either a
results folder (:class:`Layout`) or those inputs (:func:`locate`).

Patterns (:data:`FILES`) use the wildcard names of the rules (``{init}``, ``{target}``, ``{artifact}``,
``{p}`` (prevalence as in paths, :func:`shortcut_psd.config.fmt_p`), ``{seed}`` (training seed),
``{aseed}`` (artifact seed, :func:`shortcut_psd.config.artifact_seed_for`), ...). Each job's log and
benchmark are ``logs/{stem}.log`` and ``benchmarks/{stem}.tsv`` with the rule's stem in :data:`JOBS`.

Tables and figures: a table or figure of the report is one library function, registered where it is
defined with :func:`table` / :func:`figure` (its name, the rule that writes it, its caption under
``workflow/report/`` and the job inputs it reads). :func:`outputs` lists them for the rules *without
importing* the registering modules (:data:`REGISTRIES`; the statistics and plotting libraries would add
seconds to every start of Snakemake): it reads the decorators from their source, and a test checks that
this reading equals the registry the imports build.
"""

from __future__ import annotations

import ast
import functools
import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortcut_psd.errors import DataError

#: every file the workflow writes, relative to the results folder (one entry per kind of file)
FILES: dict[str, str] = {
    # data sets (rule prepare_dataset)
    "data": "data/{dataset}/data.npz",
    "card": "data/{dataset}/card.json",
    "card_md": "data/{dataset}/card.md",
    "examples": "data/{dataset}/examples.png",
    # edited sources (rule edit_source)
    "source_data": "sources/{source}/{edit}/data.npz",
    "source_spectrum": "sources/{source}/{edit}/spectrum.npz",
    "source_spectrum_json": "sources/{source}/{edit}/spectrum.json",
    # pre-training (rule pretrain)
    "pretrain_model": "pretrain/{source}/{edit}/seed{seed}/model.pt",
    "pretrain_history": "pretrain/{source}/{edit}/seed{seed}/history.csv",
    "pretrain_dynamics": "pretrain/{source}/{edit}/seed{seed}/dynamics.npz",
    # artifact images and spectra, one set per artifact seed (rule inject_artifact)
    "artifact_images": "artifacts/{target}/{artifact}/seed{aseed}/images.npz",
    "artifact_psd": "artifacts/{target}/{artifact}/seed{aseed}/psd.npz",
    "artifact_psd_json": "artifacts/{target}/{artifact}/seed{aseed}/psd.json",
    # fine-tuning (rules finetune, finetune_shortcut, finetune_shortcut_own_p0) and scores
    # (also evaluate_clean_model); p = 0 models: see p0_models
    "finetune_model": "finetune/{init}/{target}/{artifact}/p{p}/seed{seed}/model.pt",
    "finetune_history": "finetune/{init}/{target}/{artifact}/p{p}/seed{seed}/history.csv",
    "finetune_dynamics": "finetune/{init}/{target}/{artifact}/p{p}/seed{seed}/dynamics.npz",
    "eval_metrics": "eval/{init}/{target}/{artifact}/p{p}/seed{seed}/metrics.json",
    # gradient PSDs (rules psd_pretrained, psd_finetuned)
    "psd_pretrained": "psd/pretrained/{init}/{target}/seed{seed}/psd.npz",
    "psd_pretrained_json": "psd/pretrained/{init}/{target}/seed{seed}/psd.json",
    "psd_finetuned": "psd/finetuned/{init}/{target}/{artifact}/p{p}/seed{seed}/psd.npz",
    "psd_finetuned_json": "psd/finetuned/{init}/{target}/{artifact}/p{p}/seed{seed}/psd.json",
    # behavioural probes (rule probes)
    "probes": "probes/{init}/{target}/seed{seed}/probes.npz",
    "probes_json": "probes/{init}/{target}/seed{seed}/probes.json",
    # the report's tables and figures (registered: see outputs) and the resolved config
    "table": "tables/{name}.csv",
    "figure": "figures/{name}.{ext}",
    "run_config": "run_config.yaml",
}

#: per rule, the stem of each job's log (``logs/{stem}.log``) and benchmark (``benchmarks/{stem}.tsv``)
JOBS: dict[str, str] = {
    "prepare_dataset": "data/{dataset}",
    "edit_source": "sources/{source}/{edit}",
    "pretrain": "pretrain/{source}/{edit}/seed{seed}",
    "inject_artifact": "artifacts/{target}/{artifact}/seed{aseed}",
    "finetune": "finetune/{init}/{target}/{artifact}/p{p}/seed{seed}",
    "finetune_shortcut": "finetune/{init}/{target}/{artifact}/seed{seed}",
    "evaluate_clean_model": "eval/{init}/{target}/p0/seed{seed}",
    "psd_pretrained": "psd/pretrained/{init}/{target}/seed{seed}",
    "psd_finetuned": "psd/finetuned/{init}/{target}/seed{seed}",
    "probes": "probes/{init}/{target}/seed{seed}",
    "aggregate": "aggregate",
    "figures": "figures",
    "dynamics": "dynamics",
    "probes_report": "probes_report",
    "provenance": "provenance",
}

#: the formats every figure is written in (the PNG goes into the report)
FIGURE_FORMATS = ("png", "pdf")

_FIELD = re.compile(r"\{(\w+)\}")


def wildcards(pattern: str) -> list[str]:
    """The wildcard names of a pattern, in order."""
    return _FIELD.findall(pattern)


def fill(pattern: str, **values: Any) -> str:
    """``pattern`` with the given wildcards replaced by their values and the others left as ``{name}``
    (a Snakemake pattern); a value for a wildcard the pattern does not have is an error."""
    unknown = set(values) - set(wildcards(pattern))
    if unknown:
        raise KeyError(f"{pattern} has no wildcard {', '.join(sorted(unknown))}")
    return _FIELD.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], pattern)


def _concrete(kind: str, values: Mapping[str, Any]) -> str:
    rel = fill(FILES[kind], **values)
    missing = wildcards(rel)
    if missing:
        raise KeyError(f"{kind} ({FILES[kind]}) needs a value for {', '.join(missing)}")
    return rel


@functools.cache
def _regex(kind: str) -> re.Pattern[str]:
    parts = re.split(r"(\{\w+\})", FILES[kind])
    body = "".join(f"(?P<{p[1:-1]}>[^/]+)" if _FIELD.fullmatch(p) else re.escape(p) for p in parts)
    return re.compile(f"(?:^|/){body}$")


def match(kind: str, path: str | os.PathLike) -> dict[str, str] | None:
    """The wildcards of ``path`` if it is a file of ``kind`` (under any results folder), else None."""
    m = _regex(kind).search(str(path))
    return m.groupdict() if m else None


class Layout:
    """The files of one results folder: :meth:`pattern` for the rules (strings, wildcards left unfilled
    stay Snakemake wildcards), :meth:`path` for the library (a :class:`~pathlib.Path`)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = root

    def pattern(self, kind: str, **values: Any) -> str:
        return self.under(fill(FILES[kind], **values))

    def under(self, rel: str) -> str:
        """A pattern relative to the results folder (e.g. from :attr:`Output.keys`) under this one."""
        return f"{self.root}/{rel}"

    def path(self, kind: str, **values: Any) -> Path:
        return Path(self.root) / _concrete(kind, values)

    def find(self, kind: str, **values: Any) -> Path | None:
        """:meth:`path` when that file exists, else None."""
        path = self.path(kind, **values)
        return path if path.exists() else None

    def log(self, rule: str, **values: Any) -> str:
        return f"{self.root}/logs/{fill(JOBS[rule], **values)}.log"

    def benchmark(self, rule: str, **values: Any) -> str:
        return f"{self.root}/benchmarks/{fill(JOBS[rule], **values)}.tsv"

    def preload_log(self) -> Path:
        """The log of a local run's preloader (``shortcut_psd.preload``; not a job)."""
        return Path(self.root) / "logs" / "preload.log"


class Inputs:
    """A job's input files, looked up by kind and wildcards.

    ``named`` maps input names to a file or a list of files (``snakemake.input``, or a dict); the inputs
    named after a kind of :data:`FILES` are indexed by their wildcards, the others are kept by name only.
    """

    def __init__(self, named: Any) -> None:
        self._named: dict[str, list[str]] = {}
        self._index: dict[str, dict[tuple[str, ...], str]] = {}
        for name, value in named.items():
            files = [str(value)] if isinstance(value, str | os.PathLike) else [str(v) for v in value]
            self._named[name] = files
            if name not in FILES:
                continue
            index = self._index.setdefault(name, {})
            for f in files:
                wc = match(name, f)
                if wc is None:
                    raise DataError(f"input {f} (named {name}) is not a {FILES[name]} file")
                index[tuple(wc.values())] = f

    def files(self, name: str) -> list[str]:
        """The files given under ``name``, in their order (empty when there are none)."""
        return list(self._named.get(name, []))

    def items(self, kind: str) -> list[tuple[dict[str, str], Path]]:
        """(wildcards, path) of every input of ``kind``, in input order."""
        names = wildcards(FILES[kind])
        return [(dict(zip(names, key, strict=True)), Path(f)) for key, f in self._index.get(kind, {}).items()]

    def _lookup(self, kind: str, values: Mapping[str, Any]) -> str | None:
        key = tuple(str(values[n]) for n in wildcards(FILES[kind]))
        return self._index.get(kind, {}).get(key)

    def path(self, kind: str, **values: Any) -> Path:
        _concrete(kind, values)  # every wildcard given
        found = self._lookup(kind, values)
        if found is None:
            raise DataError(
                f"no {fill(FILES[kind], **values)} among this job's inputs; the rule must list it "
                "(workflow/rules, built from shortcut_psd.layout)"
            )
        return Path(found)

    def find(self, kind: str, **values: Any) -> Path | None:
        """:meth:`path` when that file is an input and exists, else None."""
        _concrete(kind, values)
        found = self._lookup(kind, values)
        return Path(found) if found is not None and Path(found).exists() else None


def locate(results: str | os.PathLike | Layout | Inputs) -> Layout | Inputs:
    """A results folder as a :class:`Layout`; a :class:`Layout` or :class:`Inputs` as it is."""
    return results if isinstance(results, Layout | Inputs) else Layout(results)


# ------------------------------------------------------------------------------------------------
# p = 0 models
# ------------------------------------------------------------------------------------------------
def p0_models(config: Mapping[str, Any]) -> dict[str, str]:
    """Per artifact, the artifact folder its p = 0 model lives under: the shared clean model's
    (:data:`shortcut_psd.config.CLEAN`) when it shares it (:func:`shortcut_psd.config.shares_clean_model`,
    the one place that rule lives), else its own; empty when 0 is not a prevalence."""
    from shortcut_psd.config import CLEAN, shares_clean_model

    if not any(float(p) == 0 for p in config["prevalences"]):
        return {}
    return {a: CLEAN if shares_clean_model(config, a) else a for a in sorted(config["artifacts"])}


def after_model(p0: Mapping[str, str]) -> str | None:
    """The artifact folder of the p = 0 model that stands for an init after fine-tuning, given
    :func:`p0_models`: the shared clean model when some artifact shares it (its folder is no artifact's
    name), else the first artifact's own; None without p = 0 models."""
    shared = sorted({folder for artifact, folder in p0.items() if folder != artifact})
    return shared[0] if shared else min(p0.values(), default=None)


# ------------------------------------------------------------------------------------------------
# The report's tables and figures
# ------------------------------------------------------------------------------------------------
#: the modules whose @table / @figure functions are the report's tables and figures (in this order)
REGISTRIES = ("aggregate", "aggregate_dynamics", "plots", "probe_tables")
KINDS = ("table", "figure")
_PREFIX = {"table": "table", "figure": "fig"}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class Output:
    """One table or figure of the report: written by rule ``rule`` with ``producer`` (``module:function``,
    called with the rule's study object), described by ``caption`` (a file in workflow/report/, by default
    ``table_{name}.rst`` / ``fig_{name}.rst``); ``needs``: the kinds of input files it reads (a kind of
    :data:`FILES`, or ``table:{name}`` for another table), from which the rule's inputs are built."""

    kind: str
    name: str
    rule: str
    producer: str
    caption: str = ""
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"output kind {self.kind!r} is not one of {KINDS}")
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{self.kind} name {self.name!r}: use lower-case letters, digits and _")
        if self.rule not in JOBS:
            raise ValueError(f"{self.kind} {self.name!r}: unknown rule {self.rule!r}")
        for need in self.needs:
            kind, _, table = need.partition(":")
            if kind not in FILES or (kind == "table") != bool(table):
                raise ValueError(f"{self.kind} {self.name!r} needs {need!r}: not a kind of input file")
        if not self.caption:
            object.__setattr__(self, "caption", f"{_PREFIX[self.kind]}_{self.name}.rst")
        object.__setattr__(self, "needs", tuple(self.needs))

    @property
    def keys(self) -> dict[str, str]:
        """Its output names in the rule (``snakemake.output[key]``) -> file pattern under the results."""
        if self.kind == "table":
            return {self.name: fill(FILES["table"], name=self.name)}
        pattern = FILES["figure"]
        return {f"{self.name}_{ext}": fill(pattern, name=self.name, ext=ext) for ext in FIGURE_FORMATS}

    @property
    def report_key(self) -> str:
        """The output that goes into the report: the table, or the figure's PNG."""
        return next(iter(self.keys))

    def produce(self, study: Any) -> Any:
        """Call the producing function on the rule's study object."""
        module, function = self.producer.split(":")
        return getattr(importlib.import_module(module), function)(study)


#: filled by the decorators when a registering module is imported (``outputs`` reads the same from source)
REGISTERED: dict[tuple[str, str], Output] = {}


def _output(
    kind: str, producer: str, name: str, *, rule: str, caption: str | None = None, needs: Sequence[str] = ()
) -> Output:
    """The one reading of a decorator's arguments, for the decorators and for :func:`read_registry`."""
    return Output(kind, name, rule, producer, caption or "", tuple(needs))


def _register(kind: str, args: tuple, kwargs: dict) -> Callable[[Callable], Callable]:
    def decorator(fn: Callable) -> Callable:
        out = _output(kind, f"{fn.__module__}:{fn.__qualname__}", *args, **kwargs)
        if REGISTERED.get((kind, out.name), out) != out:
            raise ValueError(f"{kind} {out.name!r} is registered twice")
        REGISTERED[(kind, out.name)] = out
        return fn

    return decorator


def table(name: str, *, rule: str, caption: str | None = None, needs: Sequence[str] = ()):
    """Register the decorated function (study -> pandas DataFrame) as table ``tables/{name}.csv``."""
    return _register("table", (name,), {"rule": rule, "caption": caption, "needs": needs})


def figure(name: str, *, rule: str, caption: str | None = None, needs: Sequence[str] = ()):
    """Register the decorated function (study -> matplotlib Figure) as figure ``figures/{name}.png|pdf``."""
    return _register("figure", (name,), {"rule": rule, "caption": caption, "needs": needs})


def _literal(node: ast.expr, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{where}: write the decorator's arguments as literals") from None


def _called(decorator: ast.expr) -> str:
    """The name a decorator calls (``table`` for ``@table(...)`` or ``@layout.table(...)``), else ''."""
    func = decorator.func if isinstance(decorator, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def read_registry(module: str, source: str | None = None) -> list[Output]:
    """The @table / @figure functions of ``shortcut_psd.{module}``, read from its source (or ``source``)
    without importing it, in source order."""
    path = Path(__file__).with_name(f"{module}.py")
    tree = ast.parse(source if source is not None else path.read_text(), filename=str(path))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            name = _called(dec)
            if name not in KINDS:
                continue
            where = f"{path.name}:{node.lineno} ({node.name})"
            args = [_literal(a, where) for a in dec.args]
            kwargs = {k.arg: _literal(k.value, where) for k in dec.keywords}
            found.append(_output(name, f"shortcut_psd.{module}:{node.name}", *args, **kwargs))
    return found


@functools.cache
def _all_outputs() -> tuple[Output, ...]:
    found = [o for module in REGISTRIES for o in read_registry(module)]
    seen: set[tuple[str, str]] = set()
    for o in found:
        if (o.kind, o.name) in seen:
            raise ValueError(f"{o.kind} {o.name!r} is registered twice")
        seen.add((o.kind, o.name))
    return tuple(found)


def outputs(rule: str | None = None, kind: str | None = None) -> list[Output]:
    """The registered tables and figures (of ``rule``, of ``kind``), in registry order."""
    return [o for o in _all_outputs() if rule in (None, o.rule) and kind in (None, o.kind)]


def needs(rule: str) -> dict[str, list[str]]:
    """The input kinds the outputs of ``rule`` read: kind -> table names for ``table``, else []."""
    out: dict[str, list[str]] = {}
    for o in outputs(rule):
        for need in o.needs:
            kind, _, name = need.partition(":")
            names = out.setdefault(kind, [])
            if name and name not in names:
                names.append(name)
    return out


def output_files(rules: Iterable[str]) -> list[str]:
    """Every table and figure file (relative to the results folder) that ``rules`` write."""
    return [f for r in rules for o in outputs(r) for f in o.keys.values()]
