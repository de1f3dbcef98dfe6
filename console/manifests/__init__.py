"""Kustomize manifests as data: render overlays, validate them against real schemas, add up their budget.

Pure functions over rendered objects (plain dicts), so the CLI commands, the tests and runbooks share them.
"""
