# losslandscapes: regenerate the tables and figures of Chitturi, Verpoort, Lee & Wales,
# Mach. Learn.: Sci. Technol. 1 (2020) 023002. Run: snakemake --cores N [--config preset=...]
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# jobs find the package in this checkout (also inside --sdm conda environments)
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH='{SRC}'${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

from losslandscapes.config import resolve, with_user_files  # noqa: E402

SCHEMA = os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")


configfile: "config.yaml"


# a user's --configfile adds to the paper's configuration (experiments by id, data sets, tables
# and figures by name) instead of replacing its lists, as Snakemake's own merge would
config.clear()
config.update(
    with_user_files(
        os.path.join(workflow.basedir, "config.yaml"),
        workflow.overwrite_configfiles,
        workflow.config_settings.config,
        SCHEMA,
    )
)
CFG = resolve(config, SCHEMA)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/landscapes.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
