"""The Spanish page for what no page can show: no model loaded, an address or a method that
does not exist here, a fault of the server (see ``app.main``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from app.web.pages.home import templates

# a title and a sentence per HTTP status the app answers with this page
STATUS_TEXTS = {
    404: ("No existe esta página", "No hay nada en esta dirección; revisa que esté bien escrita."),
    405: ("Así no se abre esta página", "Esta dirección solo se consulta (GET); no acepta "
                                        "{method}."),
    500: ("Algo falló", "Algo falló de nuestro lado al preparar esta página; inténtalo de nuevo "
                        "en un momento."),
}
OTHER_STATUS = ("No se pudo atender la petición", "Esta petición no se puede atender (error "
                                                  "{status}).")


def error_page(request: Request, status: int, title: str, message: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """``templates/error.html`` with ``title`` and ``message``, answered with ``status``."""
    return templates.TemplateResponse(request, "error.html", {"titulo": title, "mensaje": message},
                                      status_code=status, headers=headers)


def status_page(request: Request, status: int, headers: dict[str, str] | None = None
                ) -> HTMLResponse:
    """The error page of an HTTP ``status`` (404, 405, 500...), ``headers`` kept (e.g. the
    405's Allow)."""
    title, message = STATUS_TEXTS.get(status, OTHER_STATUS)
    return error_page(request, status, title, message.format(method=request.method,
                                                             status=status), headers)
