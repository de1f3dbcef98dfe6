"""`todo-console sandbox ...`: planning, one-line errors, and status/logs/down on a running sandbox."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from console import cli
from console.sandbox import control
from console.sandbox.catalog import KAFKA_TUNING, SERVICE_TUNING, SERVICES
from console.sandbox.layout import REPO_ROOT, SandboxLayout
from console.sandbox.plan import Plan
from console.sandbox.secrets import dev_token, read_secrets, write_secrets
from services.audit.main import build_app as build_audit
from services.platform.auth import AuthConfig, TokenVerifier
from tests.services.audit.conftest import make_settings as audit_settings
from tests.services.backend.conftest import make_settings as backend_settings
from tests.utils.events import delivered, snapshot, task_event

from .conftest import require_tansu, start_sandbox


@pytest.fixture(autouse=True)
def only_sandbox_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other command modules are written in parallel; these tests need only this one."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("console.commands.sandbox",))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["sandbox", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def fake_repo(root: Path, services: tuple[str, ...] = ("backend", "worker")) -> Path:
    for name in services:
        (root / "services" / name).mkdir(parents=True)
        (root / "services" / name / "main.py").write_text("app = None\n")
    sidecar = root / "console" / "sandbox" / "sidecar"
    sidecar.mkdir(parents=True)
    (sidecar / "__main__.py").write_text("")
    return root


# --- planning --------------------------------------------------------------------------------------


def test_plan_follows_the_runtime_contract(tmp_path: Path, fixture_manifests: Path) -> None:
    layout = SandboxLayout(tmp_path / "sb")
    plan = control.plan_sandbox(layout, port_base=0, bootstrap="127.0.0.1:9092", manifests=fixture_manifests,
                                repo=fake_repo(tmp_path / "repo"))
    assert plan.absent == [s for s in SERVICES if s not in ("backend", "worker")]
    procs = {p.name: p for p in plan.processes if p.kind != "monitor"}  # Prometheus: tests/console/observability
    assert set(procs) == {"backend", "backend-dapr", "worker", "worker-dapr"}
    backend, sidecar = procs["backend"], procs["backend-dapr"]
    assert backend.argv[1:4] == ["-m", "uvicorn", "services.backend.main:app"]
    assert backend.env["SECRET_SOURCE"] == "dapr"
    assert backend.env["APP_ENV"] == "development"
    assert backend.env["DAPR_HTTP_PORT"] == str(sidecar.port)
    assert backend.env["DAPR_GRPC_PORT"] == str(sidecar.extra_ports[0])
    assert backend.env["DATABASE_URL"] == f"sqlite:///{layout.root}/backend.db"
    assert "DATABASE_URL" not in procs["worker"].env
    assert backend.ready_url == f"http://127.0.0.1:{backend.port}/readyz"
    assert str(sidecar.ready_url).endswith("/v1.0/healthz")
    assert sidecar.ready_status == 204
    flags = dict(zip(sidecar.argv[3::2], sidecar.argv[4::2], strict=True))
    assert flags["--app-id"] == "backend"
    assert flags["--app-port"] == str(backend.port)
    assert flags["--kafka-bootstrap"] == "127.0.0.1:9092"
    assert flags["--registry"] == str(layout.registry)
    assert flags["--resources-path"] == str(fixture_manifests)
    assert len({port for p in procs.values() for port in p.ports}) == 6
    assert plan.urls["api"] == f"http://127.0.0.1:{backend.port}/api"

    secrets = read_secrets(layout.secrets)
    assert stat.S_IMODE(layout.secrets.stat().st_mode) == 0o600
    assert secrets["todo-db"]["url"] == secrets["todo-db"]["connection-string"] == f"sqlite:///{layout.root}/backend.db"
    assert secrets["todo-audit-db"]["url"] == f"sqlite:///{layout.root}/audit.db"
    first_secret = secrets["todo-auth"]["jwt-secret"]
    assert len(first_secret) >= 32
    assert len(secrets["todo-internal"]["token"]) >= 32
    assert backend.env["JWT_SECRET"] == first_secret

    secrets["mine"] = {"k": "v"}  # added by hand: kept
    layout.secrets.write_text(json.dumps(secrets))
    pg = control.plan_sandbox(layout, bootstrap="127.0.0.1:9092", manifests=fixture_manifests,
                              database_url="postgresql+psycopg://u:p@127.0.0.1/todo",
                              repo=fake_repo(tmp_path / "repo2"))
    pg_procs = {p.name: p for p in pg.processes}
    assert pg_procs["backend"].env["DATABASE_URL"] == "postgresql+psycopg://u:p@127.0.0.1/todo"
    assert pg_procs["worker-dapr"].argv[-2:] == ["--database-url", "postgresql+psycopg://u:p@127.0.0.1/todo"]
    assert "--database-url" not in sidecar.argv  # SQLite: the sidecars keep state under --state-dir
    again = read_secrets(layout.secrets)
    assert again["todo-auth"]["jwt-secret"] == first_secret  # dev tokens stay valid across down/up
    assert again["mine"] == {"k": "v"}
    assert again["todo-db"]["url"] == again["todo-audit-db"]["url"] == "postgresql+psycopg://u:p@127.0.0.1/todo"
    assert stat.S_IMODE(layout.secrets.stat().st_mode) == 0o600


@pytest.mark.parametrize(("durable", "bootstrap", "expected"), [
    (True, None, {"SIDECAR_FETCH_MAX_WAIT_MS": "500", "SIDECAR_PRODUCER_MAX_IN_FLIGHT": "1"}),
    (False, None, {"SIDECAR_FETCH_MAX_WAIT_MS": "250"}),
    (False, "127.0.0.1:9092", {}),  # an external Kafka: the sidecar's own defaults
])
def test_sidecars_get_the_kafka_tuning_of_the_broker_mode(
        tmp_path: Path, fixture_manifests: Path, monkeypatch: pytest.MonkeyPatch,
        durable: bool, bootstrap: str | None, expected: dict[str, str]) -> None:
    if bootstrap is None:
        require_tansu()
    for name in {*KAFKA_TUNING["durable"], *KAFKA_TUNING["memory"]}:
        monkeypatch.delenv(name, raising=False)
    plan = control.plan_sandbox(SandboxLayout(tmp_path / "sb"), port_base=0, durable=durable, bootstrap=bootstrap,
                                manifests=fixture_manifests, repo=fake_repo(tmp_path / "repo"))
    sidecars = [p for p in plan.processes if p.kind == "sidecar"]
    assert [p.name for p in sidecars] == ["backend-dapr", "worker-dapr"]
    for sidecar in sidecars:
        assert {k: v for k, v in sidecar.env.items() if k.startswith("SIDECAR_")} == expected
    assert all(not k.startswith("SIDECAR_") for p in plan.processes if p.kind != "sidecar" for k in p.env)


def test_kafka_tuning_set_by_hand_wins(tmp_path: Path, fixture_manifests: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    require_tansu()
    monkeypatch.setenv("SIDECAR_FETCH_MAX_WAIT_MS", "100")
    plan = control.plan_sandbox(SandboxLayout(tmp_path / "sb"), port_base=0, durable=True,
                                manifests=fixture_manifests, repo=fake_repo(tmp_path / "repo"))
    sidecar = next(p for p in plan.processes if p.kind == "sidecar")
    assert "SIDECAR_FETCH_MAX_WAIT_MS" not in sidecar.env  # inherited from the environment by the process


def test_the_backend_polls_its_outbox_every_5_s_in_the_sandbox(tmp_path: Path, fixture_manifests: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """One backend: its own commits wake its relay, the poll only looks for other replicas' rows."""
    monkeypatch.delenv("RELAY_POLL_INTERVAL_S", raising=False)
    plan = control.plan_sandbox(SandboxLayout(tmp_path / "sb"), port_base=0, bootstrap="127.0.0.1:9092",
                                manifests=fixture_manifests, repo=fake_repo(tmp_path / "repo"))
    env = {p.name: p.env for p in plan.processes}
    assert env["backend"]["RELAY_POLL_INTERVAL_S"] == "5"
    assert "RELAY_POLL_INTERVAL_S" not in env["worker"]
    # The name is the backend's own setting (read from the environment, as the supervisor starts it).
    monkeypatch.setenv("RELAY_POLL_INTERVAL_S", SERVICE_TUNING["backend"]["RELAY_POLL_INTERVAL_S"])
    assert backend_settings(f"sqlite:///{tmp_path / 'b.db'}").relay_poll_interval_s == 5.0
    # Set by hand, it wins: the plan leaves it to the inherited environment.
    plan = control.plan_sandbox(SandboxLayout(tmp_path / "sb2"), port_base=0, bootstrap="127.0.0.1:9092",
                                manifests=fixture_manifests, repo=fake_repo(tmp_path / "repo2"))
    assert "RELAY_POLL_INTERVAL_S" not in next(p for p in plan.processes if p.name == "backend").env


