"""Phase 4: benchmarks, the three-class judge, calibration, metrics and reports."""
