"""Every ```python block of the README, docs/ and the package READMEs, run against a real
dev-mode server.

The blocks of one file run in order in one namespace, so a block may use what an earlier
one defined; each file gets its own server and database. `FABRIC_BASE_URL` points the
SDK's default at that server. OpenAI and Anthropic are a loopback fake (`fake_llm`), so
blocks that name a real model run offline too.

A block right after `<!-- snippet: skip — <reason> -->` is not run: its test is reported
as skipped with that reason (`pytest -rs` lists them). Any other block that raises fails.

Some names a text takes from the world around it — a token from a mailed link, the body of
a webhook request — are given by `FIXTURES`, made just before the first block that reads
them and left in the namespace for the blocks after it.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fake_llm import FakeLLM
from webhook_receiver import Receiver

from fabric_platform import AsyncFabricClient, FabricClient
from fabric_server.testing import LiveServer, TestDatabases, fast_settings

ROOT = Path(__file__).resolve().parents[1]
DIALECTS = ["sqlite", "postgresql"] if os.environ.get("FABRIC_TEST_DATABASE_URL") else ["sqlite"]
DOC_FILES = [
    "README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")),
    "sdk/README.md",
    "server/README.md",
]
DEFAULT_ORG = "00000000-0000-0000-0000-000000000010"
_FENCE = re.compile(r"^(\s*)```\s*([^\s`]*)")  # the language: the info string's first word
_MARKER = re.compile(r"^\s*<!--\s*snippet:(.*?)-->\s*$")
_SKIP = re.compile(r"^\s*skip\s*[\u2014\u2013-]+\s*(\S.*?)\s*$")  # an em dash, en dash or -


@dataclass(frozen=True)
class Snippet:
    file: str
    line: int  # of the opening fence
    index: int  # among the file's python blocks
    code: str
    skip: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def extract(file: str, text: str | None = None) -> list[Snippet]:
    """The ```python blocks of `file` (or of `text`, as if it were that file), in order, with
    their skip markers.

    Raises ValueError for a marker that is malformed or not right before a python block.
    """
    if text is None:
        text = (ROOT / file).read_text(encoding="utf-8")
    lines = text.splitlines()
    snippets: list[Snippet] = []
    marker: tuple[int, str] | None = None
    fence: tuple[int, str, str] | None = None  # (line, indent, language)
    body: list[str] = []
    for number, text in enumerate(lines, start=1):
        match = _FENCE.match(text)
        if fence is not None:
            if match and match.group(1) == fence[1] and text.strip() == "```":
                if fence[2] == "python":
                    skip = marker[1] if marker else None
                    code = "\n".join(line.removeprefix(fence[1]) for line in body)
                    snippets.append(Snippet(file, fence[0], len(snippets), code, skip))
                    marker = None
                fence, body = None, []
            else:
                body.append(text)
            continue
        if match:
            if marker and match.group(2) != "python":
                raise ValueError(f"{file}:{marker[0]}: the snippet marker is not on a python block")
            fence = (number, match.group(1), match.group(2))
            continue
        found = _MARKER.match(text)
        if found:
            skip = _SKIP.match(found.group(1))
            if not skip:
                raise ValueError(f"{file}:{number}: write `<!-- snippet: skip — <reason> -->`")
            marker = (number, skip.group(1))
        elif marker and text.strip():
            raise ValueError(f"{file}:{marker[0]}: the snippet marker is not right before a block")
    if marker:
        raise ValueError(f"{file}:{marker[0]}: the snippet marker is not before a block")
    return snippets


SNIPPETS = {file: extract(file) for file in DOC_FILES}


