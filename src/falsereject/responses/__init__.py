"""Phase 2: structured (instruct and chain-of-thought) responses and the public-schema export."""
