"""The loader's input read ahead by a thread of its own, so the tap never waits on a drain.

A Singer target reads its input on the thread that loads it: while a drain runs (COPY, the
upsert, waiting for a dbt build), nobody reads the pipe, it fills (64 KiB) and the tap blocks on
its next write, so extraction stops while loading runs. Measured on the loader benchmark
(bench/README.md), the tap piped into the loader took 1.37x the tap alone. This thread keeps
reading into a bounded buffer; the loader's thread takes whole chunks of lines from it, each as
soon as it arrives (a quiet tap's state message is not held back). Past the bound
(MAX_BUFFERED_CHUNKS chunks of at most CHUNK_BYTES) the reader waits, and the tap with it, as
before: memory stays bounded whatever the input.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import stat
import threading
import typing as t
from collections.abc import Iterator

#: Bytes taken from the pipe at a time: whatever is there, up to this, without waiting for more.
CHUNK_BYTES = 1 << 20
#: Chunks held at most: about 128 MB of Singer lines, some 100,000 insights rows.
MAX_BUFFERED_CHUNKS = 128

#: The pipe's buffer, made as large as Linux allows an unprivileged process by default (it is
#: 64 KiB): the reader thread runs when the loading thread lets go of the GIL, every 5 ms at
#: worst, and empties the whole pipe each time, so a larger pipe is what lets the tap write on.
PIPE_BYTES = 1 << 20

_END = None

Chunks = queue.Queue  # of list[str] | BaseException | None


def _widen_pipe(fd: int) -> None:
    with contextlib.suppress(OSError):  # not allowed: the default buffer serves, more slowly
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _fd(source: t.IO[str]) -> int | None:
    try:
        return source.fileno()
    except (OSError, ValueError, AttributeError):  # an in-memory stream
        return None


def _read_fd(fd: int, chunks: Chunks) -> None:
    """Hand over the complete lines of each read as soon as they arrive (a read returns what the
    pipe holds; it waits only when the pipe is empty). UTF-8 never puts a newline byte inside a
    character, so splitting the bytes at newlines before decoding is safe."""
    pending = b""
    while data := os.read(fd, CHUNK_BYTES):
        end = data.rfind(b"\n") + 1
        if not end:
            pending += data
            continue
        text = (pending + data[:end]).decode("utf-8")
        pending = data[end:]
        chunks.put([line + "\n" for line in text.split("\n")[:-1]])
    if pending:
        chunks.put([pending.decode("utf-8")])


def _read_stream(source: t.IO[str], chunks: Chunks) -> None:
    while chunk := source.readlines(CHUNK_BYTES):
        chunks.put(chunk)


def lines(source: t.IO[str]) -> Iterator[str]:
    """The lines of ``source``, read ahead by a daemon thread; its read error is raised here."""
    chunks: Chunks = queue.Queue(MAX_BUFFERED_CHUNKS)
    fd = _fd(source)
    if fd is not None:
        _widen_pipe(fd)

    def read() -> None:
        try:
            if fd is None:
                _read_stream(source, chunks)
            else:
                _read_fd(fd, chunks)
        except BaseException as error:  # handed to the loader's thread, raised there
            chunks.put(error)
        else:
            chunks.put(_END)

    threading.Thread(target=read, name="singer-input", daemon=True).start()
    while (chunk := chunks.get()) is not _END:
        if isinstance(chunk, BaseException):
            raise chunk
        yield from chunk
