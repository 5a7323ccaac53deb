"""Stock Yjs clients edit through nginx (the shipped `ops/deploy/nginx.conf`) in front of two
`collab serve` nodes: WebSocket upgrade works, sockets spread over both nodes (no stickiness
needed), nothing acknowledged or seen is lost, everyone converges, and REST and /readyz pass too.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient

from tests.app_nodes import node_env
from tests.cluster_support import balanced_nodes, gauge, open_sockets, scrape
from tests.edit_load import EditLoad
from tests.realtime_support import document_with

pytestmark = pytest.mark.timeout(150)


async def test_yjs_clients_edit_through_nginx_across_two_nodes(
    ctx, stack, settings, tmp_path
) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    env = node_env(stack.postgres.url(), stack.nats.url, stack.redis.url, settings.jwt_secret)
    async with balanced_nodes(env, 2, tmp_path) as (nodes, balancer):
        client = tornado.httpclient.AsyncHTTPClient()
        ready = await client.fetch(f"{balancer.http_url}/readyz")
        assert json.loads(ready.body)["status"] == "ready"
        doc = await client.fetch(
            f"{balancer.http_url}/api/v1/documents/{setup.doc_id}/",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert json.loads(doc.body)["id"] == setup.doc_id

        async with EditLoad(balancer.port, setup.doc_id, token) as load:
            load.start_editing()
            await load.wait_progress(acks=20, seen=40)
            # least_conn over 4 sockets (2 editors, observer, JSON editor): both nodes serve.
            sockets = await asyncio.gather(*(open_sockets(n) for n in nodes))
            assert all(count >= 1 for count in sockets), sockets
            # The leak-watch gauges bench/soak.py samples: one room per node, some live tasks.
            for text in await asyncio.gather(*(scrape(n) for n in nodes)):
                assert gauge(text, "collab_open_rooms") == 1
                assert gauge(text, "collab_asyncio_tasks") >= 1
            result = await load.verify()
    assert result["acked"] >= 20 and not result["refusals"], result
