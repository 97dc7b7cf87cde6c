"""Grafana dashboards: one per job and an overview per environment, built with grafanalib, serialised
in one pass, previewed as PNGs.
"""
