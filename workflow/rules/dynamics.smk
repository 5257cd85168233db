# Learning order (docs/DEFINITIONS.md, "Learning order"): the snapshots that pre-training and fine-tuning
# record (dynamics.npz next to each model) summarised into tables and figures. Only aggregation settings
# (thresholds, the natural / medical inits, log_steps to select the requested steps, stats) are params
# here; what the snapshots hold is decided by the training rules (params snapshots, see common.smk).
# DYNAMICS_ENTRIES (common.smk): one snapshot file per trained model. Tables and figures: registered in
# shortcut_psd.aggregate_dynamics (shortcut_psd.layout.outputs).


rule dynamics:
    input:
        snapshots=[e["path"] for e in DYNAMICS_ENTRIES],
    output:
        **report_outputs("dynamics"),
    log:
        L.log("dynamics"),
    benchmark:
        L.benchmark("dynamics")
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
