"""The ``pulsarflow`` command: help everywhere, --version, short errors and their exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pulsarflow import __version__, cli


def _unhelped(parser: argparse.ArgumentParser, path: str = "pulsarflow") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                missing += [f"{path} {name}"] if not described.get(name) else []
                missing += _unhelped(child, f"{path} {name}")
        elif not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_subcommand_and_option_has_help() -> None:
    assert _unhelped(cli.build_parser()) == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"pulsarflow {__version__}"


def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["deploy", "launch"])
    assert done.value.code == 2 and "invalid choice: 'launch'" in capsys.readouterr().err


def test_a_missing_manifest_is_one_line_saying_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "apply", "--dry-run", "--manifest", str(tmp_path / "functions.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no manifest at ") and "pulsarflow init DIR" in err


def test_an_unreachable_pulsar_is_a_failure_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "functions.yaml").write_text("app: unreachable\nfunctions: [{engine: workflow}]\n")
    done = subprocess.run([sys.executable, "-m", "pulsarflow.cli", "deploy", "status", "--admin-url",
                           "http://127.0.0.1:1"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: ") and "http://127.0.0.1:1" in done.stderr
    assert "is Pulsar running?" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_an_unexpected_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli, "deploy_main", broken)
    monkeypatch.delenv("PULSARFLOW_DEBUG", raising=False)
    assert cli.main(["deploy", "status"]) == 1
    assert capsys.readouterr().err == "error: unexpected RuntimeError: disk on fire (PULSARFLOW_DEBUG=1 shows where)\n"


def test_apply_names_a_missing_module_and_where_before_contacting_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "functions.yaml"
    manifest.write_text("app: m\nmodules: [missing_app.flows]\nfunctions: [{engine: workflow}]\n")
    assert cli.main(["deploy", "apply", "--manifest", str(manifest), "--admin-url", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert f"'missing_app.flows' not found: looked for missing_app/ and missing_app.py in {tmp_path}" in err


def test_worker_flow_flags_reach_the_executors_and_bad_ones_are_refused_before_connecting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import signal

    seen: dict[str, Any] = {}
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    monkeypatch.setattr("pulsarflow.pulsar.engine_worker.run_engine",
                        lambda config, engine, modules, topics, stop, **kw: seen.update(engine=engine, **kw))
    worker = ["worker", "--modules", "tests.e2e.flows", "--service-url", "pulsar://127.0.0.1:1"]
    assert cli.main([*worker, "--max-concurrent", "payments=0"]) == 2
    assert "--max-concurrent payments must be a whole number of at least 1" in capsys.readouterr().err
    assert cli.main([*worker, "--max-starts-per-second", "payments"]) == 2
    assert "takes SERVICE=N" in capsys.readouterr().err
    assert seen == {}
    assert cli.main([*worker, "--redis-url", "redis://127.0.0.1:1/0", "--max-concurrent", "payments=3",
                 "--max-starts-per-second", "payments=10", "--max-concurrent", "shipping=1"]) == 0
    assert seen["engine"] == "executor" and seen["batch"] == 1
    limits = seen["flow"]
    assert (limits["payments"].max_concurrent, limits["payments"].max_starts_per_second) == (3, 10)
    assert limits["shipping"].max_concurrent == 1 and seen["store"] is not None
