"""The HTTP ceiling: bare Starlette under uvicorn, parsing the benchmark's request body and
answering a constant. No framework on top of the HTTP layer can be faster than this.

    uvicorn benchmarks.reference.starlette_app:app --no-access-log
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.reference import ANSWER


async def predict(request: Request) -> JSONResponse:
    await request.json()
    return JSONResponse(ANSWER)


async def predict_batch(request: Request) -> JSONResponse:
    body = await request.json()
    customers = body.get("customers", [])
    return JSONResponse({"model_version": "0", "predictions": [ANSWER] * len(customers)})


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/predict_batch", predict_batch, methods=["POST"]),
    ]
)
