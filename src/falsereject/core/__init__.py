"""Config, params, I/O, stage plumbing, templates, taxonomy, refusal detector: shared by every phase."""

import os as _os

# Before anything loads torch/OpenMP (every stage imports core first): threads that sleep
# instead of spinning while they wait, so model stages sharing a few cores do not starve.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
