"""Running retsync as a service: first setup, health, metrics, systemd, personal data and backups."""

from retsync.ops import tables as tables  # the operations tables belong to the store's metadata wherever it is read
