# Supervised pre-training of the model on each (edited) source, one model per seed.


rule pretrain:
    input:
        data=L.pattern("source_data"),
    output:
        model=L.pattern("pretrain_model"),
        history=L.pattern("pretrain_history"),
        dynamics=L.pattern("pretrain_dynamics"),
    log:
        L.log("pretrain"),
    benchmark:
        L.benchmark("pretrain")
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["train"]["mem_mb"],
        runtime=RES["train"]["runtime"],
        gpu=GPU,
    params:
        arch=config["model"]["arch"],
        model_kwargs=config["model"]["kwargs"],
        recipe=config["pretrain"],
        device=config["device"],
        snapshots=pretrain_snapshots,
    script:
        "../scripts/pretrain.py"
