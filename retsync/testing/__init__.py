"""The suites and fixtures a connector is tested with, wherever it is written (installed as a pytest plugin).

- `contract.ConnectorContract`: the connector contract suite (pulls, the fault matrix, decision acts exactly once,
  lost answers, no secret in the database), run through the daemon's real path against the connector's sandbox.
- `backoffice.BackOfficeContract`: the shop half (marketplace returns held and decided in the shop's panel).
- `specs`: the public API contracts in `shared/specs`, and payloads drawn from their schemas for property tests.
- `memory`: `InMemoryStore`, `act_for`, `carry_out`, `carry_out_hold` for a connector's own unit tests.
- `config.config_for`: the checked configuration a test runs the daemon with.
- `crash`: `kill_at_random` and `run_sync`, for a crash test that SIGKILLs `retsync sync` against a served sandbox.
- `plugin` (loaded by pytest through the `pytest11` entry point): `db`, `db_url` (SQLite, then PostgreSQL),
  `pg_cluster`, `migrated_sqlite`, `extra_connectors`.
"""
