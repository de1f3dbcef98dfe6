"""`todo-console` without a command opens the dashboard; its flags are checked like every command's; a
`status` run still loads no Textual; and the real process, in a real terminal (tmux), quits at once on
`q` even while a source hangs (Textual discussion #3967: a worker thread kept the process alive)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import cli
from tests.utils.required import missing
from tests.utils.waiting import wait_until

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
    """An HTTP address that accepts connections and never answers: a source that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_the_process_quits_on_q_while_a_source_hangs(kubeconfig: Path, black_hole: str, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        missing("tmux (Debian package tmux) runs the dashboard in a real terminal")
    console = Path(sys.executable).with_name("todo-console")
    socket_name = f"dash-{tmp_path.name}"
    env = {"KUBECONFIG": str(kubeconfig), "TODO_CONSOLE_PROMETHEUS_URL": black_hole,
           "TODO_CONSOLE_LOKI_URL": black_hole, "TODO_CONSOLE_KAFKA_BOOTSTRAP": "127.0.0.1:9",
           "TODO_CONSOLE_REQUEST_TIMEOUT_S": "30", "TODO_SANDBOX_DIR": str(tmp_path / "none")}
    exports = " ".join(f"{k}={v}" for k, v in env.items())
    tmux = ["tmux", "-L", socket_name]
    subprocess.run([*tmux, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "45",
                    f"env {exports} {console} --refresh 1; sleep 600"], check=True, cwd=REPO)
    try:
        def screen() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", "dash"], capture_output=True, text=True,
                                  check=False).stdout
        try:
            wait_until(lambda: "audit" in screen() and "Services" in screen(), timeout=120, interval=0.5,
                       message="the dashboard's Overview with the stand-in's services")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the terminal shows:\n{screen()}") from None
        wait_until(lambda: "prometheus" in screen().lower(), timeout=30, interval=0.5,
                   message="the alerts panel, whose source hangs")
        subprocess.run([*tmux, "send-keys", "-t", "dash", "q"], check=True)
        started = time.monotonic()
        # The pane's command goes on to `sleep` once todo-console has exited: the shell prompt is gone, the
        # dashboard's last screen too (Textual restores the terminal).
        wait_until(lambda: "Services" not in screen(), timeout=20, interval=0.2,
                   message="todo-console exiting on q (a refresh thread keeps it alive?)")
        assert time.monotonic() - started < 20
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
