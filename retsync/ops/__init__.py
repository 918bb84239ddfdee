"""Running retsync as a service: first setup, health, metrics, systemd, personal data and backups."""
