"""FalseReject pipeline library: config, LLM client, graph, agents, judge, metrics, data."""

import os as _os

# Before anything loads torch/OpenMP: threads that sleep instead of spinning while they wait,
# so model stages sharing a few cores with other work do not starve each other.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
