"""The console's live data layer: a `Hub` per target owns its sources and keeps what each last said.

`make_hub(target)` builds one; `refresh_<area>()` does an area's I/O (one worker thread each, never
overlapping with itself); `snapshot()`, `findings()` and `overview()` read memory only. The `status`
command and the dashboard read nothing else. console/README.md ("The live data layer") documents the API.
"""