class DocRun:
    """One file's blocks against one server: the shared namespace and event loop."""

    def __init__(self, file: str, server: LiveServer, on_close: Callable[[], None]) -> None:
        self.file = file
        self.server = server
        self.namespace: dict[str, Any] = {"__name__": "__main__"}
        self.loop = asyncio.new_event_loop()
        self.clients: list[Any] = []
        self.done = 0  # blocks run (or skipped) so far
        self.failed: Snippet | None = None
        self._on_close = on_close

    def run_through(self, snippet: Snippet) -> None:
        """Run the blocks before `snippet` that have not run yet, then `snippet`."""
        for earlier in SNIPPETS[self.file][self.done : snippet.index + 1]:
            if self.failed is not None:
                pytest.fail(f"not run: the block at {self.failed.where} failed before it")
            self.done += 1
            if earlier.skip is None:
                try:
                    self._run(earlier)
                except BaseException:
                    self.failed = earlier
                    raise

    def _run(self, snippet: Snippet) -> None:
        self._provide(snippet)
        # Padded so that tracebacks show the line of the Markdown file.
        source = "\n" * snippet.line + snippet.code
        code = compile(source, str(ROOT / self.file), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        env = {"FABRIC_BASE_URL": self.server.base_url, **ENV.get(self.file, {})}
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("FABRIC_API_KEY", raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            if code.co_flags & inspect.CO_COROUTINE:
                self.loop.run_until_complete(eval(code, self.namespace))
            else:
                exec(code, self.namespace)
        # Clients are closed at the end, even those a later block rebinds the name of.
        for value in self.namespace.values():
            if isinstance(value, FabricClient | AsyncFabricClient) and not any(
                value is known for known in self.clients
            ):
                self.clients.append(value)

    def _provide(self, snippet: Snippet) -> None:
        """Make the fixtures the block reads and nothing in the namespace defines."""
        nodes = list(ast.walk(ast.parse(snippet.code)))
        loaded = {n.id for n in nodes if isinstance(n, ast.Name)}
        wanted = loaded - _bound(nodes) - set(self.namespace) - set(dir(builtins))
        for fixture in FIXTURES.get(self.file, []):
            if wanted & set(fixture.names):
                values = fixture.make(self)
                self.namespace.update(zip(fixture.names, values, strict=True))

    def client(self) -> FabricClient:
        """A dev-owner client for fixtures (closed with the run)."""
        client = FabricClient(base_url=self.server.base_url)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            if isinstance(client, AsyncFabricClient):
                self.loop.run_until_complete(client.close())
            else:
                client.close()
        self.loop.close()
        self._on_close()


def _bound(nodes: list[ast.AST]) -> set[str]:
    """The names a block binds itself (assigned, imported, defined, caught)."""
    names = set()
    for node in nodes:
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.ExceptHandler
        ):
            names.add(node.name or "")
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


# -- what the texts take from around them ------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    names: tuple[str, ...]
    make: Callable[[DocRun], tuple[Any, ...]]


def mailed(run: DocRun, to: str, pattern: str) -> re.Match[str]:
    """The first match of `pattern` in the newest mail to `to` that has one (dev outbox).

    Mailing endpoints answer first and mail right after: the outbox is polled a little."""
    deadline = time.monotonic() + 10
    while True:
        outbox = httpx.get(f"{run.server.base_url}/v1/dev/outbox", params={"to": to})
        for mail in outbox.json()["data"]:  # newest first
            match = re.search(pattern, mail["body"])
            if match:
                return match
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {to} matches {pattern}")
        time.sleep(0.02)


def reset_token(run: DocRun) -> tuple[str]:
    """The token of the reset link `forgot_password` mailed."""
    link = mailed(run, "user@example.com", r"reset-password\?token=([^\s&]+)")
    return (unquote(link.group(1)),)


def invited_member(run: DocRun) -> tuple[str]:
    """Sam, invited to `org` by an earlier block, signs up and accepts: Sam's principal id."""
    invitation = mailed(run, "sam@example.com", r"/v1/invitations/([^/\s]+)/accept").group(1)
    with FabricClient(base_url=run.server.base_url) as sam:
        sam.signup("sam@example.com", "password123")
        verify = mailed(run, "sam@example.com", r"/v1/auth/verify\?token=([^\s&]+)")
        sam.verify_email(unquote(verify.group(1)))
        membership = sam.accept_invitation(invitation)
    assert membership["organization_id"] == run.namespace["org"]["id"]
    return (membership["principal_id"],)


def webhook_request(run: DocRun) -> tuple[bytes, dict[str, str]]:
    """A real delivery signed with the `secret` of the webhook an earlier block made: the
    raw body and headers a receiver gets."""
    receiver = Receiver().start()
    fabric = run.client()
    try:
        hook = fabric.create_webhook(
            DEFAULT_ORG, url=receiver.url, events=["job.completed"], secret=run.namespace["secret"]
        )
        fabric.create_job(modality="text", input={"prompt": "for the receiver"})
        deadline = time.monotonic() + 20
        while not receiver.requests:
            assert time.monotonic() < deadline, "no delivery reached the receiver"
            time.sleep(0.02)
        fabric.delete_webhook(hook["id"])
    finally:
        receiver.stop()
    delivery = receiver.requests[0]
    return delivery.body, delivery.headers


def dev_client(run: DocRun) -> tuple[FabricClient]:
    return (run.client(),)


def async_client(run: DocRun) -> tuple[AsyncFabricClient]:
    client = AsyncFabricClient(base_url=run.server.base_url)
    run.clients.append(client)
    return (client,)


ORG_ID = Fixture(("org_id",), lambda run: (DEFAULT_ORG,))
FIXTURES: dict[str, list[Fixture]] = {
    "README.md": [
        ORG_ID,
        Fixture(("recovery_token",), reset_token),
        Fixture(("principal_id",), invited_member),
        Fixture(("raw_body", "request_headers"), webhook_request),
    ],
    "docs/providers.md": [
        ORG_ID,
        Fixture(("fabric",), dev_client),
        Fixture(("client",), async_client),
    ],
}
# Environment a file's blocks read, beyond FABRIC_BASE_URL.
ENV: dict[str, dict[str, str]] = {
    "docs/webhooks.md": {"FABRIC_WEBHOOK_SECRET": "whsec_docs_example"},
}


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def doc_runs(
    databases: TestDatabases, llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], DocRun]]:
    """A run per (dialect, file): its own database and server, closed after its last block
    (or at the end of the module, when tests were deselected)."""
    runs: dict[tuple[str, str], DocRun] = {}

    def get(dialect: str, file: str) -> DocRun:
        if (dialect, file) not in runs:
            url = databases.create(dialect)
            settings = fast_settings(
                url,
                tmp_path_factory.mktemp("docs"),
                openai_api_key="sk-test",
                openai_default_base_url=llm.openai_base_url,
                anthropic_api_key="ak-test",
                anthropic_base_url=llm.base_url,
            )
            server = LiveServer(settings).__enter__()

            def stop() -> None:
                server.__exit__(None, None, None)
                databases.drop(url)
                del runs[(dialect, file)]

            runs[(dialect, file)] = DocRun(file, server, stop)
        return runs[(dialect, file)]

    yield get
    for run in list(runs.values()):
        run.close()


