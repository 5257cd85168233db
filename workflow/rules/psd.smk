# Gradient PSD ("learning priority") of every init before fine-tuning, and of every fine-tuned model,
# on clean target images. GPU rules: one backward per batch, FFT and radial binning on the device.


rule psd_pretrained:
    input:
        data=f"{R}/data/{{target}}/data.npz",
        init=init_checkpoint,
    output:
        psd=f"{R}/psd/pretrained/{{init}}/{{target}}/seed{{seed}}/psd.npz",
        psd_json=f"{R}/psd/pretrained/{{init}}/{{target}}/seed{{seed}}/psd.json",
    log:
        f"{R}/logs/psd/pretrained/{{init}}/{{target}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/psd/pretrained/{{init}}/{{target}}/seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["psd"]["mem_mb"],
        runtime=RES["psd"]["runtime"],
        gpu=GPU,
    params:
        init=init_params,
        psd=config["psd"],
        device=config["device"],
    script:
        "../scripts/psd_pretrained.py"


rule psd_finetuned:
    input:
        models=finetuned_models,
        data=f"{R}/data/{{target}}/data.npz",
    output:
        psd=finetuned_psd_outputs("npz"),
        psd_json=finetuned_psd_outputs("json"),
    log:
        f"{R}/logs/psd/finetuned/{{init}}/{{target}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/psd/finetuned/{{init}}/{{target}}/seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["psd"]["mem_mb"],
        runtime=RES["psd"]["runtime"],
        gpu=GPU,
    params:
        labels=finetuned_labels,
        psd=config["psd"],
        device=config["device"],
    script:
        "../scripts/psd_finetuned.py"
