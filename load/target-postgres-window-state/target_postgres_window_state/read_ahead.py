"""The loader's input read ahead by a thread of its own, so the tap never waits on a drain.

A Singer target reads its input on the thread that loads it: while a drain runs (COPY, the
upsert, waiting for a dbt build), nobody reads the pipe, it fills (64 KiB) and the tap blocks on
its next write, so extraction stops while loading runs (tap | target took 1.38-1.55x the tap
alone on the loader benchmark, bench/README.md). This thread keeps reading into a bounded
buffer; the loader's thread takes the lines of each read as soon as it arrives (a quiet tap's
STATE is not held back). Past the bound (MAX_BUFFERED_BYTES) the reader waits, and the tap with
it, as before: memory stays bounded whatever the input.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import stat
import threading
import time
import typing as t
from collections.abc import Iterator

#: Bytes taken from the pipe at a time: whatever is there, up to this, without waiting for more.
CHUNK_BYTES = 1 << 20
#: A read shorter than this is followed by a pause of SHORT_READ_PAUSE seconds. A Singer tap
#: flushes every message: read as they come, each record cost a wake-up of this thread and of
#: the loader's (an extra 14 CPU-seconds on 192,000 records, more than the loading itself).
#: The pause bounds the wake-ups to 200 a second; the 1 MiB pipe holds what arrives meanwhile.
SHORT_READ_BYTES = 64 << 10
SHORT_READ_PAUSE = 0.005
#: Bytes of lines held at most: 16 MiB, some 13,000 insights rows, a few seconds of a tap at ten
#: times Meta's pace (a load stalls the reading for well under a second). More buys nothing but
#: memory: 128 MiB took the loader's peak from 190 to 340 MB, reading from a file.
MAX_BUFFERED_BYTES = 16 << 20

#: The pipe's buffer, made as large as Linux allows an unprivileged process by default (it is
#: 64 KiB): the reader thread runs when the loading thread lets go of the GIL, every 5 ms at
#: worst, and empties the whole pipe each time, so a larger pipe is what lets the tap write on.
PIPE_BYTES = 1 << 20

Chunk = list[str] | BaseException | None  # lines, the reader's error, or None: the end


class _Buffer:
    """Chunks handed from the reader to the loader, bounded by their size in bytes (a count of
    chunks would not bound anything: a read takes whatever the pipe holds, small or large)."""

    def __init__(self, limit: int) -> None:
        self._chunks: collections.deque[tuple[Chunk, int]] = collections.deque()
        self._size = 0
        self._limit = limit
        self._changed = threading.Condition()

    def put(self, chunk: Chunk, size: int = 0) -> None:
        with self._changed:  # one chunk larger than the limit still passes, alone
            self._changed.wait_for(lambda: not self._chunks or self._size + size <= self._limit)
            self._chunks.append((chunk, size))
            self._size += size
            self._changed.notify_all()

    def get(self) -> Chunk:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._chunks))
            chunk, size = self._chunks.popleft()
            self._size -= size
            self._changed.notify_all()
            return chunk


def _widen_pipe(fd: int) -> None:
    with contextlib.suppress(OSError):  # not allowed: the default buffer serves, more slowly
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _fd(source: t.IO[str]) -> int | None:
    try:
        return source.fileno()
    except (OSError, ValueError, AttributeError):  # an in-memory stream
        return None


def _read_fd(fd: int, buffer: _Buffer) -> None:
    """Hand over the complete lines of each read as soon as they arrive (a read returns what the
    pipe holds; it waits only when the pipe is empty). UTF-8 never puts a newline byte inside a
    character, so splitting the bytes at newlines before decoding is safe."""
    pending = b""
    while data := os.read(fd, CHUNK_BYTES):
        if end := data.rfind(b"\n") + 1:
            whole, pending = pending + data[:end], data[end:]
            text = whole.decode("utf-8")
            buffer.put([line + "\n" for line in text.split("\n")[:-1]], len(whole))
        else:
            pending += data
        if len(data) < SHORT_READ_BYTES:
            time.sleep(SHORT_READ_PAUSE)  # let the writer's small writes gather in the pipe
    if pending:
        buffer.put([pending.decode("utf-8")], len(pending))


def _read_stream(source: t.IO[str], buffer: _Buffer) -> None:
    while chunk := source.readlines(CHUNK_BYTES):
        buffer.put(chunk, sum(map(len, chunk)))


def lines(source: t.IO[str]) -> Iterator[str]:
    """The lines of ``source``, read ahead by a daemon thread; its read error is raised here."""
    buffer = _Buffer(MAX_BUFFERED_BYTES)
    fd = _fd(source)
    if fd is not None:
        _widen_pipe(fd)

    def read() -> None:
        try:
            if fd is None:
                _read_stream(source, buffer)
            else:
                _read_fd(fd, buffer)
        except BaseException as error:  # handed to the loader's thread, raised there
            buffer.put(error)
        else:
            buffer.put(None)

    threading.Thread(target=read, name="singer-input", daemon=True).start()
    while (chunk := buffer.get()) is not None:
        if isinstance(chunk, BaseException):
            raise chunk
        yield from chunk
