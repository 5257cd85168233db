# Aggregation: tables (CSV) with means, CIs and tests over seeds; figures; everything in the report.


rule aggregate:
    input:
        metrics=eval_files(),
        psd=psd_files(),
        artifact_psd=artifact_psd_files(),
        cards=dataset_cards(),
    output:
        **{
            t: report(
                f"{R}/tables/{t}.csv",
                caption=f"../report/table_{t}.rst",
                category="3. Tables",
                labels={"table": t},
            )
            for t in TABLES
        },
    log:
        f"{R}/logs/aggregate.log",
    benchmark:
        f"{R}/benchmarks/aggregate.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        results=lambda wildcards, input: str(Path(input.cards[0]).parents[2]),  # R/data/<name>/card.json
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
        auc_summary=f"{R}/tables/auc_summary.csv",
        alignment=f"{R}/tables/alignment.csv",
        association=f"{R}/tables/alignment_association.csv",
        psd=psd_files(),
        artifact_psd=artifact_psd_files(),
        spectra=source_spectrum_files(),
        source_data=[f"{R}/sources/{s}/{e}/data.npz" for s, e in source_pairs(config)],
        artifact_images=artifact_image_files(),
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
            for f in FIGURES
            for ext in ("png", "pdf")
        },
    log:
        f"{R}/logs/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        results=lambda wildcards, input: str(Path(input.auc_summary).parents[1]),  # R/tables/x.csv
        source_pairs=[list(x) for x in source_pairs(config)],
        inits=INITS,
        artifacts=ARTIFACTS,
        targets=TARGETS,
        seeds=SEEDS,
        conditions=[list(c) for c in CONDITIONS],
        artifact_specs=config["artifacts"],
        artifact_seeds={s: artifact_seed_for(config, s) for s in SEEDS},
    script:
        "../scripts/figures.py"


rule provenance:
    output:
        report(
            f"{R}/run_config.yaml",
            caption="../report/provenance.rst",
            category="4. Provenance",
            labels={"file": "resolved config"},
        ),
    log:
        f"{R}/logs/provenance.log",
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        config=config,
    script:
        "../scripts/provenance.py"
