"""The compose file's nginx configuration in front of two real instances.

``deploy/nginx.conf`` is served by this machine's nginx (Debian's; ``.ci/run`` installs it when
missing) with only what is Docker's replaced: Docker's DNS resolver and the ``server:8000``
service name become the two instances' ports, ``listen 80`` a free port. Everything else is the
file as shipped: websockets for ``/sync/`` and ``/graphql``, ``/metrics`` kept off the proxy,
requests moving to the other instance when one stops.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pycrdt import Map
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from approval.fieldwork.documents import inspection_doc_name
from tests.cluster_support import ROOT, Cluster, Instance, joint_acceptance, token_of
from tests.conftest import Clock, GraphQLClient
from tests.sync_support import SyncClient, free_port

TIMEOUT = 30


def proxy_conf(instances: list[Instance], port: int) -> str:
    """deploy/nginx.conf with Docker's names replaced by this machine's instances."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    conf, resolvers = re.subn(r"^resolver [^;]*;\n", "", conf, flags=re.MULTILINE)
    servers = "\n".join(
        f"    server 127.0.0.1:{i.port} max_fails=2 fail_timeout=10s;" for i in instances
    )
    conf, upstreams = re.subn(r"^\s*server server:8000 resolve[^;]*;", servers, conf, flags=re.M)
    conf, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    assert (resolvers, upstreams, listens) == (1, 2, 1), "deploy/nginx.conf changed its shape"
    return conf


def nginx_binary() -> str | None:
    """nginx on PATH, or Debian's (root's PATH has /usr/sbin, others' may not)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


@pytest.fixture
async def nginx(tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    """(the folder of a config to write, the port) for an nginx run by the test itself."""
    if nginx_binary() is None:
        message = "nginx is not installed: apt-get install nginx (.ci/run does)"
        if os.environ.get("REQUIRE_NGINX") == "1":
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path / "nginx"
    folder.mkdir()
    yield folder, free_port()


async def start_nginx(folder: Path, site: str, port: int) -> asyncio.subprocess.Process:
    (folder / "onewindow.conf").write_text(site, encoding="utf-8")
    (folder / "nginx.conf").write_text(
        f"""
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/onewindow.conf;
}}
""",
        encoding="utf-8",
    )
    binary = nginx_binary()
    assert binary is not None
    process = await asyncio.create_subprocess_exec(
        binary, "-p", str(folder), "-c", str(folder / "nginx.conf"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(TIMEOUT):
        while True:
            if process.returncode is not None:
                assert process.stderr is not None
                raise AssertionError(f"nginx exited: {(await process.stderr.read()).decode()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return process


async def test_websockets_and_requests_pass_the_proxy_to_either_instance(
    cluster: Cluster, nginx: tuple[Path, int], gql: GraphQLClient, clock: Clock
) -> None:
    inspection_id, username, _ = await joint_acceptance(gql, clock)
    token = await token_of(username, clock)
    watcher = await token_of("supervisor", clock)
    instances = await cluster.start(2)
    folder, port = nginx
    proxy = await start_nginx(folder, proxy_conf(instances, port), port)
    base = f"127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=10) as http:
            assert (await http.get("/metrics")).status_code == 404
            answer = await http.post("/graphql", json={"query": "{ __typename }"})
            assert answer.json() == {"data": {"__typename": "Query"}}

            # y-websocket through the proxy: tablets sync their document, all of them on one
            # instance (the hash of the document's path)
            doc_name = inspection_doc_name(inspection_id)
            tablets = [await SyncClient.open(f"ws://{base}", doc_name, token=token) for _ in "ab"]
            for tablet in tablets:
                await tablet.until(tablet.synced.is_set, "the first sync through the proxy")
                assert len(tablet.doc.get("departments", type=Map)) > 0
            connected = [await i.metric("onewindow_sync_connections_open") for i in instances]
            assert sorted(c or 0 for c in connected) == [0, 2], connected
            for tablet in tablets:
                await tablet.close()

            # graphql-transport-ws through the proxy
            async with connect(
                f"ws://{base}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
            ) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "connection_init",
                            "payload": {"Authorization": f"Bearer {watcher}"},
                        }
                    )
                )
                ack = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                assert ack["type"] == "connection_ack"

            # one instance stops: every request still finds the other
            await instances[0].stop(signal.SIGTERM)
            for _ in range(6):
                assert (await http.get("/readyz")).status_code == 200
            again = await SyncClient.open(
                f"ws://{base}", inspection_doc_name(inspection_id), token=token
            )
            await again.until(again.synced.is_set, "a sync through the proxy after the stop")
            await again.close()
    finally:
        proxy.send_signal(signal.SIGQUIT)
        await asyncio.wait_for(proxy.wait(), TIMEOUT)
