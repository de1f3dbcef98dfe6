"""`todo-console crds fetch`: everything but the real download, against a local HTTP server."""

from __future__ import annotations

import argparse
import http.server
import re
import threading
from functools import partial
from pathlib import Path
from typing import Self

import pytest

from console import cli
from console.cli import CliError
from console.commands import crds as crds_cmd
from console.manifests import crds as model
from tests.utils.required import missing


@pytest.fixture(scope="module")
def shared_dir() -> Path:
    path = model.schema_dir()
    if not (path / "SOURCES.md").is_file():
        missing(f"no CRD schema directory with SOURCES.md at {path}: the team's copy has it "
                "(../shared/schemas/crds beside the repository, or CRD_SCHEMA_DIR)")
    return path


def test_pins_match_sources_md(shared_dir: Path) -> None:
    """PINNED names the same files, tags and blobs as SOURCES.md, and the local copies hash to them."""
    rows = {}
    for line in (shared_dir / "SOURCES.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")[1:-1]]
        if len(cells) == 8 and cells[0].endswith(".yaml"):
            rows[cells[0]] = cells
    assert {p.local for p in model.PINNED} == set(rows)
    for pinned in model.PINNED:
        local, repo, path, tag, blob = rows[pinned.local][:5]
        assert (pinned.repo, pinned.path) == (repo, path)
        assert tag.replace("`", "").split()[0] == pinned.ref
        assert pinned.blob_sha.startswith(blob)
        assert model.git_blob_sha((shared_dir / local).read_bytes()) == pinned.blob_sha


class _Server:
    """Serves /<owner>/<repo>/<ref>/<path> from the shared schema dir, like raw.githubusercontent.com."""

    def __init__(self, shared: Path, tamper: set[str]) -> None:
        by_url = {f"/{p.repo}/{p.ref}/{p.path}": shared / p.local for p in model.PINNED}
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                target = by_url.get(self.path)
                if target is None:
                    self.send_error(404)
                    return
                body = target.read_bytes()
                if self.path in tamper:
                    body += b"\n# tampered\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.requests = requests
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(shared_dir: Path) -> partial[_Server]:
    return partial(_Server, shared_dir)


def _fetch_args(dest: Path, base_url: str, *flags: str) -> argparse.Namespace:
    """`todo-console crds fetch DIR --base-url URL` as the CLI parses it (DIR positional, as `--help` shows)."""
    return cli.build_parser().parse_args(["crds", "fetch", str(dest), "--base-url", base_url, *flags])


def test_fetch_downloads_verifies_and_is_idempotent(server, shared_dir, tmp_path, capsys) -> None:
    with server(tamper=set()) as srv:
        assert crds_cmd.run_fetch(_fetch_args(tmp_path, srv.url)) == 0
        first = capsys.readouterr().out
        assert f"{len(model.PINNED)} CRD files" in first
        assert "fetched" in first
        for pinned in model.PINNED:
            assert (tmp_path / pinned.local).read_bytes() == (shared_dir / pinned.local).read_bytes()
        count = len(srv.requests)
        assert crds_cmd.run_fetch(_fetch_args(tmp_path, srv.url)) == 0
        assert len(srv.requests) == count, "verified files are kept, not downloaded again"
        assert "0 downloaded" in capsys.readouterr().out


def test_fetched_schemas_validate_like_the_shared_ones(server, tmp_path) -> None:
    with server(tamper=set()) as srv:
        model.fetch_pinned(tmp_path, base_url=srv.url)
    assert set(model.load_crds(tmp_path)) == set(model.load_crds())


def test_a_tampered_file_is_rejected_and_not_written(server, tmp_path) -> None:
    victim = model.PINNED[5]
    tampered = server(tamper={f"/{victim.repo}/{victim.ref}/{victim.path}"})
    with tampered as srv, pytest.raises(CliError, match=re.escape(victim.blob_sha)):
        crds_cmd.run_fetch(_fetch_args(tmp_path, srv.url))
    assert not (tmp_path / victim.local).exists()
    assert not list(tmp_path.rglob("*.part"))


def test_dest_is_the_same_as_dir_and_two_different_ones_are_refused(server, tmp_path, capsys) -> None:
    with server(tamper=set()) as srv:
        args = cli.build_parser().parse_args(["crds", "fetch", "--dest", str(tmp_path), "--base-url", srv.url])
        assert crds_cmd.run_fetch(args) == 0
    assert f"CRD files in {tmp_path}" in capsys.readouterr().out
    with pytest.raises(CliError, match="two target directories given"):
        crds_cmd.run_fetch(_fetch_args(tmp_path / "a", "http://127.0.0.1:9", "--dest", str(tmp_path / "b")))
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_unreachable_host_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(CliError, match=re.escape("download of http://127.0.0.1:9/")):
        crds_cmd.run_fetch(_fetch_args(tmp_path, "http://127.0.0.1:9"))


def test_urls_point_at_raw_github_at_the_pinned_tag() -> None:
    pinned = model.PINNED[0]
    assert pinned.url() == ("https://raw.githubusercontent.com/strimzi/strimzi-kafka-operator/1.2.0/"
                            "install/cluster-operator/040-Crd-kafka.yaml")


def test_re2_inline_flags_move_to_the_front() -> None:
    assert model._re2_to_python("^(?i)(abort|warn)?$") == "(?i)^(abort|warn)?$"
    assert model._re2_to_python("^[a-z]+$") == "^[a-z]+$"
