"""Phase 3: SFT data and the fine-tuning loop."""
