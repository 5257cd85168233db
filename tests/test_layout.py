"""The results layout, written once (shortcut_psd.layout), and the registry of the report's tables and
figures: patterns, look-ups among a job's inputs, where p = 0 models live, and that the registry read from
source is the one the modules register, with a caption for every entry and scripts that write nothing else."""

from __future__ import annotations

import ast
import importlib
import re

import pytest
from conftest import REPO

from shortcut_psd import layout
from shortcut_psd.errors import DataError

SAMPLE = {
    "dataset": "brain_tissue",
    "source": "photos",
    "edit": "whiten",
    "init": "photos_whiten",
    "target": "brain_tissue",
    "artifact": "band_high",
    "p": "0.5",
    "seed": 1,
    "aseed": 4,
    "name": "auc_summary",
    "ext": "png",
}
REPORT_RULES = ("aggregate", "figures", "dynamics", "probes_report")


def _values(kind: str) -> dict:
    return {k: SAMPLE[k] for k in layout.wildcards(layout.FILES[kind])}


@pytest.mark.parametrize("kind", sorted(layout.FILES))
def test_every_file_pattern_builds_and_parses_back(kind, tmp_path):
    root = tmp_path / "res"
    lay = layout.Layout(root)
    values = _values(kind)
    path = lay.path(kind, **values)
    assert str(path) == lay.pattern(kind, **values) == f"{root}/{layout.FILES[kind].format(**values)}"
    assert layout.match(kind, path) == {k: str(v) for k, v in values.items()}
    assert [k for k in layout.FILES if layout.match(k, path) is not None] == [kind], "a file has one kind"


def test_unfilled_wildcards_stay_snakemake_wildcards():
    lay = layout.Layout("results")
    assert lay.pattern("finetune_model", artifact="none", p=0) == (
        "results/finetune/{init}/{target}/none/p0/seed{seed}/model.pt"
    )
    assert lay.pattern("data", dataset="{target}") == "results/data/{target}/data.npz"
    assert lay.log("finetune_shortcut") == "results/logs/finetune/{init}/{target}/{artifact}/seed{seed}.log"
    assert lay.benchmark("aggregate") == "results/benchmarks/aggregate.tsv"
    with pytest.raises(KeyError, match="no wildcard artefact"):
        lay.pattern("finetune_model", artefact="none")
    with pytest.raises(KeyError, match="needs a value for seed"):
        lay.path("psd_pretrained", init="scratch", target="t")


def test_inputs_are_looked_up_by_kind_and_wildcards(tmp_path):
    lay = layout.Layout(tmp_path)
    metrics = [lay.pattern("eval_metrics", **dict(_values("eval_metrics"), seed=s)) for s in (0, 1)]
    files = layout.Inputs(
        {"eval_metrics": metrics, "card": lay.pattern("card", dataset="photos"), "x": ["y"]}
    )
    found = files.path("eval_metrics", **dict(_values("eval_metrics"), seed=1))
    assert found == lay.path("eval_metrics", **dict(_values("eval_metrics"), seed=1))
    assert files.files("eval_metrics") == metrics and files.files("x") == ["y"] and files.files("none") == []
    assert [wc["seed"] for wc, _ in files.items("eval_metrics")] == ["0", "1"]
    with pytest.raises(DataError, match="seed7/metrics.json among this job's inputs"):
        files.path("eval_metrics", **dict(_values("eval_metrics"), seed=7))
    assert files.find("eval_metrics", **_values("eval_metrics")) is None  # an input, but not written yet
    found.parent.mkdir(parents=True)
    found.write_text("{}")
    assert files.find("eval_metrics", **dict(_values("eval_metrics"), seed=1)) == found
    with pytest.raises(DataError, match="is not a"):
        layout.Inputs({"psd_pretrained": [metrics[0]]})
    assert layout.locate(files) is files and isinstance(layout.locate(tmp_path), layout.Layout)


