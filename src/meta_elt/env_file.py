"""`.env`, read the way Meltano reads it: variables already set in the environment win.

meta-elt loads the project's `.env` (or ``--env-file``) into its own environment once, at start.
Every Meltano it starts gets ``--env-file /dev/null`` (``MELTANO_ENV_FILE_ARGS``): Meltano would
otherwise read `.env` again and hand every variable in it, every tenant's token included, to every
plugin, past the scrubbing in secrets.scrubbed_env.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from dotenv import dotenv_values

#: Meltano's global option that keeps it from reading `.env` a second time.
MELTANO_ENV_FILE_ARGS = ("--env-file", os.devnull)


def load(path: Path, environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set each variable of ``path`` not already set; the names set. A missing file sets none."""
    if not path.is_file():
        return []
    loaded = []
    for name, value in dotenv_values(path).items():
        if value is not None and name not in environ:
            environ[name] = value
            loaded.append(name)
    return loaded
