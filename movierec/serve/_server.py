"""Load a saved model, then open the port: :func:`make_server` and :func:`run` (``movierec serve``)."""

from __future__ import annotations

import os

import uvicorn

from movierec._core.instances import load_model
from movierec.model_card import read_card
from movierec.serve._app import Limits, create_app

__all__ = ["API_KEY_ENV", "load_model", "make_server", "run"]

# The environment variable holding the optional API key (never a command-line argument: those are
# visible to every user of the machine in the process list).
API_KEY_ENV = "MOVIEREC_API_KEY"


def make_server(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000, *,
                api_key: str | None = None, limits: Limits | None = None, log_level: str = "info") -> uvicorn.Server:
    """Load the model of ``model_dir`` and its card, and return the uvicorn server for it (not started).

    The port opens only when the server runs, after the model is loaded. ``api_key`` defaults to
    the ``MOVIEREC_API_KEY`` environment variable (no key when unset or empty), ``limits``
    to the defaults of :class:`Limits`. Port 0 picks a
    free port; once started, ``server.servers[0].sockets[0].getsockname()`` tells which.
    """
    model = load_model(model_dir)
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    app = create_app(model, card=read_card(model_dir), api_key=key or None, limits=limits or Limits())
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
    return uvicorn.Server(config)


def run(model_dir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8000, *,
        api_key: str | None = None, limits: Limits | None = None, log_level: str = "info") -> None:
    """Serve the model saved in ``model_dir`` on ``host:port`` until interrupted (Ctrl-C, SIGTERM).

    Binds to 127.0.0.1 unless told otherwise: pass ``host="0.0.0.0"`` to accept other machines,
    preferably with an API key. See :func:`make_server` for the arguments.
    """
    make_server(model_dir, host, port, api_key=api_key, limits=limits, log_level=log_level).run()
