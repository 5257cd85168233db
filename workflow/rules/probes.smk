# Behavioural spectral probes (docs/DEFINITIONS.md, "Probes"): band-masking reliance and Fourier heat
# maps of every init before fine-tuning (through a seeded linear probe) and of its fine-tuned models, one
# job per (init, target, seed); then their tables and figures, related to gradient PSDs and shortcut gaps
# (registered in shortcut_psd.probe_tables: shortcut_psd.layout.outputs).


rule probes:
    input:
        data=L.pattern("data", dataset="{target}"),
        init=init_checkpoint,
        models=finetuned_models,
    output:
        npz=L.pattern("probes"),
        json=L.pattern("probes_json"),
    log:
        L.log("probes"),
    benchmark:
        L.benchmark("probes")
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["psd"]["mem_mb"],
        runtime=RES["psd"]["runtime"],
        gpu=GPU,
    params:
        init=init_params,
        labels=finetuned_labels,
        probes=config["probes"],
        stats=config["stats"],
        device=config["device"],
    script:
        "../scripts/probes_run.py"


rule probes_report:
    input:
        **report_inputs("probes_report"),
    output:
        **report_outputs("probes_report"),
    log:
        L.log("probes_report"),
    benchmark:
        L.benchmark("probes_report")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        artifacts=ARTIFACTS,
        artifact_seeds={s: artifact_seed_for(config, s) for s in SEEDS},
        p0_models=P0_MODELS,
        stats=config["stats"],
    script:
        "../scripts/probes_report.py"
