"""The sweep file while a sweep runs: locked, checked against the call, appended to durably.

While a sweep runs it holds an exclusive ``flock`` on the file, so a second
``run_sweep`` on the same file fails at once instead of duplicating points.
Every record is one ``os.write`` of a complete line followed by ``fsync``; a
line cut off by a kill is truncated away when the file is opened again.
"""
from __future__ import annotations

import os
from pathlib import Path

from solvers.sweep.fileformat import FORMAT_NAME, SweepError, compact, compare_headers, latest, parse

__all__ = ["SweepFile"]


class SweepFile:
    """The open, locked sweep file: checks or writes the header, appends records durably."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._lock()
            self.header, self.records = self._open(header)
        except BaseException:
            os.close(self.fd)
            raise

    def _lock(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(f"{self.path} is being written by another running sweep (it is locked); "
                             "wait for it to finish or stop it first") from None

    def _read_all(self) -> bytes:
        chunks, offset = [], 0
        while True:
            chunk = os.pread(self.fd, 1 << 20, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    def _open(self, wanted: dict):
        data = self._read_all()
        if b"\n" not in data:
            prefix = compact({"format": FORMAT_NAME})[:-1].encode()
            if data and not (prefix.startswith(data) or data.startswith(prefix)):
                raise SweepError(f"{self.path} exists and is not a {FORMAT_NAME} file; refusing to overwrite it")
            if data:  # header cut off while the sweep was being created
                os.ftruncate(self.fd, 0)
            self._append(compact(wanted) + "\n")
            self._fsync_dir()
            return wanted, {}
        header, records, end = parse(data, self.path)
        compare_headers(header, wanted, self.path)
        if end < len(data):  # a record cut off by a kill
            os.ftruncate(self.fd, end)
            os.fsync(self.fd)
        return header, latest(records)

    def _fsync_dir(self):
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    def _append(self, line: str):
        data = line.encode("utf-8")
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
        os.fsync(self.fd)

    def write(self, record: dict):
        self._append(compact(record) + "\n")
        self.records[record["index"]] = record

    def close(self):
        os.close(self.fd)
