# Source editing in the frequency domain (whitening, low-/high-pass, band-stop), before pre-training.


rule edit_source:
    input:
        data=f"{R}/data/{{source}}/data.npz",
    output:
        data=f"{R}/sources/{{source}}/{{edit}}/data.npz",
        spectrum=f"{R}/sources/{{source}}/{{edit}}/spectrum.npz",
        spectrum_json=f"{R}/sources/{{source}}/{{edit}}/spectrum.json",
    log:
        f"{R}/logs/sources/{{source}}/{{edit}}.log",
    benchmark:
        f"{R}/benchmarks/sources/{{source}}/{{edit}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    params:
        edit=lambda wc: config["edits"][wc.edit],
        psd=config["psd"],
    script:
        "../scripts/edit_source.py"
