"""The embedded local model: weights, batching engine, sampler, the student loader."""
