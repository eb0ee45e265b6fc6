"""``make demo``: the whole product on embedded defaults, end to end, against the local emulator.

Run as ``python -m demo [--ui] [--workdir DIR]``. Every step is a real process: the emulator, the
``dropbox-box-auth`` CLI and ``airflow dags test``; nothing is mocked and no token is ever printed.
"""
