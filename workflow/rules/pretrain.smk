# Supervised pre-training of the model on each (edited) source, one model per seed.


rule pretrain:
    input:
        data=f"{R}/sources/{{source}}/{{edit}}/data.npz",
    output:
        model=f"{R}/pretrain/{{source}}/{{edit}}/seed{{seed}}/model.pt",
        history=f"{R}/pretrain/{{source}}/{{edit}}/seed{{seed}}/history.csv",
        dynamics=f"{R}/pretrain/{{source}}/{{edit}}/seed{{seed}}/dynamics.npz",
    log:
        f"{R}/logs/pretrain/{{source}}/{{edit}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/pretrain/{{source}}/{{edit}}/seed{{seed}}.tsv"
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
