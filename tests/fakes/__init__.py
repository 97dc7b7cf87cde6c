"""Faithful local fakes of external APIs that have no emulator."""
