"""The foundation every other package stands on: errors, units, names, YAML, secret references, spec
value types, PromQL quoting and external tools. Imports nothing else of memprov.
"""
