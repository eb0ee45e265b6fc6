"""Dropbox's upload sizes: one request up to 150 MiB, upload sessions beyond it in 32 MiB parts by default.

A module of its own because the hook's signatures use them while a DAG file is parsed, and the upload code
they belong to loads only with the first transfer.
"""

from __future__ import annotations

MiB = 1024 * 1024
SINGLE_UPLOAD_LIMIT = 150 * MiB
DEFAULT_CHUNK_SIZE = 32 * MiB
