"""The console's view-free state: plain dataclasses and pure functions over them.

Sources (`console.sources`) fill these; commands and the dashboard read them. Nothing here does I/O or
imports a client library, so every rule (lag status, rollout progress, what KEDA would do) is tested on
crafted inputs.
"""
