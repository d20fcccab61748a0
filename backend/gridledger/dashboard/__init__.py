"""The browser dashboard: static files under ``/``, built by ``scripts/setup.sh`` from ``src/``
(esbuild bundles the page's script with its npm packages into ``build/``; nothing is fetched
from elsewhere at run time). The API's routes keep their paths: the mount is added last."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

BUILD_DIR = Path(__file__).parent / "build"
NOT_BUILT = (
    "The dashboard is not built: run `bash scripts/setup.sh` (it bundles backend/gridledger/dashboard/src "
    "into backend/gridledger/dashboard/build with esbuild from node_modules). The API works without it: /docs."
)


class _Pages(StaticFiles):
    """The built page: only GET and HEAD are its. Any other method on a path no route has is a
    404 (Starlette's static files answer 405, which would say the path exists)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def mount_dashboard(app: FastAPI, build_dir: Path = BUILD_DIR) -> None:
    """Serves the built page at ``/``, or at ``/`` a 503 that says how to build it."""
    if (build_dir / "index.html").is_file():
        app.mount("/", _Pages(directory=build_dir, html=True), name="dashboard")
        return

    @app.get("/", include_in_schema=False)
    async def not_built() -> PlainTextResponse:
        return PlainTextResponse(NOT_BUILT, status_code=503)
