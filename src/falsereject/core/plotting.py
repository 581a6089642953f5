"""matplotlib for headless stages: one place that picks the Agg backend before pyplot loads."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """`matplotlib.pyplot` on the Agg backend (PNG files, no display), imported on first use so
    stages that never plot do not pay for matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
