"""A small async client for Firefox's built-in Marionette protocol (no geckodriver needed).

Wire format: `<length>:<json>`; commands are `[0, id, name, params]`, answers `[1, id, error,
result]`. The first message from Firefox is a handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class MarionetteError(Exception):
    pass


class Marionette:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self._next_id = 0

    @classmethod
    async def connect(cls, port: int, seconds: float = 60.0) -> Marionette:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        client = cls(reader, writer)
        hello = await client._read()
        if hello.get("marionetteProtocol") != 3:
            raise MarionetteError(f"unexpected handshake {hello}")
        return client

    async def _read(self) -> Any:
        length = await self.reader.readuntil(b":")
        data = await self.reader.readexactly(int(length[:-1]))
        return json.loads(data)

    async def send(self, name: str, params: dict[str, Any] | None = None) -> Any:
        self._next_id += 1
        message = json.dumps([0, self._next_id, name, params or {}]).encode()
        self.writer.write(str(len(message)).encode() + b":" + message)
        await self.writer.drain()
        while True:
            kind, msg_id, error, result = await self._read()
            if kind == 1 and msg_id == self._next_id:
                break
        if error:
            raise MarionetteError(f"{name}: {error.get('error')}: {error.get('message')}")
        return result

    async def new_session(self) -> dict[str, Any]:
        """Start a session; returns Firefox's capabilities (browserVersion and so on)."""
        result = await self.send("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {}}})
        return result["capabilities"]

    async def navigate(self, url: str) -> None:
        await self.send("WebDriver:Navigate", {"url": url})

    async def script(self, script: str, *args: Any) -> Any:
        """Run a function body in the current context; a returned promise is awaited."""
        result = await self.send("WebDriver:ExecuteScript", {"script": script, "args": list(args)})
        return result.get("value")

    async def context(self, which: str) -> None:
        await self.send("Marionette:SetContext", {"value": which})

    async def click(self, selector: str) -> None:
        found = await self.send(
            "WebDriver:FindElement", {"using": "css selector", "value": selector}
        )
        await self.send("WebDriver:ElementClick", {"id": found["value"][ELEMENT]})

    async def wait_for(self, script: str, seconds: float = 15.0, *args: Any) -> Any:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            value = await self.script(script, *args)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise MarionetteError(f"timed out waiting for: {script[:120]}")
            await asyncio.sleep(0.1)

    async def quit(self) -> None:
        with contextlib.suppress(MarionetteError, OSError, asyncio.IncompleteReadError):
            await self.send("Marionette:Quit", {"flags": ["eForceQuit"]})
        self.writer.close()
