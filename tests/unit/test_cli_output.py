"""The stderr renderers of a run (plain lines rate-limited by an injected clock, rich bars),
the program name in hints, and messages without Python reprs."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from rich.console import Console

from deltasync.cli.output import PlainOutput, RichOutput, run_output
from deltasync.cli.prog import prog_name
from deltasync.cli.state import candidate_text
from deltasync.eliza.http import transport_words
from deltasync.errors import without_reprs
from deltasync.service.sync import lease_words

T0 = datetime(2026, 12, 2, 6, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def mono(self) -> float:
        return self.s

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.s)


def plain(clock: Clock, *, hold: bool = False) -> tuple[PlainOutput, list[str]]:
    lines: list[str] = []
    output = PlainOutput(lines.append, hold=hold, clock=clock.mono, wallclock=clock.wall)
    return output, lines


def test_plain_lines_carry_a_utc_timestamp_and_the_run_id_even_when_logged_before_it() -> None:
    clock = Clock()
    output, lines = plain(clock)
    output.log("warning: early")  # before the run has an id: held until it has one
    assert lines == []
    output.begin(42)
    output.log("full round: no delta token yet")
    assert lines == [
        "2026-12-02T06:10:00Z run 42 warning: early",
        "2026-12-02T06:10:00Z run 42 full round: no delta token yet",
    ]


def test_plain_progress_at_most_one_line_a_minute_and_one_line_per_phase() -> None:
    clock = Clock()
    output, lines = plain(clock)
    output.begin(7)
    output.phase("pull")
    for _ in range(300):  # 300 pages over 5 minutes, one a second
        clock.s += 1
        output.advance(100, pages=1)
    output.done()
    progress = [line for line in lines if line.endswith("so far")]
    assert len(progress) == 5  # at 60, 120, 180, 240, 300 s
    assert progress[0] == "2026-12-02T06:11:00Z run 7 pull: 60 pages, 6000 objects (100/s) so far"
    assert (
        lines[-1]
        == "2026-12-02T06:15:00Z run 7 pull: 300 pages, 30000 objects (100/s) in 5 min 0 s"
    )
    assert len(lines) == 6

    lines.clear()
    output.phase("push", 1000)
    clock.s += 30
    output.advance(250)
    assert lines == []  # under a minute since the phase began
    clock.s += 30
    output.advance(250)
    assert lines == [
        "2026-12-02T06:16:00Z run 7 push: 500/1000 objects (8/s, about 60.0 s left) so far"
    ]
    output.done()
    output.phase("push", 0)
    output.done()
    assert lines[-1].endswith("run 7 push: nothing to do")


def test_plain_hold_drops_an_idle_run_and_shows_a_run_worth_showing() -> None:
    clock = Clock()
    idle, idle_lines = plain(clock, hold=True)
    idle.begin(1)
    idle.log("pull: 1 page")
    idle.close(show=False)
    assert idle_lines == []
    busy, busy_lines = plain(clock, hold=True)
    busy.log("warning: before the run")
    busy.begin(2)
    busy.log("push: 3 objects")
    assert busy_lines == []
    busy.close(show=True)
    assert [line.split(" ", 1)[1] for line in busy_lines] == [
        "run 2 warning: before the run",
        "run 2 push: 3 objects",
    ]


def test_a_run_that_never_got_an_id_still_flushes_its_lines() -> None:
    output, lines = plain(Clock())
    output.log("error: another run holds the lease")
    output.close()
    assert lines == ["2026-12-02T06:10:00Z deltasync error: another run holds the lease"]


def test_rich_bars_on_a_terminal_and_plain_lines_without_one() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    output = run_output(console, hold=False)
    assert isinstance(output, RichOutput)
    output.begin(3)
    output.phase("pull")
    output.advance(500, pages=1)
    output.done()
    output.phase("push", 10)
    output.advance(4)
    output.log("pushed some")
    output.done()
    output.close()
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buffer.getvalue())
    assert "500/500 objects, 1 page" in text
    assert "4/10 objects" in text
    assert "ETA" in text and "pushed some" in text
    assert isinstance(run_output(Console(file=io.StringIO()), hold=False), PlainOutput)


@pytest.mark.parametrize(
    ("argv0", "env", "expected"),
    [
        ("/usr/local/bin/deltasync", {}, "deltasync"),
        ("/srv/app/.venv/bin/deltasync", {"UV_RUN_RECURSION_DEPTH": "1"}, "uv run deltasync"),
        ("/x/deltasync/__main__.py", {}, "python -m deltasync"),
        ("/x/deltasync/__main__.py", {"UV_RUN_RECURSION_DEPTH": "1"}, "uv run python -m deltasync"),
        ("/usr/bin/pytest", {}, "deltasync"),
    ],
)
def test_prog_name_follows_how_deltasync_was_started(
    argv0: str, env: dict[str, str], expected: str
) -> None:
    assert prog_name([argv0, "sync"], env) == expected


def test_messages_name_hosts_and_holders_without_python_reprs() -> None:
    aio = (
        "Cannot connect to host login.microsoftonline.com:443 "
        "ssl:<ssl.SSLContext object at 0x7f3a2c1b0e50> [Name or service not known]"
    )
    assert without_reprs(aio) == (
        "Cannot connect to host login.microsoftonline.com:443 [Name or service not known]"
    )
    assert transport_words(httpx.ConnectError("")) == "ConnectError"
    info = {"holder": "cron-01:4711:ab12cd34", "expires_at": "2026-12-02T06:12:00+00:00"}
    assert (
        lease_words(info)
        == "process 4711 on cron-01, until 2026-12-02 06:12:00 UTC unless it renews it"
    )
    assert lease_words(None) == "its holder is unknown"
    candidate = {"id": 3, "username": "chef", "email": None, "is_superuser": True}
    assert candidate_text(candidate) == "#3 username='chef', is_superuser=true"


def test_eliza_connection_errors_name_the_host() -> None:
    import asyncio

    from deltasync.eliza.http import ElizaHttp
    from deltasync.errors import ServiceUnavailableError

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async def no_sleep(_s: float) -> None:
        return None

    http = ElizaHttp(
        "https://eliza.example.ch",
        "token",
        timeout_s=1,
        max_concurrency=1,
        ca_bundle=None,
        transport=httpx.MockTransport(refuse),
        retry_base_delay_s=0,
        max_retries=1,
        sleep=no_sleep,
    )

    async def attempt() -> None:
        try:
            await http.send("GET", "/api/users/")
        finally:
            await http.aclose()

    with pytest.raises(ServiceUnavailableError) as caught:
        asyncio.run(attempt())
    assert "eliza.example.ch:443" in str(caught.value)
    assert "Connection refused" in str(caught.value)
    assert "object at 0x" not in str(caught.value)


COMMANDS = (
    "sync",
    "resync",
    "watch",
    "undo",
    "state",
    "export-excel",
    "check",
    "demo",
    "sandbox serve",
    "sandbox edit",
    "db upgrade",
)  # "deltasync sandbox" alone names the simulators


def test_no_layer_below_the_cli_spells_a_command_with_the_program_name() -> None:
    """They write `state runs` and the CLI prefixes the name as typed (``with_prog``)."""
    import ast
    from pathlib import Path

    import deltasync

    root = Path(deltasync.__file__).parent
    spelled = re.compile(r"\bdeltasync (" + "|".join(COMMANDS) + r")\b")
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.parts[len(root.parts)] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and spelled.search(node.value)
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    assert found == []


def test_with_prog_prefixes_only_backticked_commands() -> None:
    from deltasync.cli.prog import with_prog

    text = "no run 5; `state runs` lists them (or `db upgrade`); `stateful` and `x state` stay"
    assert with_prog(text, "py -m deltasync") == (
        "no run 5; `py -m deltasync state runs` lists them (or `py -m deltasync db upgrade`); "
        "`stateful` and `x state` stay"
    )


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_failed_run_never_says_nothing_to_do(dry_run: bool) -> None:
    from deltasync.cli.render import render_report
    from deltasync.service import RunReport

    def shown(report: RunReport) -> str:
        buffer = io.StringIO()
        render_report(report, console=Console(file=buffer, width=200))
        return buffer.getvalue()

    failed = RunReport("sync", dry_run)
    failed.error = "Graph: the token endpoint refused the client secret"
    text = shown(failed)
    assert "nothing to do" not in text
    assert "the run failed" in text and failed.error in text
    held = RunReport("sync", dry_run)
    held.held.append({"label": "anna@firma.ch", "status": "disabled"})
    held.threshold = "2 of 10 linked users (20 %) exceed max_deactivation_percent 10"
    assert "nothing to do" not in shown(held)
    assert "nothing to do" in shown(RunReport("sync", dry_run))
