"""Issue 18.8: a decision that contradicts what the channel already did is refused, naming the state, unless
forced; a refusal records nothing. The same guard serves `retsync decide` and the console (test_pages)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from retsync.app.cli import main
from retsync.kit.model import DecisionKind, ReturnStatus
from retsync.outbox.decisions import DecisionRefused, record_decision
from retsync.store.models import Decision, ReturnEvent
from tests.fakes import ScriptedConnector, make_return
from tests.web.conftest import SQLITE_ONLY, fill


def _count(db: Engine, table: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _decide(db: Engine, ref: str, kind: DecisionKind, **kw: Any) -> Any:
    return record_decision(db, ref, kind, connector_for=lambda name: ScriptedConnector, refuse_contradicting=True,
                           **kw)


def test_each_final_channel_state_refuses_what_contradicts_it(db: Engine, tmp_path: Path) -> None:
    fill(db, tmp_path)
    events = _count(db, ReturnEvent.__table__)
    with pytest.raises(DecisionRefused, match=r"shop/R1 is already refunded at the channel \(status refunded\): "
                                              r"reject contradicts it"):
        _decide(db, "shop/R1", DecisionKind.REJECT)
    assert _count(db, Decision) == 0 and _count(db, ReturnEvent.__table__) == events, "nothing recorded"
    _decide(db, "shop/R0", DecisionKind.ACCEPT)
    with db.begin() as conn:
        conn.execute(update(Decision).values(state="pushed"))
    with pytest.raises(DecisionRefused, match=r"already accepted at the channel \(pushed\): reject contradicts it"):
        _decide(db, "shop/R0", DecisionKind.REJECT)
    _decide(db, "shop/R2", DecisionKind.REJECT)
    with db.begin() as conn:
        conn.execute(update(Decision).where(Decision.kind == "reject").values(state="synced"))
    with pytest.raises(DecisionRefused, match=r"already decided reject at the channel \(reported by the channel\): "
                                              r"accept contradicts it"):
        _decide(db, "shop/R2", DecisionKind.ACCEPT)
    assert _decide(db, "shop/R3", DecisionKind.REJECT).decision_ids, "nothing final yet: no guard"
    assert _decide(db, "shop/R1", DecisionKind.ACCEPT).decision_ids, "an accept agrees with a refund"


@pytest.fixture
def config_file(tmp_path: Path, db_url: str, db: Engine, extra_connectors: dict) -> Path:
    extra_connectors.update(scripted=ScriptedConnector)
    ScriptedConnector.reset(2)
    ScriptedConnector.returns[1] = make_return(1, ReturnStatus.REFUNDED)
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[daemon]\nstate_dir = "{tmp_path}"\n'
                    f'[channels.shop]\nconnector = "scripted"\n')
    return path


@SQLITE_ONLY
def test_retsync_decide_refuses_unless_forced_and_names_who_decided(config_file: Path, db: Engine,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "sync"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_file), "decide", "shop/R1", "reject", "--note", "worn"]) == 1
    err = capsys.readouterr().err
    assert "shop/R1 is already refunded at the channel (status refunded)" in err and "--force" in err
    assert _count(db, Decision) == 0
    assert main(["--config", str(config_file), "decide", "shop/R1", "reject", "--note", "worn", "--force"]) == 0
    assert _count(db, Decision) == 2
    capsys.readouterr()
    assert main(["--config", str(config_file), "returns", "show", "shop/R1"]) == 0
    assert f"cli:{getpass.getuser()}" in capsys.readouterr().out, "the history names who decided"
