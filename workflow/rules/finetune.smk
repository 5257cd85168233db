# Shortcut-injected fine-tuning of every init, and evaluation on clean / iid / ood test sets.
# A p = 0 model sees no artifact, so one per init, target and seed (under artifact "none") serves every
# artifact: evaluate_clean_model scores it on each artifact's test sets. A model with p > 0 is scored on
# its own artifact's test sets in the same job (the model is in memory; a job costs seconds to start).


ruleorder: evaluate_clean_model > finetune


rule finetune:
    input:
        data=finetune_data,
        init=init_checkpoint,
    output:
        model=f"{R}/finetune/{{init}}/{{target}}/{{artifact}}/p{{p}}/seed{{seed}}/model.pt",
        history=f"{R}/finetune/{{init}}/{{target}}/{{artifact}}/p{{p}}/seed{{seed}}/history.csv",
        metrics=f"{R}/eval/{{init}}/{{target}}/{{artifact}}/p{{p}}/seed{{seed}}/metrics.json",
    log:
        f"{R}/logs/finetune/{{init}}/{{target}}/{{artifact}}/p{{p}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/finetune/{{init}}/{{target}}/{{artifact}}/p{{p}}/seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["train"]["mem_mb"],
        runtime=RES["train"]["runtime"],
        gpu=GPU,
    params:
        init=init_params,
        recipe=config["finetune"],
        device=config["device"],
        evaluation=config["evaluation"],
    script:
        "../scripts/finetune.py"


rule evaluate_clean_model:
    input:
        model=f"{R}/finetune/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}/model.pt",
        images=expand(
            f"{R}/artifacts/{{{{target}}}}/{{artifact}}/images.npz", artifact=ARTIFACTS
        ),
    output:
        metrics=expand(
            f"{R}/eval/{{{{init}}}}/{{{{target}}}}/{{artifact}}/p0/seed{{{{seed}}}}/metrics.json",
            artifact=ARTIFACTS,
        ),
    log:
        f"{R}/logs/eval/{{init}}/{{target}}/p0/seed{{seed}}.log",
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["train"]["mem_mb"],
        runtime=RES["train"]["runtime"],
        gpu=GPU,
    params:
        artifacts=ARTIFACTS,
        evaluation=config["evaluation"],
        device=config["device"],
    script:
        "../scripts/evaluate_clean.py"
