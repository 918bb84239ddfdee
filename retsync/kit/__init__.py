"""The connector kit: the only part of retsync a connector imports.

Everything a channel needs and nothing of the daemon's insides, so a connector written outside this repository
keeps working while the daemon changes. The modules, in the order a connector meets them:

- `settings`  `ChannelSettings`: the keys every `[channels.<name>]` table has; subclass it with yours.
- `model`     the unified records a connector produces (`Return`, `Order`, their lines, statuses, reasons).
- `contract`  `Connector[SettingsT]` and what passes between it and the daemon: `Page`, `PullContext`,
              `DecisionAct`, `PushResult`, `HoldRequest`, `HeldDecision`, `Capabilities`, `Runtime`.
- `http`      `ChannelHttp`: one client per channel with retries, Retry-After, pacing, response limits and the
              errors (`TransientError`, `ApiError`, `AuthError`, `BadPayload`) the outbox turns into outcomes.
- `payload`   bounded readers for what a channel sends (money, counts, dates, ids, free text, reasons).
- `records`   `RecordSieve`: one record that cannot be read is quarantined, never its page.
- `paging`    cursor walks (changed-since with a typed cursor) so a connector never hand-rolls resumption.
- `tokens`, `secrets`, `files`   rotating OAuth tokens, secret config values, private state files.
- `emulator`  the sandbox base: a seeded in-process API that tests, the demo and benchmarks run against.

`retsync.testing` (a pytest plugin) holds the suites a connector passes; see README "Writing a connector".
"""
