"""Prometheus rule groups per job (the recording rules and each alert kind's rules) and the promtool
unit tests generated for them.
"""
