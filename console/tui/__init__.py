"""The live dashboard: `todo-console` with no command opens it (console/README.md, "Dashboard").

Layers, as k9s has them: `app.py` builds the App from a Target (`make_dashboard`, posting's `make_posting`)
and runs one refresh worker per area of the live data layer (console.live.hub); `screens/` draw the hub's
memory and call actions (console.tui.actions) in workers; `widgets/` render model dataclasses and know
nothing of sources. Nothing here imports a client library.
"""
