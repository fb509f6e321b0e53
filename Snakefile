# losslandscapes: regenerate the tables and figures of Chitturi, Verpoort, Lee & Wales,
# Mach. Learn.: Sci. Technol. 1 (2020) 023002. Run: snakemake --cores N [--config preset=...]
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# jobs find the package in this checkout (also inside --sdm conda environments)
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH='{SRC}'${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

from losslandscapes.config import resolve  # noqa: E402


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
CFG = resolve(
    config, os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/landscapes.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
