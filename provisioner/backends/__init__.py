"""Backends (what to render) and their targets (where it lives)."""
