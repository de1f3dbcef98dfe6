"""The kernel runbooks run in: this interpreter, always, whatever kernel specs the machine has installed.

papermill looks the notebook's kernel name (`python3`) up among the installed kernel specs: the first found
in `~/.local/share/jupyter`, the venv, `/usr/local/share/jupyter`, `/usr/share/jupyter` wins. A user-wide
`python3` spec pointing at another Python would then run the runbook where `console` and `provisioning` are
not installed, or are another checkout's. This manager ignores the lookup and starts ipykernel on
`sys.executable`: a clean clone with `pip install -e '.[console]'` needs no `ipykernel install` step, and the
runbook always runs the code of the checkout that runs it.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

KERNEL_NAME = "python3"


class InterpreterKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel spec is ipykernel's own, for the running interpreter.

    The kernel is reached over Unix sockets in the temporary directory rather than loopback TCP: no ports
    taken on a shared machine, nothing another local user can connect to, and no warning from ipykernel
    about unencrypted TCP on every run.
    """

    cancellation: ClassVar[Cancellation | None] = None

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", str(Path(tempfile.gettempdir()) / f"todo-runbook-{uuid.uuid4().hex[:12]}"))
        super().__init__(**kwargs)

    async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]  # async, as its parent's
        await super().start_kernel(**kwargs)
        if self.cancellation is not None:
            self.cancellation.attach(self)

    @property
    def kernel_spec(self) -> KernelSpec | None:
        if self._kernel_spec is None:
            from ipykernel.kernelspec import RESOURCES, get_kernel_dict

            self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
        return self._kernel_spec


class Cancellation:
    """Stops one run from another thread (the dashboard's stop key, an app quitting).

    The running cell is interrupted as Jupyter's stop button does it (SIGINT: it raises KeyboardInterrupt, so
    its `finally` blocks run and a frozen broker is thawed); the runner starts no later cell. The run ends
    failed, its reason saying it was cancelled.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._manager: AsyncKernelManager | None = None
        self.requested = False

    def manager_class(self) -> type[InterpreterKernelManager]:
        """A kernel manager class that reports its kernel here once started (nbclient instantiates it)."""
        return type("RunKernelManager", (InterpreterKernelManager,), {"cancellation": self})

    def attach(self, manager: AsyncKernelManager) -> None:
        """The run's kernel is up (a cancellation before this needs no signal: no cell will start)."""
        with self._lock:
            self._manager = manager

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
        self._signal()

    def _signal(self) -> None:
        provisioner = self._manager.provisioner if self._manager is not None else None
        process = getattr(provisioner, "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
