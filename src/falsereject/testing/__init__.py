"""Test doubles that are not product code: the loopback OpenAI-compatible server."""
