"""The console's pages for everyone: the sign-in page, the start page (which sends each role
to its console) and the console's static files (scripts, styles, the vendored uPlot)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from minewatch.api.accounts import Role
from minewatch.api.auth import Access, public, signed_in
from minewatch.api.console.render import Page, Renderer, language, renderer
from minewatch.api.params import CodeInPath

router = APIRouter(prefix="/console", include_in_schema=False)

RendererDep = Annotated[Renderer, Depends(renderer)]


def _static_root() -> Path:
    return Path(str(resources.files("minewatch.api.console") / "static")).resolve()


@router.get("/login", dependencies=[Depends(public)])
async def login_page(request: Request, pages: RendererDep) -> HTMLResponse:
    """The sign-in form; it signs in with ``POST /api/v1/auth/login`` (the session cookie)."""
    return pages.html("login.html", Page(None, language(request), ""))


@router.get("/")
async def start(access: Annotated[Access, Depends(signed_in())]) -> RedirectResponse:
    """A dispatcher to the live board of their mine; regulators and admins to the overview."""
    identity = access.principal.identity
    if identity.role is Role.DISPATCHER and identity.scope and len(identity.scope) == 12:
        return RedirectResponse(f"/console/mines/{identity.scope}/board", 303)
    return RedirectResponse("/console/regulator", 303)


@router.get("/static/{name:path}", dependencies=[Depends(public)])
async def static(name: CodeInPath) -> FileResponse:
    """A file of the console's static folder (nothing outside it)."""
    root = _static_root()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, "no such file")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600"})
