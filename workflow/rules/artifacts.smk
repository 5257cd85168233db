# Artifact injection: every target image with and without the artifact, and the artifact's own PSD, once
# per artifact seed (training seed s uses artifact seed shortcut_psd.config.artifact_seed_for(config, s):
# artifact_seed + s, or artifact_seed for every s when artifact_seed_follows_seed is false).


rule inject_artifact:
    input:
        data=L.pattern("data", dataset="{target}"),
    output:
        images=L.pattern("artifact_images"),
        psd=L.pattern("artifact_psd"),
        psd_json=L.pattern("artifact_psd_json"),
    log:
        L.log("inject_artifact"),
    benchmark:
        L.benchmark("inject_artifact")
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
