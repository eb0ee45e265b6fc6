"""fsspec filesystems ``dropbox://`` and ``box://`` over the hooks (tokens from the TokenManager).

Registered with fsspec (the ``fsspec.specs`` entry points) and with Airflow (provider info ``filesystems``),
so ``ObjectStoragePath("dropbox://CONN_ID@/path")`` binds the connection. Nothing here is imported by the
hooks.
"""
