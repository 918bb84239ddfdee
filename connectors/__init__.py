"""Built-in connectors; each package registers through the `retsync.connectors` entry point group."""
