"""What runs: the daemon's scheduled jobs (`daemon`), the `retsync` command (`cli`), the sandbox demo (`demo`),
and the read-only queries and tables they show (`queries`, `tables`)."""
