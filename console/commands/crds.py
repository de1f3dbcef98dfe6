"""`todo-console crds fetch`: download the pinned upstream CRD schemas used to validate the manifests.

The files and their git blob SHAs are pinned in console.manifests.crds (the same files as
shared/schemas/crds/SOURCES.md); every download is verified before it is written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from console.cli import CliError
from console.manifests import crds as crd_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("crds", help="the official CRD schemas the manifests are validated against")
    actions = parser.add_subparsers(dest="crds_command", metavar="ACTION")
    actions.required = True
    fetch = actions.add_parser(
        "fetch",
        help="download the pinned CRD schema files and verify their git blob SHAs",
        description="Download the pinned CRD files from GitHub at their release tags into DIR, verifying each "
                    "file's git blob SHA. Files already present with the right SHA are kept.",
    )
    fetch.add_argument("dir", nargs="?", type=Path, default=None, metavar="DIR",
                       help="target directory (default: $CRD_SCHEMA_DIR, else ../shared/schemas/crds)")
    fetch.add_argument("--dest", type=Path, default=None, help="the same as DIR")
    fetch.add_argument("--base-url", default=os.environ.get("CRD_BASE_URL", crd_model.DEFAULT_BASE_URL),
                       help="raw file host (default: $CRD_BASE_URL or https://raw.githubusercontent.com)")
    fetch.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    if args.dir and args.dest and args.dir != args.dest:
        raise CliError(f"two target directories given ({args.dir} and --dest {args.dest}); give one")
    dest: Path = args.dir or args.dest or crd_model.schema_dir()
    try:
        results = crd_model.fetch_pinned(dest, base_url=args.base_url)
    except crd_model.CrdError as exc:
        raise CliError(str(exc)) from exc
    for pinned, status in results:
        print(f"{status:<8} {pinned.local}  ({pinned.repo}@{pinned.ref}, blob {pinned.blob_sha[:12]})")
    fetched = sum(1 for _, status in results if status == "fetched")
    print(f"{len(results)} CRD files in {dest} ({fetched} downloaded, all verified)")
    print(f"validate with: CRD_SCHEMA_DIR={dest}")
    return 0
