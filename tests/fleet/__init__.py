"""``make fleet``: the provider under Airflow's CeleryExecutor with two workers and one PostgreSQL token
store, on this machine (``python -m tests.fleet [--full] [--workdir DIR]``)."""
