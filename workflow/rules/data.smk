# Data sets: built-in ones from images inside installed packages, or the user's own formats.


rule prepare_dataset:
    input:
        dataset_inputs,
    output:
        data=L.pattern("data"),
        card=L.pattern("card"),
        card_md=L.pattern("card_md"),
        sheet=report(
            L.pattern("examples"),
            caption="../report/dataset_examples.rst",
            category="1. Data",
            subcategory="{dataset}",
            labels={"data set": "{dataset}", "figure": "examples per class"},
        ),
    log:
        L.log("prepare_dataset"),
    benchmark:
        L.benchmark("prepare_dataset")
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
