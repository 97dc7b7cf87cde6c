"""The alert kinds, one module each: its spec settings, its derived values (computed once, in explicit
units, when the spec is resolved), its reference rules in PromQL and its alert texts. Backends say
per kind how they express it (:mod:`provisioner.render`).
"""
