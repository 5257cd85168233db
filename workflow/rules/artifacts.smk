# Artifact injection: every target image with and without the artifact, and the artifact's own PSD.


rule inject_artifact:
    input:
        data=f"{R}/data/{{target}}/data.npz",
    output:
        images=f"{R}/artifacts/{{target}}/{{artifact}}/images.npz",
        psd=f"{R}/artifacts/{{target}}/{{artifact}}/psd.npz",
        psd_json=f"{R}/artifacts/{{target}}/{{artifact}}/psd.json",
    log:
        f"{R}/logs/artifacts/{{target}}/{{artifact}}.log",
    benchmark:
        f"{R}/benchmarks/artifacts/{{target}}/{{artifact}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    params:
        spec=lambda wc: config["artifacts"][wc.artifact],
        seed=config["artifact_seed"],
        psd=config["psd"],
    script:
        "../scripts/inject_artifact.py"
