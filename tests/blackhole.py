"""A loopback TCP proxy that can turn into a blackhole: connections are accepted and bytes are read,
but nothing is forwarded or answered, and no RST is ever sent (RELIABILITY R12: the failure that
makes clients without timeouts hang, unlike a refused port)."""

from __future__ import annotations

import asyncio
import contextlib


class BlackholeProxy:
    """Forwards to `target` until `blackhole()`; `restore()` forwards new connections again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.holing = False
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def blackhole(self) -> None:
        """From now on every byte in either direction is swallowed; sockets stay open."""
        self.holing = True

    def restore(self) -> None:
        """Forward again. Connections opened during the blackhole stay dead (their client has
        timed out on them and will drop them); the upstream closes the held ones."""
        self.holing = False
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.holing:
            await self._swallow(reader)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self.holing:
                    continue  # swallowed: the peer waits for an answer that never comes
                writer.write(data)
                await writer.drain()
        writer.close()  # one side hung up: so does the other (unless held by the blackhole)

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass

    async def stop(self) -> None:
        self.restore()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
