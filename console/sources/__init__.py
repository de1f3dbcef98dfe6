"""The console's data sources: the only modules that import client libraries.

One module per back end (`kube.py` for the official `kubernetes` client, `kafka.py` for kafka-python-ng,
`prometheus.py` for prometheus-api-client, `loki.py` for LogQL over HTTP, `sandbox.py` for the local
sandbox's state and log files). Each returns the console's own dataclasses (`console.model`), never a
library's objects, and reports failures as `SourceError` naming itself and its address, so one source
that is down never takes the others with it (k9s's `internal/dao` layering; STYLE.md "console/").
"""
