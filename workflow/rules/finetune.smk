# Shortcut-injected fine-tuning of every init, and evaluation on clean / iid / ood test sets
# (docs/DEFINITIONS.md, "Shortcut protocol" and "Baselines").
# p = 0: an artifact whose clean images are the raw target images (shortcut_psd.config.shares_clean_model)
# shares one model per init, target and seed, trained on the raw images (artifact "none", rule finetune)
# and scored on each such artifact's test sets by evaluate_clean_model. An artifact whose clean images
# differ (photon_noise: baseline-dose noise) trains its own p = 0 model on its clean images, in its
# shortcut job (rule finetune_shortcut_own_p0), under its own name.
# The models of one (init, target, artifact, seed) share a job: they start from the same init and data,
# and a job costs ~7 s of Python/torch/timm start-up on a CPU, which would otherwise dominate the study.
# Each model still has its own files; the job scores each on its own artifact's test sets while it is in
# memory. Editing one artifact reruns only that artifact's jobs. A shortcut job reads the artifact images
# drawn with the artifact seed of its training seed (shortcut_psd.config.artifact_seed_for).


rule finetune:
    input:
        data=L.pattern("data", dataset="{target}"),
        init=init_checkpoint,
    output:
        model=L.pattern("finetune_model", artifact=CLEAN, p=0),
        history=L.pattern("finetune_history", artifact=CLEAN, p=0),
        metrics=L.pattern("eval_metrics", artifact=CLEAN, p=0),
        dynamics=L.pattern("finetune_dynamics", artifact=CLEAN, p=0),
    log:
        L.log("finetune", artifact=CLEAN, p=0),
    benchmark:
        L.benchmark("finetune", artifact=CLEAN, p=0)
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
        artifact_seed=None,
        recipe=config["finetune"],
        device=config["device"],
        evaluation=config["evaluation"],
        snapshots=finetune_snapshots(["0"], CLEAN),
    script:
        "../scripts/finetune.py"


for _name, _artifacts, _prevalences in shortcut_jobs():

    rule:
        name:
            _name
        input:
            data=artifact_images,
            init=init_checkpoint,
        output:
            model=[L.pattern("finetune_model", p=p) for p in _prevalences],
            history=[L.pattern("finetune_history", p=p) for p in _prevalences],
            metrics=[L.pattern("eval_metrics", p=p) for p in _prevalences],
            dynamics=[L.pattern("finetune_dynamics", p=p) for p in _prevalences],
        log:
            L.log("finetune_shortcut"),
        benchmark:
            L.benchmark("finetune_shortcut")
        wildcard_constraints:
            artifact=one_of(_artifacts),
        conda:
            "../../envs/torch.yaml"
        threads: config["threads"]
        resources:
            mem_mb=RES["train"]["mem_mb"],
            runtime=RES["train"]["runtime"],
            gpu=GPU,
        params:
            init=init_params,
            prevalences=_prevalences,
            artifact=lambda wc: wc.artifact,
            artifact_seed=lambda wc: artifact_seed_for(config, wc.seed),
            recipe=config["finetune"],
            device=config["device"],
            evaluation=config["evaluation"],
            snapshots=finetune_snapshots(_prevalences),
        script:
            "../scripts/finetune.py"


if HAS_P0 and CLEAN_MODEL_ARTIFACTS:

    rule evaluate_clean_model:
        input:
            model=L.pattern("finetune_model", artifact=CLEAN, p=0),
            images=clean_model_eval_images,
        output:
            metrics=[
                L.pattern("eval_metrics", artifact=a, p=0)
                for a in CLEAN_MODEL_ARTIFACTS
            ],
        log:
            L.log("evaluate_clean_model"),
        conda:
            "../../envs/torch.yaml"
        threads: config["threads"]
        resources:
            mem_mb=RES["train"]["mem_mb"],
            runtime=RES["train"]["runtime"],
            gpu=GPU,
        params:
            artifacts=CLEAN_MODEL_ARTIFACTS,
            artifact_seed=lambda wc: artifact_seed_for(config, wc.seed),
            max_train_images=config["finetune"]["max_train_images"],
            evaluation=config["evaluation"],
            device=config["device"],
        script:
            "../scripts/evaluate_clean.py"
