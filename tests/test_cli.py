"""The ``omniconv`` command line: --version, plain-text help, peer arguments, exit status."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import omniconv
from omniconv import cli

REST_MARKUP = re.compile(r"``|:(?:func|class|mod|data|meth|attr):|\.\. \w+::")


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "-h"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"omniconv {omniconv.__version__}"


@pytest.mark.parametrize("command", [(), ("demo",), ("bench",)])
def test_help_is_plain_text(capsys, command):
    text = _help(capsys, *command)
    assert text.startswith("usage: omniconv")
    assert not REST_MARKUP.search(text), REST_MARKUP.search(text)


def test_help_says_what_each_command_does(capsys):
    top = _help(capsys)
    assert "demo" in top and "bench" in top and "--version" in top and "commands:" in top
    bench = _help(capsys, "bench")
    assert (
        "--peer NAME[=PYTHON]" in bench
        and "mxnet, onnxruntime, openvino, paddle" in bench
        and "exit status" in bench
    )
    assert "tolerance" in _help(capsys, "demo")


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "omniconv", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"omniconv {omniconv.__version__}"


def test_unknown_peer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--peer", "tensorflow=/usr/bin/python3"])
    assert exc.value.code == 2
    known = "(known: mxnet, onnxruntime, openvino, paddle"
    assert f"unknown peer 'tensorflow' {known}" in capsys.readouterr().err


def _fake_bench(peers_result):
    calls = []

    def run_bench(**kwargs):
        calls.append(kwargs)
        return {"threads": 2, "fast_path": True, "dcn": [], "peers": peers_result, "wrappers": []}

    return run_bench, calls


def _row(ok: bool) -> dict:
    agreement = {"ok": ok, "rel_diff": {"output": 0.0 if ok else 1.0}, "rtol": 1e-4}
    return {"shape": [1, 4, 6], "op": "DCNv2", "agreement": agreement}


@pytest.mark.parametrize(
    ("peer", "status"),
    [
        ({"framework": "x", "rows": [_row(ok=True)]}, 0),
        ({"framework": "x", "rows": [_row(ok=True), _row(ok=False)]}, 1),
        ({"framework": "x", "rows": [{"shape": [1, 4, 6], "error": "MemoryError"}]}, 1),
        ({"python": "/nope", "error": "No such file"}, 1),
    ],
)
def test_bench_exit_status_follows_the_peers(monkeypatch, capsys, peer, status):
    from omniconv import bench

    run_bench, calls = _fake_bench({"paddle": peer})
    monkeypatch.setattr(bench, "run_bench", run_bench)
    argv = ["bench", "--quick", "--paddle-python", "/p/python", "--peer", "mxnet"]
    argv += ["--layout", "NCHW"]
    assert cli.main(argv) == status
    (kwargs,) = calls
    assert kwargs["peers"] == [("mxnet", sys.executable), ("paddle", "/p/python")]
    assert kwargs["layouts"] == ["NCHW"] and kwargs["quick"] and kwargs["baselines"]
    assert ("differs from omniconv: paddle" in capsys.readouterr().err) == bool(status)
