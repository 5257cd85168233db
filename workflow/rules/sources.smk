# Source editing in the frequency domain (whitening, low-/high-pass, band-stop), before pre-training.


rule edit_source:
    input:
        data=L.pattern("data", dataset="{source}"),
    output:
        data=L.pattern("source_data"),
        spectrum=L.pattern("source_spectrum"),
        spectrum_json=L.pattern("source_spectrum_json"),
    log:
        L.log("edit_source"),
    benchmark:
        L.benchmark("edit_source")
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