def test_p0_models_follow_shares_clean_model():
    from shortcut_psd.config import CLEAN, finetune_conditions, shares_clean_model
    from shortcut_psd.probe_tables import after_label

    arts = {"tag": {"kind": "tag"}, "photon_noise": {"kind": "photon_noise"}, "hi": {"kind": "band_noise"}}
    for artifacts in (arts, {"photon_noise": arts["photon_noise"]}, {"tag": arts["tag"]}):
        cfg = {
            "prevalences": [0, 1],
            "artifacts": artifacts,
            "inits": {"scratch": {"kind": "scratch"}},
            "targets": ["t"],
            "seeds": [0],
        }
        p0 = layout.p0_models(cfg)
        assert p0 == {a: CLEAN if shares_clean_model(cfg, a) else a for a in sorted(artifacts)}
        # the model that stands for "after fine-tuning" is the one the probes' tables pick from the labels
        labels = [f"{a}/p{p}" for _, _, a, p, _ in finetune_conditions(cfg)]
        assert f"{layout.after_model(p0)}/p0" == after_label(labels)
        assert layout.p0_models(dict(cfg, prevalences=[0.5, 1])) == {}
    assert layout.after_model({}) is None


# ------------------------------------------------------------------------------------------------
# The registry of tables and figures
# ------------------------------------------------------------------------------------------------
def test_registry_read_from_source_is_the_imported_registry():
    for module in layout.REGISTRIES:
        importlib.import_module(f"shortcut_psd.{module}")
    for module in layout.REGISTRIES:
        static = layout.read_registry(module)
        imported = [o for o in layout.REGISTERED.values() if o.producer.startswith(f"shortcut_psd.{module}:")]
        assert static == imported, module
    assert sorted(layout.outputs(), key=repr) == sorted(layout.REGISTERED.values(), key=repr)


def test_every_registered_output_has_a_producer_a_caption_and_a_report_rule():
    report = REPO / "workflow" / "report"
    outs = layout.outputs()
    assert {o.rule for o in outs} == set(REPORT_RULES)
    for o in outs:
        module, function = o.producer.split(":")
        assert callable(getattr(importlib.import_module(module), function)), o
        assert (report / o.caption).is_file(), (
            f"{o.kind} {o.name}: caption workflow/report/{o.caption} missing"
        )
    captions = {o.caption for o in outs}
    orphans = [p.name for p in report.glob("*.rst") if p.name.startswith(("fig_", "table_"))]
    assert not set(orphans) - captions, "captions of no registered table or figure"
    files = [f for o in outs for f in o.keys.values()]
    assert len(files) == len(set(files))


def test_registry_needs_literal_arguments():
    src = 'from shortcut_psd.layout import table\nNAME = "x"\n@table(NAME, rule="aggregate")\ndef t(s): ...\n'
    with pytest.raises(ValueError, match="as literals"):
        layout.read_registry("aggregate", source=src)
    src = '@table("x", rule="aggregate", needs=("tables",))\ndef t(s): ...\n'
    with pytest.raises(ValueError, match="not a kind of input file"):
        layout.read_registry("aggregate", source=src)
    src = '@figure("x_y", rule="figures", needs=("table:auc", "psd_pretrained"))\ndef f(s): ...\n'
    [out] = layout.read_registry("plots", source=src)
    assert out.keys == {"x_y_png": "figures/x_y.png", "x_y_pdf": "figures/x_y.pdf"}
    assert out.caption == "fig_x_y.rst" and out.producer == "shortcut_psd.plots:f"


def _script_of_rule() -> dict[str, str]:
    out = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for rule, script in re.findall(
            r'rule (\w+):.*?script:\s*"\.\./scripts/(\w+\.py)"', smk.read_text(), re.S
        ):
            out[rule] = script
    return out


def test_scripts_write_only_registered_tables_and_figures():
    """The report's scripts take what they write from the registry (no output named in the script), and no
    script names a file under tables/ or figures/ itself."""
    scripts = _script_of_rule()
    for rule in REPORT_RULES:
        tree = ast.parse((REPO / "workflow" / "scripts" / scripts[rule]).read_text())
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "outputs"
        ]
        assert [[(k.arg, ast.literal_eval(k.value)) for k in c.keywords] for c in calls] == [[("rule", rule)]]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                assert not (node.value.attr == "output" and node.attr not in ("items", "keys")), (
                    f"{scripts[rule]} names output {node.attr}: take it from layout.outputs"
                )
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
                if node.value.attr == "output":
                    assert not isinstance(node.slice, ast.Constant) or node.slice.value == 0, scripts[rule]
    for path in (REPO / "workflow" / "scripts").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"(^|/)(tables|figures)/", node.value), f"{path.name}: {node.value!r}"


