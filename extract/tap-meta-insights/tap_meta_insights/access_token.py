"""The access token: from ``access_token``, or read from a file or UNIX socket."""

from __future__ import annotations

import os
import socket
import stat
import typing as t

from tap_meta_insights.errors import SettingError

TOKEN_SOCKET_TIMEOUT = 10.0
MAX_TOKEN_BYTES = 64 * 1024


def _read_socket(path: str) -> bytes:
    """Everything a UNIX socket at ``path`` sends until it closes the connection."""
    chunks: list[bytes] = []
    size = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(TOKEN_SOCKET_TIMEOUT)
        conn.connect(path)
        while size <= MAX_TOKEN_BYTES:
            chunk = conn.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)


def _read_token_source(path: str) -> bytes:
    """The bytes of a token file, or what the UNIX socket at ``path`` serves."""
    if stat.S_ISSOCK(os.stat(path).st_mode):
        return _read_socket(path)
    with open(path, "rb") as file:
        return file.read(MAX_TOKEN_BYTES + 1)


def read_token_file(path: str) -> str:
    """The access token in the file (or served by the UNIX socket) at ``path``, stripped.

    Errors name the setting and the path, never the content.
    """
    try:
        raw = _read_token_source(path)
    except OSError as exc:  # missing, unreadable, refused, timed out (TimeoutError)
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise SettingError(
            f"access_token_file: cannot read {path}: {reason}; point it at a readable token "
            "file, or at the socket of a running meta-elt."
        ) from None
    if len(raw) > MAX_TOKEN_BYTES:
        raise SettingError(
            f"access_token_file: {path} holds more than {MAX_TOKEN_BYTES} bytes; it must hold "
            "only the access token."
        )
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SettingError(
            f"access_token_file: {path} is not UTF-8 text; it must hold only the access token."
        ) from None
    if not token:
        raise SettingError(
            f"access_token_file: {path} holds no token (empty); write the access token into it."
        )
    return token


def _check_token(name: str, token: str) -> str:
    # A newline or control character would put the token in requests' "invalid header"
    # error (which quotes the header value), so refuse it here, without quoting it.
    if not token.isprintable() or any(c.isspace() for c in token):
        raise SettingError(
            f"{name}: the token contains whitespace or control characters; give only the token."
        )
    return token


def resolve_access_token(config: t.Mapping[str, t.Any], *, read_file: bool = True) -> str:
    """``access_token``, or the token read from ``access_token_file`` (one of them, not both).

    With ``read_file=False`` (discovery) the file is not read and the token is empty.
    """
    token = str(config.get("access_token") or "").strip()
    path = str(config.get("access_token_file") or "").strip()
    if token and path:
        raise SettingError(
            "access_token: set one of access_token or access_token_file, not both "
            "(unset TAP_FACEBOOK_ACCESS_TOKEN or TAP_FACEBOOK_ACCESS_TOKEN_FILE)."
        )
    if path:
        return _check_token("access_token_file", read_token_file(path)) if read_file else ""
    return _check_token("access_token", token) if token else ""
