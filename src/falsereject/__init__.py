"""FalseReject pipeline library, grouped by pipeline phase: core, llm, generation, responses,
training, evaluation (and testing, for test doubles)."""
