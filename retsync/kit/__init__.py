"""The connector kit: the only part of retsync a connector imports.

Everything a channel needs and nothing of the daemon's insides, so a connector written outside this repository
keeps working while the daemon changes. The modules, in the order a connector meets them:

- `settings`  `ChannelSettings`: the keys every `[channels.<name>]` table has; subclass it with yours.
- `model`     the unified records a connector produces (`Return`, `Order`, their lines, statuses, reasons).
- `contract`  `Connector[SettingsT]` and what passes between it and the daemon: `Page`, `PullContext`,
              `DecisionAct`, `PushResult`, `HoldRequest`, `HeldDecision`, `Capabilities`, `Runtime`.
- `http`      `ChannelHttp`: one client per channel with retries, Retry-After, pacing, response limits and the
              errors (`TransientError`, `ApiError`, `AuthError`, `BadPayload`) the outbox turns into outcomes
              (`retsync/outbox/outcomes.py`: raise, never translate them yourself). `ChannelHttp.read_all` sends
              independent reads side by side, up to `max_concurrency` (`concurrency`).
- `payload`   bounded readers for what a channel sends (money, counts, dates, ids, free text).
- `reasons`   `reason_from_words`: a return reason the customer typed, read into the unified reason.
- `records`   `RecordSieve`: one record that cannot be read is quarantined, never its page.
- `paging`    `Cursor` (a typed cursor model), `walk_pages`, `ChangedSinceWalk`: resuming, never hand-rolled.
- `tokens`, `secrets`, `files`   rotating OAuth tokens, secret config values, private state files.
- `sandbox`   the seeded half of a sandbox: `SeededData`, the same records for the same seed.
- `emulator`  the routes half: an in-process API (with fault switches) that tests, the demo and benchmarks use.

`retsync.testing` (a pytest plugin) holds the suites a connector passes; see README "Writing a connector".
"""
