"""A retsync connector for the template channel (README.md): copy this package to write your own."""
