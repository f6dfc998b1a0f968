"""A push service speaking Mozilla's WebSocket protocol to a real Firefox, on loopback.

Firefox connects to the WebSocket side (dom.push.serverURL), registers channels and receives
notifications; pushdesk POSTs to the HTTP side, which checks VAPID, headers and sizes as
autopush does and forwards the still-encrypted body. Firefox decrypts it itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.support.fake_push import LoopbackServer, check_push_headers, check_vapid, push_error


@dataclass
class Channel:
    channel_id: str
    key: str | None  # the applicationServerKey Firefox registered with (v2 endpoints bind it)
    gone: bool = False
    delivered: list[dict[str, Any]] = field(default_factory=list)


class MozillaPushServer(LoopbackServer):
    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/", self.websocket)
        self.app.router.add_post("/wpush/{channel}", self.push)
        self.channels: dict[str, Channel] = {}
        self.log: list[dict[str, Any]] = []  # every message in both directions, for tests
        self.acks: list[dict[str, Any]] = []
        self.answers: list[tuple[str, int]] = []  # (channel, HTTP status) of every push
        self.uaid = uuid.uuid4().hex
        self._socket: web.WebSocketResponse | None = None

    @property
    def websocket_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/"

    # -- Firefox's side ------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("push-notification",), heartbeat=None)
        await ws.prepare(request)
        self._socket = ws
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.log.append({"from": "firefox", **data})
            reply = self._answer(data)
            if reply is not None:
                self.log.append({"to": "firefox", **reply})
                await ws.send_json(reply)
        return ws

    def _answer(self, data: dict[str, Any]) -> dict[str, Any] | None:
        kind = data.get("messageType")
        if kind == "hello":
            return {
                "messageType": "hello",
                "uaid": data.get("uaid") or self.uaid,
                "status": 200,
                "use_webpush": True,
                "broadcasts": {},
            }
        if kind == "register":
            channel_id = data["channelID"]
            key = (data.get("key") or "").rstrip("=") or None
            self.channels[channel_id] = Channel(channel_id, key)
            return {
                "messageType": "register",
                "channelID": channel_id,
                "status": 200,
                "pushEndpoint": f"{self.base}/wpush/{channel_id}",
            }
        if kind == "unregister":
            channel = self.channels.get(data["channelID"])
            if channel:
                channel.gone = True
            return {"messageType": "unregister", "channelID": data["channelID"], "status": 200}
        if kind == "ack":
            self.acks += data.get("updates", [])
            return None
        if not kind:  # ping
            return {}
        return None

    # -- pushdesk's side -----------------------------------------------------------------
    async def push(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        response = await self._push(request, channel_id)
        self.answers.append((channel_id, response.status))
        return response

    async def _push(self, request: web.Request, channel_id: str) -> web.Response:
        channel = self.channels.get(channel_id)
        if channel is None:
            return push_error(404, 102, "no such subscription")
        if channel.gone:
            return push_error(410, 106, "subscription is no longer valid")
        problem = check_push_headers(request)
        if problem:
            return push_error(400, *problem)
        vapid = check_vapid(request, self.base, channel.key)
        if vapid.status:
            return push_error(401, 109, vapid.message)  # autopush answers every VAPID error 401
        body = await request.read()
        if len(body) > 4096:
            return push_error(413, 104, "payload too large")
        if self._socket is None or self._socket.closed:
            return push_error(503, 202, "the browser is not connected")
        version = uuid.uuid4().hex
        note = {
            "messageType": "notification",
            "channelID": channel_id,
            "version": version,
            "data": base64.urlsafe_b64encode(body).decode().rstrip("="),
            "headers": {"encoding": "aes128gcm"},
        }
        channel.delivered.append({"version": version, "headers": dict(request.headers)})
        self.log.append(
            {
                "to": "firefox",
                "messageType": "notification",
                "channelID": channel_id,
                "version": version,
            }
        )
        await self._socket.send_json(note)
        return web.Response(status=201, headers={"Location": f"{self.base}/m/{version}"})

    async def acked(self, version_count: int, seconds: float = 15.0) -> list[dict[str, Any]]:
        for _ in range(int(seconds / 0.05)):
            if len(self.acks) >= version_count:
                break
            await asyncio.sleep(0.05)
        return self.acks