def test_registered_tables_and_figures_from_a_jobs_inputs(tmp_path):
    """Rule aggregate's tables and rule figures' figures, produced from a job's inputs looked up by kind
    (layout.Inputs), on hand-made job outputs: the same tables as from the results folder."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    from matplotlib.figure import Figure
    from test_aggregate import ARTIFACTS, INITS, _curve, _peak, make_results

    from shortcut_psd import aggregate as agg
    from shortcut_psd import plots
    from shortcut_psd.io import save_npz, write_csv, write_json

    root, seeds = tmp_path / "r", [0, 1]
    lay = layout.Layout(root)
    conds = make_results(root, seeds)
    write_json(lay.path("card", dataset="t"), {"name": "t", "counts": {"train": {"a": 3, "b": 4}}})
    _curve(lay.path("source_spectrum_json", source="photos", edit="none"), _peak(0.1))
    rng = np.random.default_rng(0)
    save_npz(lay.path("source_data", source="photos", edit="none"), images=rng.random((8, 1, 8, 8)))
    labels = np.arange(8) % 2
    for a in ARTIFACTS:
        clean = rng.random((8, 1, 8, 8))
        save_npz(lay.path("artifact_images", target="t", artifact=a, aseed=0), labels=labels, clean=clean,
                 artifacted=np.clip(clean + 0.1, 0, 1))  # fmt: skip
    cells = [(i, a, p, s) for i in INITS for a in ARTIFACTS for p in ("0", "1") for s in seeds]
    pre = [(i, s) for i in INITS for s in seeds]
    arts = [(a, s) for a in ARTIFACTS for s in seeds]
    files = {
        "eval_metrics": [
            lay.pattern("eval_metrics", init=i, target="t", artifact=a, p=p, seed=s) for i, a, p, s in cells
        ],
        "psd_pretrained": [lay.pattern("psd_pretrained", init=i, target="t", seed=s) for i, s in pre],
        "psd_finetuned": [
            lay.pattern("psd_finetuned", init=i, target=t, artifact=a, p=p, seed=s) for i, t, a, p, s in conds
        ],
        "artifact_psd": [lay.pattern("artifact_psd", target="t", artifact=a, aseed=s) for a, s in arts],
        "card": [lay.pattern("card", dataset="t")],
    }
    params = {
        "inits": INITS,
        "targets": ["t"],
        "artifacts": ARTIFACTS,
        "prevalences": [0, 1],
        "seeds": seeds,
        "conditions": conds,
        "artifact_seeds": {s: s for s in seeds},
        "stats": {"bootstrap": 50, "seed": 0, "ci": 0.95, "permutations": 50, "alpha": 0.05},
        "source_pairs": [["photos", "none"]],
        "p0_models": {},
    }
    study = agg.Aggregation(layout.Inputs(files), params)
    tables = {t.name: t.produce(study) for t in layout.outputs(rule="aggregate")}
    assert all(isinstance(f, pd.DataFrame) and len(f) for f in tables.values()), tables
    from_root = agg.psd_tables(root, conds, INITS, ["t"], seeds)
    pd.testing.assert_frame_equal(tables["psd_scalars"], from_root[0])
    pd.testing.assert_frame_equal(
        tables["auc"], agg.auc_table(agg.load_metrics(root, INITS, ["t"], ARTIFACTS, [0, 1], seeds))
    )
    for name in layout.needs("figures")["table"]:
        write_csv(lay.path("table", name=name), tables[name])

    files |= {
        "table": [lay.pattern("table", name=n) for n in layout.needs("figures")["table"]],
        "source_spectrum": [lay.pattern("source_spectrum", source="photos", edit="none")],
        "source_data": [lay.pattern("source_data", source="photos", edit="none")],
        "artifact_images": [
            lay.pattern("artifact_images", target="t", artifact=a, aseed=0) for a in ARTIFACTS
        ],
    }
    data = plots.FigureData(layout.Inputs(files), params)
    for fig in layout.outputs(rule="figures"):
        drawn = fig.produce(data)
        assert isinstance(drawn, Figure), fig.name
        plt.close(drawn)
