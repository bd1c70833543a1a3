"""The lab's processes: up, status and down tell the truth and touch only what is ours."""

import json
import re
import urllib.request

from labkit import services
from labkit.services.tools import ANNOUNCEMENTS


def _stack_status(settings):
    return {row.service: row for row in services.status(settings, services.STACK)}


def test_up_twice_is_harmless_and_status_tells_the_truth(stack):
    before = _stack_status(stack)
    assert all(row.ready and row.pid for row in before.values()), before
    services.up(stack, progress=lambda message: None)
    after = _stack_status(stack)
    assert {name: row.pid for name, row in after.items()} == {
        name: row.pid for name, row in before.items()
    }
    assert all(row.state == "ready" for row in after.values())


def _start_jupyter_with_a_kernel(settings) -> None:
    services.start(services.JUPYTER, settings)
    services.wait_ready(services.JUPYTER, settings, timeout=120)
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.jupyter_port}/api/kernels",
        method="POST",
        headers={"Authorization": f"token {services.JUPYTER.token(settings)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def test_down_leaves_no_process_of_ours_then_up_again(stack):
    _start_jupyter_with_a_kernel(stack)
    # JupyterLab, its kernel and the three servers: at least five processes of ours.
    assert len(services.lab_processes(stack)) >= 5
    try:
        services.down(stack, progress=lambda message: None)
        assert services.lab_processes(stack) == []
        for row in services.status(stack):
            assert (row.pid, row.ready, row.state) == (None, False, "stopped")
            for port in row.ports.values():
                assert not services.port_open("localhost", port), f"{row.service} port {port}"
    finally:
        services.up(stack, progress=lambda message: None)
    assert all(row.state == "ready" for row in _stack_status(stack).values())


def test_jupyterlab_starts_without_the_jupyter_news_pop_up(stack):
    """The page JupyterLab serves leaves out the plugin that asks, in a pop-up over the first
    notebook, whether to fetch Jupyter news (and that checks for updates online)."""
    services.start(services.JUPYTER, stack)
    services.wait_ready(services.JUPYTER, stack, timeout=120)
    with urllib.request.urlopen(services.JUPYTER.url(stack), timeout=30) as response:
        page = response.read().decode()
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      page, re.DOTALL)  # fmt: skip
    assert found, "JupyterLab's page carries no configuration"
    page_config = json.loads(found.group(1))
    assert ANNOUNCEMENTS in page_config["disabledExtensions"]
