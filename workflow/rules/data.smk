# Data sets: built-in ones from images inside installed packages, or the user's own formats.


rule prepare_dataset:
    input:
        dataset_inputs,
    output:
        data=f"{R}/data/{{dataset}}/data.npz",
        card=f"{R}/data/{{dataset}}/card.json",
        card_md=f"{R}/data/{{dataset}}/card.md",
        sheet=report(
            f"{R}/data/{{dataset}}/examples.png",
            caption="../report/dataset_examples.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"data set": "{dataset}", "figure": "examples per class"},
        ),
    log:
        f"{R}/logs/data/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/data/{{dataset}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=RES["data"]["mem_mb"],
        runtime=RES["data"]["runtime"],
    params:
        spec=lambda wc: dataset_spec(wc.dataset),
        image=config["image"],
        seed=config["data_seed"],
    script:
        "../scripts/prepare_dataset.py"
