"""perffarm: a self-hosted performance farm."""

__version__ = "0.1.0"
