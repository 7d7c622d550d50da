"""The Spanish page for what no page can show: no model loaded, an address or a method that
does not exist here, a fault of the server (see ``app.main``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.web.pages.home import templates


def error_page(request: Request, status: int, title: str, message: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """``templates/error.html`` with ``title`` and ``message``, answered with ``status``."""
    return templates.TemplateResponse(request, "error.html", {"titulo": title, "mensaje": message},
                                      status_code=status, headers=headers)
