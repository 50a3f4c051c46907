"""The Dagster code location of the Meta Ads insights ELT (see orchestrate/dagster/README.md).

A program of its own: it imports nothing from meta_elt, the tap or the sandbox. Extraction runs
through the `meta-elt` command line (the same backfill/sync, state ids and locks as an operator's),
and the marts are the dbt project as dagster-dbt assets.
"""

import os

# Telemetry off in every process that imports the code location (dbt's own is off in
# transform/dbt_project.yml's flags, for every run of the project).
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_USE_COLORS", "false")
