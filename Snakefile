# shortcut-psd: frequency learning priorities and frequency shortcuts in medical-imaging transfer learning.
# The study: README.md; its definitions: docs/DEFINITIONS.md. This file is a table of contents.

import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, f"{workflow.basedir}/src")
from shortcut_psd import preload  # noqa: E402
from shortcut_psd.config import prepare  # noqa: E402

# config.yaml is the default study; `--configfile other.yaml` replaces it (configs/ hold complete
# variants) instead of being merged into it, so a smaller config really is smaller.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# Schema validation (workflow/schemas/config.schema.yaml, defaults filled in) and semantic checks:
# a bad config stops here, naming the key, before any job is planned.
prepare(config, workflow.configfiles)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/sources.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/artifacts.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/psd.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/probes.smk"


# Local runs: jobs start as forks of one process that has imported torch, timm and the library
# (shortcut_psd.preload; `preload: false` turns it off). Never under SLURM or with --use-conda.
onstart:
    preload.start_for_workflow(workflow, config)


onsuccess:
    preload.stop()


onerror:
    preload.stop()


rule all:
    default_target: True
    input:
        all_outputs(),
        probe_outputs(),
