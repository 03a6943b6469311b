"""Plain GET routes beside the BentoML APIs: Swagger UI at /docs and the model status."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

# BentoML serves the OpenAPI spec at /docs.json and Swagger UI's assets under /static_content.
SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8"><title>churnops prediction API</title>
  <link rel="stylesheet" href="/static_content/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/static_content/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/docs.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


def build_routes(status: Callable[[], dict[str, object]]) -> Starlette:
    async def docs(_: Request) -> Response:
        return HTMLResponse(SWAGGER_PAGE)

    async def model(_: Request) -> Response:
        body = status()
        return JSONResponse(body, status_code=200 if body.get("ready") else 503)

    return Starlette(routes=[Route("/docs", docs), Route("/model", model)])
