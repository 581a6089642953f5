"""Phase 1: seeds, entity graphs, the adversarial loop, curation, dedup and split."""
