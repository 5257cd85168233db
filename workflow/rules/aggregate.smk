# Aggregation: tables (CSV) with means, CIs and tests over seeds; figures; everything in the report.
# The tables and figures are the library's registered ones (shortcut_psd.layout.outputs: functions in
# shortcut_psd.aggregate and shortcut_psd.plots, captions in workflow/report/); so are each rule's inputs
# (what its outputs need, named by kind: the scripts look them up, not rebuilding paths).


rule aggregate:
    input:
        **report_inputs("aggregate"),
    output:
        **report_outputs("aggregate"),
    log:
        L.log("aggregate"),
    benchmark:
        L.benchmark("aggregate")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        conditions=[list(c) for c in CONDITIONS],
        inits=INITS,
        artifacts=ARTIFACTS,
        targets=TARGETS,
        seeds=SEEDS,
        prevalences=config["prevalences"],
        artifact_seeds={s: artifact_seed_for(config, s) for s in SEEDS},
        stats=config["stats"],
        bands=config["psd"]["bands_cpp"],
        init_specs=config["inits"],
    script:
        "../scripts/aggregate.py"


rule figures:
    input:
        **report_inputs("figures"),
    output:
        **report_outputs("figures"),
    log:
        L.log("figures"),
    benchmark:
        L.benchmark("figures")
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        source_pairs=[list(x) for x in source_pairs(config)],
        inits=INITS,
        artifacts=ARTIFACTS,
        targets=TARGETS,
        seeds=SEEDS,
        conditions=[list(c) for c in CONDITIONS],
        artifact_specs=config["artifacts"],
        artifact_seeds={s: artifact_seed_for(config, s) for s in SEEDS},
        p0_models=P0_MODELS,
    script:
        "../scripts/figures.py"


rule provenance:
    output:
        report(
            L.pattern("run_config"),
            caption="../report/provenance.rst",
            category="4. Provenance",
            labels={"file": "resolved config"},
        ),
    log:
        L.log("provenance"),
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        config=config,
    script:
        "../scripts/provenance.py"