def test_the_sidecar_reads_the_tuning_the_plan_sets() -> None:
    """The plan and the sidecar agree on the variables' names: a sidecar started with the durable
    tuning uses it (read in a fresh interpreter, as the supervisor starts one)."""
    probe = ("from console.sandbox.sidecar import kafka_pubsub, subscriber; "
             "print(subscriber.FETCH_MAX_WAIT_MS, kafka_pubsub.MAX_IN_FLIGHT)")
    durable = KAFKA_TUNING["durable"]
    env = {**os.environ, **durable}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == [durable["SIDECAR_FETCH_MAX_WAIT_MS"], durable["SIDECAR_PRODUCER_MAX_IN_FLIGHT"]]


def test_dev_token_is_accepted_by_the_platform_verifier() -> None:
    verifier = TokenVerifier(AuthConfig(jwt_secret="s3cret-" * 6))
    assert verifier.verify(dev_token("s3cret-" * 6)).user_id == "dev-user"


def test_port_in_use_is_one_line(tmp_path: Path, fixture_manifests: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        base = sock.getsockname()[1]  # backend is service 0: its app port is the base itself
        with pytest.raises(control.SandboxError, match=rf"^port {base} \(backend\) is in use"):
            control.plan_sandbox(SandboxLayout(tmp_path / "sb"), port_base=base, bootstrap="127.0.0.1:9092",
                                 manifests=fixture_manifests, repo=fake_repo(tmp_path / "repo"))


@pytest.mark.parametrize(
    ("services", "sidecar", "message"),
    [((), True, "no service to start"), (("backend",), False, "dev sidecar .* is not there yet")],
)
def test_missing_parts_are_named(tmp_path: Path, fixture_manifests: Path, services: tuple[str, ...],
                                 sidecar: bool, message: str) -> None:
    repo = fake_repo(tmp_path / "repo", services)
    if not sidecar:
        (repo / "console" / "sandbox" / "sidecar" / "__main__.py").unlink()
    with pytest.raises(control.SandboxError, match=message):
        control.plan_sandbox(SandboxLayout(tmp_path / "sb"), bootstrap="127.0.0.1:9092",
                             manifests=fixture_manifests, repo=repo)


# --- CLI errors ------------------------------------------------------------------------------------


def test_commands_on_a_sandbox_that_is_not_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "sb")
    code, out, err = run(capsys, "--dir", d, "down")
    assert code == 2
    assert err.strip() == f"todo-console sandbox: sandbox is not up in {tmp_path / 'sb'}"
    code, out, err = run(capsys, "--dir", d, "status")
    assert code == 1
    assert "not up" in out
    code, out, err = run(capsys, "--dir", d, "logs", "nosuch")
    assert code == 2
    assert err.startswith("todo-console sandbox: unknown service 'nosuch'; known: audit, audit-dapr")
    assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "--dir", d, "logs", "backend")
    assert code == 2
    assert "no log yet for backend" in err


