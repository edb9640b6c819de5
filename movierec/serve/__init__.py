"""``movierec serve``: a saved model behind a JSON HTTP API (Starlette on uvicorn, ``movierec[serve]``).

Routes (docs/own-data.md): ``GET /users/{id}/recommendations?n=10`` (the rows of ``top_n``),
``POST /predict`` (a list of ``{"userId", "movieId"}``; cold pairs score null), ``GET /health`` and
``GET /model`` (the model card). Errors are JSON ``{"error", "status"}``. The model is loaded once,
before the port opens; scoring runs in a thread pool, so requests are served concurrently.
"""

from __future__ import annotations

from movierec._core.extras import require

require("starlette", "serve", purpose="movierec serve")
require("uvicorn", "serve", purpose="movierec serve")

from movierec.serve._app import Limits, create_app
from movierec.serve._server import API_KEY_ENV, load_model, make_server, run

__all__ = ["API_KEY_ENV", "Limits", "create_app", "load_model", "make_server", "run"]
