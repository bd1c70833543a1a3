"""Serving: the token, binding beyond loopback, the foreground server, and HBase away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from labkit import api, config, hbase, sandbox
from labkit.config import SettingsError
from labkit.hbase import layout

from .helpers import a_query, closed_port, send, send_or_none

# --------------------------------------------------------------------------------------
# Token, binding, HBase failures
# --------------------------------------------------------------------------------------


def test_a_token_is_required_when_set(data):
    with api.start_in_thread(data.settings, token="s3cret-token", port=0) as running:
        status, answer = send(running.url, "/")
        assert status == 401 and "Bearer" in answer["message"]
        for header in ("Bearer wrong", "s3cret-token", "Basic s3cret-token"):
            assert send(running.url, "/search", {}, headers={"Authorization": header})[0] == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert send(running.url, "/", headers=good)[0] == 200
        assert send(running.url, "/search", {"target": "W1"}, headers=good)[0] == 200
        assert api.call(running.url, "/", token="s3cret-token")["status"] == "ok"


def test_no_token_no_listening_beyond_loopback(data):
    for host in ("0.0.0.0", "::", "192.0.2.10", "lab.example"):
        with pytest.raises(SettingsError, match="LABKIT_API_TOKEN"):
            api.start_in_thread(replace(data.settings, api_host=host), port=0)
    with pytest.raises(SettingsError):
        api.make_app(data.settings, token=" ")
    assert api.is_loopback("127.0.0.1") and api.is_loopback("::1")
    assert api.is_loopback("localhost") and not api.is_loopback("0.0.0.0")


def test_serve_runs_in_the_foreground_until_ctrl_c(stack):
    port = closed_port()
    code = "from labkit import api, config; api.serve(config.settings(), token='foreground-token')"
    env = {**os.environ, **config.to_environment(replace(stack, api_port=port))}
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while send_or_none(url) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert send(url, "/", headers={"Authorization": "Bearer foreground-token"})[0] == 200
        assert send(url, "/")[0] == 401
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert f"labkit API on {url}" in output


def test_unreachable_hbase_is_a_503_not_a_500(data):
    gone = replace(data.settings, hbase_thrift_port=closed_port())
    with api.start_in_thread(gone, port=0) as running:
        status, answer = send(running.url, "/query", a_query())
        assert status == 503 and "HBase" in answer["message"]
        assert send(running.url, "/search", {})[0] == 200  # the catalogue needs no HBase


def test_missing_tables_mean_no_data_yet(stack):
    fresh = replace(stack, hbase_table_prefix="tnever_created")
    with api.start_in_thread(fresh, port=0) as running:
        status, answer = send(running.url, "/query", a_query())
    assert status == 200 and answer[0]["datapoints"] == []


def test_an_idle_api_answers_with_what_hbase_holds_now(stack):
    """Kept answers serve a busy API only: a lone user sees a new reading at once."""
    moment = datetime(2024, 3, 1, 12, 0)
    body = api.panel_request(["TH1_raw"], moment, moment + timedelta(hours=1))
    with sandbox.sandbox(stack, "t") as mine, api.start_in_thread(mine, port=0) as running:
        assert api.call(running.url, "/query", body)[0]["datapoints"] == []
        with hbase.connection(mine) as connection:
            table = connection.table(hbase.table_name(mine, hbase.TableKind.RAW))
            table.put(*layout.raw_row("TH1", layout.time_text(moment), 21.5))
        assert api.call(running.url, "/query", body)[0]["datapoints"] == [
            [21.5, int((moment - datetime(1970, 1, 1)).total_seconds() * 1000)]
        ]
