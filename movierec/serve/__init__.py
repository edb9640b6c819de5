"""``movierec serve``: a saved model behind a JSON HTTP API (Starlette on uvicorn, ``movierec[serve]``).

Routes (docs/own-data.md, and ``GET /openapi.json``): ``GET /users/{id}/recommendations?n=10``
(the rows of ``top_n``, ``&explain=true`` adds each movie's reasons), ``POST /recommendations`` (a
visitor's list from a history of movies), ``GET /movies/{id}/similar?n=10``, ``POST /predict`` (a
list of ``{"userId", "movieId"}``; cold pairs score null), ``GET /health`` and ``GET /model`` (the
model card). Titles come with every movie when the model folder keeps them. Errors are JSON
``{"error", "status"}``. The model is loaded once and every known user's top list ranked, before
the port opens; slow and half-sent requests, floods of connections and of log lines are bounded
(`movierec.serve._server`).
"""

from __future__ import annotations

from movierec._core.extras import require

require("starlette", "serve", purpose="movierec serve")
require("uvicorn", "serve", purpose="movierec serve")

from movierec.serve._app import Limits, create_app
from movierec.serve._server import API_KEY_ENV, bind, load_model, make_server, run

__all__ = ["API_KEY_ENV", "Limits", "bind", "create_app", "load_model", "make_server", "run"]
