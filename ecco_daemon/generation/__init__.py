"""Decoding: token by token with scores and alternatives, batched across users, or over a static cache."""
