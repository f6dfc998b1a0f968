"""A minimal push-service sink for `pushdesk bench` when nginx is not installed.

HTTP/1.1 with keep-alive on raw asyncio protocols: read a request and its body, answer 201. The
time of the first request goes to a file. Run as `python -m pushdesk.bench.sink PORT FILE`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import cast

ANSWER = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


class SinkProtocol(asyncio.Protocol):
    first_file: Path
    seen_first = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence a cast, not a check
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            if not SinkProtocol.seen_first:
                SinkProtocol.seen_first = True
                SinkProtocol.first_file.write_text(f"{time.time():.6f}\n")
            self.transport.write(ANSWER)


async def main(port: int, first_file: Path) -> None:
    SinkProtocol.first_file = first_file
    server = await asyncio.get_running_loop().create_server(SinkProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
