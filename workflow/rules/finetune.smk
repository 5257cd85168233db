# Shortcut-injected fine-tuning of every init, and evaluation on clean / iid / ood test sets.
# A p = 0 model sees no artifact, so one per init, target and seed (under artifact "none", rule finetune)
# serves every artifact: evaluate_clean_model scores it on each artifact's test sets.
# The p > 0 models of one (init, target, artifact, seed) share a job (rule finetune_shortcut): they start
# from the same init and data, and a job costs ~7 s of Python/torch/timm start-up on a CPU, which would
# otherwise dominate the study. Each model still has its own files; the job scores each on its own
# artifact's test sets while it is in memory. Editing one artifact reruns only that artifact's jobs.


rule finetune:
    input:
        data=f"{R}/data/{{target}}/data.npz",
        init=init_checkpoint,
    output:
        model=f"{R}/finetune/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}/model.pt",
        history=f"{R}/finetune/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}/history.csv",
        metrics=f"{R}/eval/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}/metrics.json",
    log:
        f"{R}/logs/finetune/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/finetune/{{init}}/{{target}}/{CLEAN}/p0/seed{{seed}}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=RES["train"]["mem_mb"],
        runtime=RES["train"]["runtime"],
        gpu=GPU,
    params:
        init=init_params,
        prevalences=["0"],
        artifact=CLEAN,
        recipe=config["finetune"],
        device=config["device"],
        evaluation=config["evaluation"],
    script:
        "../scripts/finetune.py"


if NONZERO_P:

    rule finetune_shortcut:
        input:
            data=f"{R}/artifacts/{{target}}/{{artifact}}/images.npz",
            init=init_checkpoint,
        output:
            model=expand(
                f"{R}/finetune/{{{{init}}}}/{{{{target}}}}/{{{{artifact}}}}/p{{p}}/seed{{{{seed}}}}/model.pt",
                p=NONZERO_P,
            ),
            history=expand(
                f"{R}/finetune/{{{{init}}}}/{{{{target}}}}/{{{{artifact}}}}/p{{p}}/seed{{{{seed}}}}/history.csv",
                p=NONZERO_P,
            ),
            metrics=expand(
                f"{R}/eval/{{{{init}}}}/{{{{target}}}}/{{{{artifact}}}}/p{{p}}/seed{{{{seed}}}}/metrics.json",
                p=NONZERO_P,
            ),
        log:
            f"{R}/logs/finetune/{{init}}/{{target}}/{{artifact}}/seed{{seed}}.log",
        benchmark:
            f"{R}/benchmarks/finetune/{{init}}/{{target}}/{{artifact}}/seed{{seed}}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: config["threads"]
        resources:
            mem_mb=RES["train"]["mem_mb"],
            runtime=RES["train"]["runtime"],
            gpu=GPU,
        params:
            init=init_params,
            prevalences=NONZERO_P,
            artifact=lambda wc: wc.artifact,
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
