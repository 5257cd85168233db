# Behavioural spectral probes (docs/DEFINITIONS.md, "Probes"): band-masking reliance and Fourier heat
# maps of every init before fine-tuning (through a seeded linear probe) and of its fine-tuned models, one
# job per (init, target, seed); then their tables and figures, related to gradient PSDs and shortcut gaps.


rule probes:
    input:
        data=f"{R}/data/{{target}}/data.npz",
        init=init_checkpoint,
        models=finetuned_models,
    output:
        npz=f"{R}/probes/{{init}}/{{target}}/seed{{seed}}/probes.npz",
        json=f"{R}/probes/{{init}}/{{target}}/seed{{seed}}/probes.json",
    log:
        f"{R}/logs/probes/{{init}}/{{target}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/probes/{{init}}/{{target}}/seed{{seed}}.tsv"
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
        probes=probe_files(),
        psd=psd_files(),
        artifact_psd=artifact_psd_files(),
        metrics=eval_files(),
    output:
        **{
            t: report(
                f"{R}/tables/{t}.csv",
                caption=f"../report/table_{t}.rst",
                category="3. Tables",
                labels={"table": t},
            )
            for t in PROBE_TABLES
        },
        band_png=report(
            f"{R}/figures/probe_band_reliance.png",
            caption="../report/fig_probe_band_reliance.rst",
            category="2. Figures",
            labels={"figure": "probe_band_reliance"},
        ),
        band_pdf=f"{R}/figures/probe_band_reliance.pdf",
        heat_png=report(
            f"{R}/figures/probe_heatmap.png",
            caption="../report/fig_probe_heatmap.rst",
            category="2. Figures",
            labels={"figure": "probe_heatmap"},
        ),
        heat_pdf=f"{R}/figures/probe_heatmap.pdf",
    log:
        f"{R}/logs/probes_report.log",
    benchmark:
        f"{R}/benchmarks/probes_report.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        mem_mb=RES["analysis"]["mem_mb"],
        runtime=RES["analysis"]["runtime"],
    params:
        results=lambda wildcards, input: str(Path(input.probes[0]).parents[4]),  # R/probes/i/t/seedS/x.npz
        artifacts=ARTIFACTS,
        artifact_seeds={s: artifact_seed_for(config, s) for s in SEEDS},
        stats=config["stats"],
    script:
        "../scripts/probes_report.py"
