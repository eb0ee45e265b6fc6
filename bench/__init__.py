"""Benchmarks of the provider against the official Dropbox and Box SDKs and raw httpx, on the local emulator.

Run ``make bench`` (full) or ``python -m bench --quick``; results go to ``bench/results/latest.{json,md}``.
"""
