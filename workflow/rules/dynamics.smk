# Learning order (docs/DEFINITIONS.md, "Learning order"): the snapshots that pre-training and fine-tuning
# record (dynamics.npz next to each model) summarised into tables and figures. Only aggregation settings
# (thresholds, the natural / medical inits, log_steps to select the requested steps, stats) are params
# here; what the snapshots hold is decided by the training rules (params snapshots, see common.smk).
# DYNAMICS_ENTRIES (common.smk): one snapshot file per trained model.


rule dynamics:
    input:
        snapshots=[e["path"] for e in DYNAMICS_ENTRIES],
    output:
        **{
            f"{f}_{ext}": (
                report(
                    f"{R}/figures/{f}.png",
                    caption=f"../report/fig_{f}.rst",
                    category="2. Figures",
                    labels={"figure": f},
                )
                if ext == "png"
                else f"{R}/figures/{f}.pdf"
            )
            for f in DYNAMICS_FIGURES
            for ext in ("png", "pdf")
        },
        per_model=report(
            f"{R}/tables/dynamics_per_model.csv",
            caption="../report/table_dynamics_per_model.rst",
            category="3. Tables",
            labels={"table": "dynamics_per_model"},
        ),
        summary=report(
            f"{R}/tables/dynamics_summary.csv",
            caption="../report/table_dynamics_summary.rst",
            category="3. Tables",
            labels={"table": "dynamics_summary"},
        ),
        tests=report(
            f"{R}/tables/dynamics_tests.csv",
            caption="../report/table_dynamics_tests.rst",
            category="3. Tables",
            labels={"table": "dynamics_tests"},
        ),
    log:
        f"{R}/logs/dynamics.log",
    benchmark:
        f"{R}/benchmarks/dynamics.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        entries=[{k: v for k, v in e.items() if k != "path"} for e in DYNAMICS_ENTRIES],
        dynamics=config["dynamics"],
        stats=config["stats"],
    script:
        "../scripts/dynamics_tables.py"
