"""Small utilities: environment checks, safe checkpoint loading, CPU-friendly distributed set-up."""
__all__ = []
