"""Shared pytest configuration: fixtures live in tests/fixtures/, one module per concern."""

pytest_plugins = [
    "tests.fixtures.environment",
    "tests.fixtures.emulator",
    "tests.fixtures.airflow",
    "tests.fixtures.databases",
]
