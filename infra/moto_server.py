"""A moto server on 127.0.0.1 whose requests are applied one at a time.

DynamoDB applies a conditional write atomically and S3 applies ``If-None-Match: *`` atomically; the chain's
integrity under racing writers rests on exactly that. moto's threaded server handles requests on concurrent threads
without locking its backends, so a thread switch between a condition check and the write would let two racing
conditional puts both succeed. That is rare (the GIL seldom switches there), but a race test must not pass by luck:
serializing requests gives the atomicity the real services guarantee (the local stack is for correctness, not
throughput).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server


class _SerializedApplication:
    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self._application = application
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            # Materialize the body inside the lock: a lazy iterable could still touch backend state afterwards.
            return list(self._application(environ, start_response))


class SerializedMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` with serialized requests; ``port=0`` picks a free port (see ``endpoint``)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)

    def _server_entry(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
        application = _SerializedApplication(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, application, threaded=True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
