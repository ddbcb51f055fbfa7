"""Small utilities: environment checks, safe checkpoint loading, CPU-friendly distributed set-up,
``mmkdcal::`` config paths, progress lines with ETA."""
__all__ = []
