"""The browser dashboard: static files under ``/``, built by ``scripts/setup.sh`` from ``src/``
(esbuild bundles the page's script with its npm packages into ``build/``; nothing is fetched
from elsewhere at run time). The API's routes keep their paths: the mount is added last."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles

BUILD_DIR = Path(__file__).parent / "build"
NOT_BUILT = (
    "The dashboard is not built: run `bash scripts/setup.sh` (it bundles backend/gridledger/dashboard/src "
    "into backend/gridledger/dashboard/build with esbuild from node_modules). The API works without it: /docs."
)


def mount_dashboard(app: FastAPI, build_dir: Path = BUILD_DIR) -> None:
    """Serves the built page at ``/``, or at ``/`` a 503 that says how to build it."""
    if (build_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=build_dir, html=True), name="dashboard")
        return

    @app.get("/", include_in_schema=False)
    async def not_built() -> PlainTextResponse:
        return PlainTextResponse(NOT_BUILT, status_code=503)