CASES = [
    pytest.param(dialect, snippet, id=f"{dialect}-{snippet.where}")
    for dialect in DIALECTS
    for snippets in SNIPPETS.values()
    for snippet in snippets
]


@pytest.mark.parametrize(("dialect", "snippet"), CASES)
def test_snippet(dialect: str, snippet: Snippet, doc_runs: Callable[[str, str], DocRun]) -> None:
    if snippet.skip is not None:
        pytest.skip(f"{snippet.where}: {snippet.skip}")
    run = doc_runs(dialect, snippet.file)
    try:
        run.run_through(snippet)
    finally:
        if snippet.index == len(SNIPPETS[snippet.file]) - 1:
            run.close()


def test_every_file_with_snippets_is_covered() -> None:
    """A new docs page or package README is picked up: none is left out of DOC_FILES."""
    found = {
        str(p.relative_to(ROOT))
        for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *ROOT.glob("*/README.md")]
        if "```python" in p.read_text(encoding="utf-8")
    }
    assert found <= set(DOC_FILES)
    assert sum(len(s) for s in SNIPPETS.values()) > 0


def test_markers_skip_the_next_block_and_must_say_why() -> None:
    text = (
        "Intro\n\n```python\nx = 1\n```\n\n"
        "<!-- snippet: skip \u2014 needs a real OpenAI key -->\n"
        "```python\ncall_openai()\n```\n\n"
        "- item\n\n  ```python\n  y = x\n  ```\n\n"
        '```python title="z.py"\nz = 3\n```\n'
    )
    snippets = extract("page.md", text)
    assert [(s.line, s.code, s.skip) for s in snippets] == [
        (3, "x = 1", None),
        (8, "call_openai()", "needs a real OpenAI key"),
        (14, "y = x", None),
        (18, "z = 3", None),
    ]
    for bad in (
        "<!-- snippet: skip -->\n```python\nx\n```\n",  # no reason
        "<!-- snippet: skip - why -->\n```bash\nls\n```\n",  # not a python block
        "<!-- snippet: skip - why -->\nsome text\n```python\nx\n```\n",  # not right before
        "<!-- snippet: run -->\n```python\nx\n```\n",  # no such instruction
    ):
        with pytest.raises(ValueError, match=r"page\.md:1"):
            extract("page.md", bad)
