"""retsync: one database for every channel's returns, and the merchant's decisions mirrored back exactly once."""

__version__ = "0.1.0"
