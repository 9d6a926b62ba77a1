"""perffarm's lean WebSocket client against the `websockets` library's server and the relay.

Each test runs with both framings of the client: perffarm's own frame code, and the
`websockets` library's sans-I/O protocol under the same transport (`websockets-sansio`).
"""

from __future__ import annotations

import asyncio

import pytest

from perffarm.loadtest import wsclient
from perffarm.loadtest.lighthouse import Lighthouse
from tests.support import free_port


async def _server(handler, port: int):  # type: ignore[no-untyped-def]
    from websockets.asyncio.server import serve

    return await serve(handler, "127.0.0.1", port, compression=None)


FRAMINGS = pytest.mark.parametrize("framing", ["perffarm", "websockets"])


@FRAMINGS
def test_frames_of_every_size_fragments_and_pings_round_trip(framing: str) -> None:
    async def main() -> None:
        port = free_port()

        async def echo(ws) -> None:  # type: ignore[no-untyped-def]
            async for message in ws:
                if message == b"ping-me":
                    await ws.ping(b"hello")
                elif message == b"fragments":
                    await ws.send([b"ab", b"cd", b"ef"])  # one message in three frames
                else:
                    await ws.send(message)

        server = await _server(echo, port)
        got: list[bytes] = []
        closed = asyncio.Event()
        ws = await wsclient.connect(
            f"ws://127.0.0.1:{port}/x?y=1", got.append, closed.set, framing=framing
        )
        sizes = [0, 1, 125, 126, 65535, 65536, 200_000]
        for size in sizes:
            ws.send(bytes(range(256)) * (size // 256) + bytes(size % 256))
        ws.send(b"ping-me")
        ws.send(b"fragments")
        for _ in range(100):
            if len(got) == len(sizes) + 1:
                break
            await asyncio.sleep(0.05)
        assert [len(m) for m in got[: len(sizes)]] == sizes
        assert got[0 : len(sizes)][4] == bytes(range(256)) * 255 + bytes(255)
        assert got[-1] == b"abcdef"
        await ws.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


@FRAMINGS
def test_a_refused_handshake_is_an_error(framing: str) -> None:
    async def main() -> None:
        port = free_port()

        async def refuse(connection, request):  # type: ignore[no-untyped-def]
            return connection.respond(403, "no\n")

        from websockets.asyncio.server import serve

        server = await serve(lambda ws: None, "127.0.0.1", port, process_request=refuse)
        with pytest.raises(wsclient.HandshakeError, match="403"):
            await wsclient.connect(f"ws://127.0.0.1:{port}/", lambda m: None, framing=framing)
        server.close()
        await server.wait_closed()

    asyncio.run(main())


@FRAMINGS
def test_the_relay_sends_to_the_others_in_the_room_only(framing: str) -> None:
    async def main() -> None:
        port = free_port()
        relay = Lighthouse()
        server = await asyncio.get_running_loop().create_server(relay.protocol, "127.0.0.1", port)
        inbox: dict[str, list[bytes]] = {"a": [], "b": [], "c": [], "d": []}
        rooms = {"a": "r1", "b": "r1", "c": "r2"}
        peers = {
            name: await wsclient.connect(
                f"ws://127.0.0.1:{port}/?layer=l&room={room}", inbox[name].append, framing=framing
            )
            for name, room in rooms.items()
        }
        # A client of the `websockets` library joins the same room: the relay speaks the
        # protocol, not only perffarm's client.
        from websockets.asyncio.client import connect

        other = await connect(f"ws://127.0.0.1:{port}/?layer=l&room=r1", compression=None)
        await asyncio.sleep(0.1)
        peers["a"].send(b"from-a")
        peers["c"].send(b"from-c")
        await other.send(b"x" * 70_000)
        assert await asyncio.wait_for(other.recv(), 5) == b"from-a"
        await asyncio.sleep(0.3)
        assert inbox == {"a": [b"x" * 70_000], "b": [b"from-a", b"x" * 70_000], "c": [], "d": []}
        assert relay.received == 3 and relay.relayed == 4 and relay.connections == 4
        await other.close()
        for ws in peers.values():
            await ws.close()
        await asyncio.sleep(0.1)
        assert relay.connections == 0
        server.close()
        await server.wait_closed()

    asyncio.run(main())


@FRAMINGS
def test_the_relay_writes_frames_that_arrive_together_at_once_and_in_order(framing: str) -> None:
    async def main() -> None:
        port = free_port()
        relay = Lighthouse()
        server = await asyncio.get_running_loop().create_server(relay.protocol, "127.0.0.1", port)
        inbox: list[bytes] = []
        url = f"ws://127.0.0.1:{port}/?layer=l&room=r"
        sender = await wsclient.connect(url, lambda m: None)
        received: list[list[bytes]] = []
        receiver = await wsclient.connect(
            url, inbox.append, on_messages=received.append, framing=framing
        )
        await asyncio.sleep(0.1)
        burst = [b"message-%03d" % i for i in range(100)]
        # One write of 100 frames: the relay reads them in one pass.
        frames = b"".join(wsclient.frame(wsclient.OP_BINARY, m, masked=True) for m in burst)
        sender._protocol.transport.write(frames)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if sum(map(len, received)) == len(burst):
                break
        assert [m for batch in received for m in batch] == burst and not inbox
        assert relay.relayed == 100 and relay.writes < 10
        assert len(received) < 50  # messages of one read reach the peer together
        for ws in (sender, receiver):
            await ws.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
