# Artifact injection: every target image with and without the artifact, and the artifact's own PSD, once
# per artifact seed (training seed s uses artifact seed shortcut_psd.config.artifact_seed_for(config, s):
# artifact_seed + s, or artifact_seed for every s when artifact_seed_follows_seed is false).


rule inject_artifact:
    input:
        data=f"{R}/data/{{target}}/data.npz",
    output:
        images=f"{R}/artifacts/{{target}}/{{artifact}}/seed{{aseed}}/images.npz",
        psd=f"{R}/artifacts/{{target}}/{{artifact}}/seed{{aseed}}/psd.npz",
        psd_json=f"{R}/artifacts/{{target}}/{{artifact}}/seed{{aseed}}/psd.json",
    log:
        f"{R}/logs/artifacts/{{target}}/{{artifact}}/seed{{aseed}}.log",
    benchmark:
        f"{R}/benchmarks/artifacts/{{target}}/{{artifact}}/seed{{aseed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    params:
        spec=lambda wc: config["artifacts"][wc.artifact],
        seed=lambda wc: int(wc.aseed),
        psd=config["psd"],
    script:
        "../scripts/inject_artifact.py"
