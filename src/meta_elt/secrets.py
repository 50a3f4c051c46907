"""Hand one tenant's access token to its tap, and to nothing else, without writing it anywhere.

Meltano passes its whole environment to every plugin of a run and writes each plugin's config,
secrets included, to a JSON file under ``.meltano/run/`` while the run lasts. So the token goes
neither into the environment nor into Meltano's config: `TokenBroker` serves it over a UNIX
socket in a private directory (0700, the socket 0600) for as long as the run lasts, and the tap's
``access_token_file`` setting points at the socket. The tap reads the token once at start-up; the
only thing on disk is the socket's name. A peer of another user is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class TokenBroker:
    """A UNIX socket that answers every connection of this user with ``token`` (context manager)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._dir = Path(tempfile.mkdtemp(prefix="meta-elt-token-"))  # mode 0700
        self.path = self._dir / "token.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        self._sock.listen(8)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="token-broker", daemon=True)

    def __enter__(self) -> TokenBroker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                if _peer_uid(conn) != os.getuid():
                    continue
                try:
                    conn.sendall(self._token)
                except OSError:
                    continue


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except (OSError, AttributeError):
        return None
    return _PEERCRED.unpack(raw)[1]


def scrubbed_env(env: Mapping[str, str], token_variables: Iterable[str]) -> dict[str, str]:
    """``env`` without any access token: every tenant's token variable and the tap's own."""
    drop = {*token_variables, "TAP_FACEBOOK_ACCESS_TOKEN", "TAP_FACEBOOK_ACCESS_TOKEN_FILE"}
    return {k: v for k, v in env.items() if k not in drop}
