"""Benchmark sizes per mode: full (``make bench``), quick (about a minute or two), smoke (tiny, for tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every knob of one run."""

    mode: str
    repetitions: int
    fleet_processes: tuple[int, ...]
    fleet_duration: float
    fleet_ttl: float
    fleet_think: float
    hot_calls: int
    hot_token_calls: int
    small_files: int
    small_size: int
    large_size: int
    import_repetitions: int
    fleet_variants: tuple[str, ...] = field(default=())
    # Refresh under contention: P processes x C connections, tokens living ``contention_ttl`` seconds.
    contention_processes: int = 16
    contention_connections: int = 50
    contention_warmup: float = 4.0
    contention_duration: float = 12.0
    contention_ttl: float = 2.0
    contention_think: float = 0.01
    contention_margins: tuple[int, ...] = (0, 300)
    # Many small files: count x size, the emulator's per-request latencies (the first one is the headline
    # and the 429 run's), and how many 429s the storm run serves on the upload route.
    many_files: int = 1000
    many_size: int = 64 * 1024
    many_latencies_ms: tuple[float, ...] = (30.0, 0.0)
    many_storm_429s: int = 12
    # Change feeds (``watch``): idle watching for ``watch_idle`` seconds (the services' long-poll timeouts
    # and token lifetimes are compressed by watch_idle / 600, so any length stands for 10 minutes), then
    # ``watch_uploads`` uploads timed against a poke sensor every ``watch_poke_interval`` seconds.
    watch_idle: float = 600.0
    watch_uploads: int = 10
    watch_poke_interval: float = 30.0


FULL = Settings(
    mode="full",
    repetitions=5,
    fleet_processes=(4, 16, 64),
    fleet_duration=8.0,
    fleet_ttl=2.0,
    fleet_think=0.05,
    hot_calls=400,
    hot_token_calls=20000,
    small_files=200,
    small_size=1 * MiB,
    large_size=1024 * MiB,
    import_repetitions=10,  # the median of 10
    contention_processes=16,
    contention_connections=50,
    contention_duration=12.0,
)

QUICK = Settings(
    mode="quick",
    repetitions=5,
    fleet_processes=(4, 16),
    fleet_duration=3.0,
    fleet_ttl=1.0,
    fleet_think=0.05,
    hot_calls=100,
    hot_token_calls=5000,
    small_files=20,
    small_size=1 * MiB,
    large_size=64 * MiB,
    import_repetitions=3,
    contention_processes=4,
    contention_connections=10,
    contention_warmup=2.5,
    contention_duration=5.0,
    many_files=200,
    watch_idle=60.0,
    watch_uploads=3,
)

SMOKE = Settings(
    mode="smoke",
    repetitions=2,
    fleet_processes=(2,),
    fleet_duration=1.0,
    fleet_ttl=0.5,
    fleet_think=0.05,
    hot_calls=5,
    hot_token_calls=50,
    small_files=2,
    small_size=64 * 1024,
    large_size=21 * MiB,
    import_repetitions=1,
    contention_processes=2,
    contention_connections=3,
    contention_warmup=1.0,
    contention_duration=1.5,
    contention_ttl=1.0,
    many_files=8,
    many_size=4 * 1024,
    many_storm_429s=4,
    watch_idle=3.0,
    watch_uploads=1,
    watch_poke_interval=2.0,
)

MODES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
