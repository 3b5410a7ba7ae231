"""The server process: checks before binding, uvicorn, and ``--workers``.

With one worker the model is loaded here and the application handed to uvicorn. With
more, uvicorn starts that many processes, each building the application from the
settings passed in ``SEQCLF_SERVE_SETTINGS`` (``from_environment``), so each loads the
model once and batches its own requests.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import Any, Callable

from seqclf.errors import SeqclfError
from seqclf.serving.settings import Settings

SETTINGS_ENV = "SEQCLF_SERVE_SETTINGS"
PACKAGES = ("fastapi", "uvicorn")


def serve(settings: Settings, announce: Callable[[str], Any] = print) -> None:
    """Serve a run until interrupted (Ctrl-C or SIGTERM end it cleanly).

    Raises:
        SeqclfError: Missing packages, bad settings, nothing servable at the target, or an
            address that cannot be listened on; all before the server starts.
    """
    missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise SeqclfError(f"seqclf serve needs the {', '.join(missing)} package(s): pip "
                          "install 'seqclf[serve]'.")
    settings.check()
    import uvicorn

    from seqclf.serving.engine import inspect, load

    check_address(settings.host, settings.port)
    where = f"http://{settings.host}:{settings.port}"
    if settings.workers == 1:
        from seqclf.serving.app import create_app

        engine = load(settings)
        app: Any = create_app(engine, settings)
        served = engine.run.path
    else:
        served = inspect(settings).path  # each worker loads the model itself
        os.environ[SETTINGS_ENV] = settings.to_json()
        app = "seqclf.serving.server:from_environment"
    of_run = f", run {served}" if settings.engine == "onnx" else ""
    announce(f"serving {settings.target} ({settings.engine} engine{of_run}) on {where} with "
             f"{settings.workers} worker{'s' if settings.workers > 1 else ''}; docs at "
             f"{where}/docs")
    uvicorn.run(app, host=settings.host, port=settings.port, workers=settings.workers,
                factory=settings.workers > 1, log_level="info", timeout_graceful_shutdown=10)


def from_environment() -> Any:
    """The application of one worker process (uvicorn's factory with --workers > 1)."""
    from seqclf.serving.app import create_app
    from seqclf.serving.engine import load

    settings = Settings.from_json(os.environ[SETTINGS_ENV])
    return create_app(load(settings), settings)


def check_address(host: str, port: int) -> None:
    """Fail before loading anything when ``host:port`` cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SeqclfError(f"seqclf serve: --host {host!r} is not an address of this machine "
                          f"({exc.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise SeqclfError(f"seqclf serve: cannot listen on {host}:{port} "
                              f"({exc.strerror or exc}). Choose another --port or --host."
                              ) from None
