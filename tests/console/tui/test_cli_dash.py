"""`todo-console` without a command opens the dashboard; its flags are checked like every command's; a
`status` run still loads no Textual; and the real process, in a real terminal (tmux), quits at once on
`q` even while a source hangs (Textual discussion #3967: a worker thread kept the process alive)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console import cli
from tests.utils.required import require_command

REPO = Path(__file__).resolve().parents[3]


def test_no_command_means_the_dashboard_and_its_flags_are_checked(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    assert cli.main(["--refresh", "0.1", "--sandbox", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "todo-console dash: --refresh 0.1: give at least 0.5 seconds\n"
    assert cli.main(["--kubeconfig", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"todo-console dash: --kubeconfig {tmp_path / 'none'}: no such file\n"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "dash" in out
    assert "status" in out


def test_status_loads_no_textual(tmp_path: Path) -> None:
    code = ("import sys; from console import cli; code = cli.main(['status', '--sandbox', sys.argv[1]]); "
            "print(code, 'textual' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          timeout=120, check=False)
    assert done.stdout.split() == ["2", "False"], done.stderr


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An HTTP address that never finishes an answer: it sends a status line, then one header byte a second,
    forever. Each read gets a byte well within the client's timeout, so the request never times out either:
    a source that hangs for good."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(1.0)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Never-Ends: ")
                held.append(conn)
            except OSError:  # the accept's timeout: time for the next byte
                pass
            for conn in held:
                try:
                    conn.sendall(b"a")
                except OSError:  # the client went away (the dashboard quit): nothing more to send it
                    continue
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


class Terminal:
    """A tmux server of its own, one session running one command in a 160x45 pane. Its socket is in `folder`
    (the test's own), not named in tmux's shared one: a name two test runs share (another checkout's, at the
    same time) is one server they both drive, and tmux leaves its socket file behind."""

    def __init__(self, folder: Path, command: str) -> None:
        self.tmux = [require_command("tmux", "apt-get install -y tmux (it runs the dashboard in a real terminal)"),
                     "-S", str(folder / "tmux.socket")]
        # Without COLUMNS and LINES: the dashboard would take them over the pane's real size
        # (shutil.get_terminal_size reads them first) and draw 80x24, where the Overview shows no service row.
        # pytest's process has them in its C-level environment (COLUMNS=80, LINES=24), which a child inherits;
        # an xdist worker is such a child, so there they are in os.environ too.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "45", command],
                       check=True, cwd=REPO, env=env)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-t", "dash"], capture_output=True, text=True,
                              check=False).stdout

    def wait_for(self, predicate: Callable[[str], bool], what: str, within: float) -> None:
        """Poll the pane until `predicate(text)`; at the deadline fail with what it shows (whatever the command
        printed, a traceback, or the dashboard's last screen)."""
        deadline = time.monotonic() + within
        while not predicate(text := self.screen()):
            if time.monotonic() > deadline:
                pytest.fail(f"waited {within:g}s for {what}; the terminal shows:\n{text}")
            time.sleep(0.5)

    def press(self, key: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "dash", key], check=True)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)


def test_the_process_quits_on_q_while_a_source_hangs(kubeconfig: Path, black_hole: str, tmp_path: Path) -> None:
    """Prometheus and Loki never finish an answer (`black_hole`), so a refresh thread on them never returns: a
    process that waited for its refresh threads on exit would never get back to the shell."""
    console = Path(sys.executable).with_name("todo-console")
    env = {"KUBECONFIG": str(kubeconfig), "TODO_CONSOLE_PROMETHEUS_URL": black_hole,
           "TODO_CONSOLE_LOKI_URL": black_hole, "TODO_CONSOLE_KAFKA_BOOTSTRAP": "127.0.0.1:9",
           "TODO_CONSOLE_REQUEST_TIMEOUT_S": "30", "TODO_SANDBOX_DIR": str(tmp_path / "none")}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    terminal = Terminal(tmp_path, f"env {exports} {console} --refresh 1; echo EXITED $?; sleep 600")
    try:
        terminal.wait_for(lambda text: "Services" in text and "audit" in text, "the Overview with the stand-in's "
                          "services", within=240)
        terminal.wait_for(lambda text: "prometheus" in text.lower(), "the alerts panel, whose source hangs",
                          within=60)
        terminal.press("q")
        terminal.wait_for(lambda text: "EXITED 0" in text, "todo-console exiting on q (does a refresh thread hung "
                          "on the black hole hold it?)", within=120)
    finally:
        terminal.close()
