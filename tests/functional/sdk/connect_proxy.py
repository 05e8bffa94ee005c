"""A forward proxy for the SDK's functional tests: it answers HTTP CONNECT on 127.0.0.1 and relays the tunnel's bytes
both ways without reading them (TLS passes through), recording each CONNECT's target and headers."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class ConnectProxy:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.connects: list[tuple[str, dict[str, str]]] = []  # ("host:port", headers) per CONNECT

    def targets(self) -> list[str]:
        with self.lock:
            return [target for target, _ in self.connects]


def _relay(source: socket.socket, destination: socket.socket) -> None:
    with suppress(OSError):  # either side closing ends the tunnel
        while data := source.recv(65536):
            destination.sendall(data)
    for end in (source, destination):
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)


def _handler_for(proxy: ConnectProxy) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            method, target, _ = self.rfile.readline().decode("latin-1").split(" ", 2)
            headers = {}
            while (line := self.rfile.readline().decode("latin-1").rstrip("\r\n")) != "":
                name, _, value = line.partition(":")
                headers[name.strip()] = value.strip()
            with proxy.lock:
                proxy.connects.append((target, headers))
            if method != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection(("127.0.0.1" if host == "localhost" else host, int(port)))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            back = threading.Thread(target=_relay, args=(upstream, self.connection), daemon=True)
            back.start()
            _relay(self.connection, upstream)
            back.join(timeout=5)
            upstream.close()

    return Handler


@contextmanager
def running_connect_proxy() -> Iterator[tuple[ConnectProxy, str]]:
    """Yields the proxy and its URL (``http://127.0.0.1:<port>``)."""
    proxy = ConnectProxy()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _handler_for(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
