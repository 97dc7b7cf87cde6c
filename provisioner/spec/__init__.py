"""Spec loading, overlay merging, validation and resolution."""
