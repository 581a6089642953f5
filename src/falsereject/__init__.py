"""FalseReject pipeline library: config, LLM client, graph, agents, judge, metrics, data."""
