# Gradient PSD ("learning priority") of every init before fine-tuning, and of every fine-tuned model,
# on clean target images. GPU rules: one backward per batch, FFT and radial binning on the device.


rule psd_pretrained:
    input:
        data=L.pattern("data", dataset="{target}"),
        init=init_checkpoint,
    output:
        psd=L.pattern("psd_pretrained"),
        psd_json=L.pattern("psd_pretrained_json"),
    log:
        L.log("psd_pretrained"),
    benchmark:
        L.benchmark("psd_pretrained")
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
        data=L.pattern("data", dataset="{target}"),
    output:
        psd=finetuned_psd_outputs("psd_finetuned"),
        psd_json=finetuned_psd_outputs("psd_finetuned_json"),
    log:
        L.log("psd_finetuned"),
    benchmark:
        L.benchmark("psd_finetuned")
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