def test_bad_port_base_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--dir", str(tmp_path), "up", "--port-base", "80")
    assert code == 2
    assert "--port-base must be 0 or between 1024 and 65000" in err


# --- CLI on a running sandbox ----------------------------------------------------------------------


@pytest.mark.broker
def test_status_logs_and_down_on_a_running_sandbox(
    tiny_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tiny_plan()
    layout = SandboxLayout(Path(plan.dir))
    start_sandbox(layout, plan)
    d = str(layout.root)
    try:
        code, out, _ = run(capsys, "--dir", d, "status")
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == f"sandbox {layout.root}: ready"
        assert lines[1].startswith(f"broker  {plan.broker.bootstrap}  mode=memory")
        assert "alive=yes" in lines[1]
        assert lines[2].split() == ["NAME", "PID", "PORT", "READY", "RESTARTS", "UPTIME"]
        row = dict(zip(lines[2].split(), lines[3].split(), strict=True))
        assert row["NAME"] == "shop"
        assert row["PORT"] == str(plan.processes[1].port)
        assert row["READY"] == "yes"
        assert row["RESTARTS"] == "0"
        assert row["UPTIME"].endswith("s")
        assert row["PID"].isdigit()
        assert lines[-1].startswith(f"token: `todo-console sandbox --dir {d} token` prints one")

        code, out, _ = run(capsys, "--dir", d, "status", "--json")
        data = json.loads(out)
        assert code == 0
        assert data["up"]
        assert data["phase"] == "ready"
        assert data["processes"]["shop-dapr"]["ready"]
        assert data["broker"]["mode"] == "memory"

        code, out, _ = run(capsys, "--dir", d, "logs", "supervisor", "-n", "1")
        assert code == 0
        assert len(out.splitlines()) == 1
        assert json.loads(out)["logger"]
        code, out, _ = run(capsys, "--dir", d, "logs")
        assert code == 0
        assert any(line.startswith("supervisor | ") for line in out.splitlines())

        code, out, err = run(capsys, "--dir", d, "up", "--port-base", "0")
        assert code == 2
        assert out == ""  # not even "starting ..."
        assert "already up" in err
        assert "`todo-console sandbox env` or `token`" in err
    finally:
        code, out, _ = run(capsys, "--dir", d, "down")
    assert code == 0
    assert "sandbox stopped" in out
    code, out, _ = run(capsys, "--dir", d, "status")
    assert code == 1
    assert out.splitlines() == [f"sandbox {layout.root}: stopped", f"start it with `todo-console sandbox --dir {d} up`"]
    code, out, _ = run(capsys, "--dir", d, "status", "--json")
    after = json.loads(out)
    assert after["supervisor_pid"] is None
    assert (after["broker"]["pid"], after["broker"]["alive"], after["broker"]["uptime_s"]) == (None, False, None)
    for proc in after["processes"].values():
        assert (proc["pid"], proc["pgid"], proc["running"], proc["ready"], proc["ready_at"]) == (
            None, None, False, False, None)
    last_word = control.read_state(layout)
    assert last_word is not None
    assert last_word["broker"]["pid"] is None  # the supervisor's last word names no dead pid


@pytest.mark.broker
def test_env_token_and_json_logs(tiny_plan: Callable[..., Plan], capsys: pytest.CaptureFixture[str]) -> None:
    plan = tiny_plan(urls={"api": "http://127.0.0.1:18000/api", "ws": "ws://127.0.0.1:18030/ws",
                           "audit": "http://127.0.0.1:18040", "shop": "http://127.0.0.1:18000"})
    layout = SandboxLayout(Path(plan.dir))
    secret = write_secrets(layout.secrets, database_urls={})["todo-auth"]["jwt-secret"]
    verifier = TokenVerifier(AuthConfig(jwt_secret=secret))
    d = str(layout.root)
    code, _, err = run(capsys, "--dir", d, "env")
    assert code == 2
    assert err.strip() == f"todo-console sandbox: sandbox is not up in {layout.root}; start it with " \
                          f"`todo-console sandbox --dir {d} up`"
    start_sandbox(layout, plan)
    try:
        code, out, _ = run(capsys, "--dir", d, "env")
        assert code == 0
        # What `eval "$(todo-console sandbox env)"` leaves in a real shell.
        shell = subprocess.run(["bash", "-c", 'eval "$1"; printf "%s\n" "$API" "$WS" "$AUDIT" "$TOKEN"', "_", out],
                               capture_output=True, text=True, check=True)
        api, ws, audit, token = shell.stdout.splitlines()
        assert (api, ws, audit) == ("http://127.0.0.1:18000/api", "ws://127.0.0.1:18030/ws", "http://127.0.0.1:18040")
        principal = verifier.verify(token)
        assert (principal.user_id, principal.scopes) == ("dev-user", {"tasks:read", "tasks:write"})

        code, out, _ = run(capsys, "--dir", d, "token", "--user", "alice", "--scope", "audit:read")
        assert code == 0
        principal = verifier.verify(out.strip())
        assert (principal.user_id, principal.scopes) == ("alice", {"audit:read"})

        layout.log("shop").write_text('{"msg": "one", "level": "info"}\nplain text, not JSON\n\n[1, 2]\n')
        code, out, _ = run(capsys, "--dir", d, "logs", "--json")
        assert code == 0
        records = [json.loads(line) for line in out.splitlines()]  # every line is JSON
        assert {r["process"] for r in records} >= {"shop", "supervisor", "broker"}
        shop = [r for r in records if r["process"] == "shop"]
        assert shop == [{"process": "shop", "msg": "one", "level": "info"},
                        {"process": "shop", "msg": "plain text, not JSON"}, {"process": "shop", "msg": "[1, 2]"}]
    finally:
        control.down(layout)
    code, out, _ = run(capsys, "--dir", d, "token")  # the secret outlives `down`: tokens stay valid
    assert code == 0
    assert verifier.verify(out.strip()).user_id == "dev-user"


@pytest.mark.parametrize(("argv", "message"), [
    (["token", "--scope", "tasks:read tasks:write"], "argument --scope: 'tasks:read tasks:write' is not a scope "
                                                     "the services know (tasks:read, tasks:write, audit:read); "
                                                     "one scope per --scope"),
    (["token", "--scope", ""], "argument --scope: '' is not a scope the services know"),
    (["env", "--scope", "audit:write"], "argument --scope: 'audit:write' is not a scope the services know"),
    (["token", "--user", ""], "argument --user: a user is 1 to 255 printable characters"),
    (["env", "--user", "x" * 256], "argument --user: a user is 1 to 255 printable characters"),
])
def test_bad_token_options_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                       message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["sandbox", "--dir", str(tmp_path), *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_scoped_token_opens_the_audit_all_users_view_and_a_user_token_does_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The tokens `sandbox token` prints, used on the real audit app signed with the same secret, as
    the sandbox runs it: `--scope audit:read` sees every user's entries; a user's token, its own only."""
    layout = SandboxLayout(tmp_path / "sb")
    secret = write_secrets(layout.secrets, database_urls={})["todo-auth"]["jwt-secret"]

    def bearer(*argv: str) -> dict[str, str]:
        code, out, err = run(capsys, "--dir", str(layout.root), "token", *argv)
        assert (code, err) == (0, "")
        return {"Authorization": f"Bearer {out.strip()}"}

    operator, alice = bearer("--user", "ops", "--scope", "audit:read"), bearer("--user", "alice")
    with TestClient(build_audit(audit_settings(f"sqlite:///{tmp_path / 'audit.db'}", jwt_secret=secret))) as audit:
        for owner in ("alice", "bob"):
            event = task_event("created", snapshot(owner=owner))
            assert audit.post("/events/task-events", content=delivered(event, "task-events")).status_code == 200

        def users(headers: dict[str, str], **params: str) -> list[str]:
            answer = audit.get("/api/audit", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            return sorted(entry["user_id"] for entry in answer.json()["items"])

        assert users(operator) == ["alice", "bob"]
        assert users(operator, user_id="bob") == ["bob"]
        assert users(alice) == ["alice"]
        refused = audit.get("/api/audit", params={"user_id": "bob"}, headers=alice)
        assert (refused.status_code, refused.headers["content-type"]) == (403, "application/problem+json")
        assert refused.json()["detail"] == "other users' entries need scope 'audit:read'"


def test_token_before_any_up_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--dir", str(tmp_path / "sb"), "token")
    assert code == 2
    assert out == ""
    assert err.strip() == (f"todo-console sandbox: no sandbox in {tmp_path / 'sb'} yet: `todo-console sandbox up` "
                           "creates it and its token secret")


@pytest.mark.timeout(20)
def test_follow_yields_appended_lines(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("old\n")
    b.write_text("")
    lines = control.follow([("a", a), ("b", b)], poll_s=0.01)
    with b.open("a") as handle:
        handle.write("new in b\n")
    assert next(lines) == ("b", "new in b")  # what was there before is not repeated
    with a.open("a") as handle:
        handle.write("new in a\n")
    assert next(lines) == ("a", "new in a")
    lines.close()


def test_a_second_concurrent_up_is_refused(tmp_path: Path, fixture_manifests: Path) -> None:
    import fcntl

    layout = SandboxLayout(tmp_path / "sb")
    layout.root.mkdir()
    with open(layout.root / ".up.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a first `up` still starting holds it
        with pytest.raises(control.SandboxError, match="another `todo-console sandbox up` is starting"):
            control.up(layout, bootstrap="127.0.0.1:9092", manifests=fixture_manifests,
                       repo=fake_repo(tmp_path / "repo"))
