"""The dashboard listens on 127.0.0.1 when started without --server.address:
its own .streamlit/config.toml says so, not a flag a user may forget."""

from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the dashboard needs streamlit: pip install -e .[test]")

from dashboard_server import dashboard_server  # noqa: E402

LOOPBACK = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
LISTEN = "0A"


def listening_addresses(port):
    """The local addresses (hex, as /proc/net/tcp{,6} write them) that listen on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_dashboard_listens_on_loopback_only_by_its_own_config(tmp_path):
    with dashboard_server([], tmp_path / "streamlit.log") as (_, port):
        assert listening_addresses(port) == [LOOPBACK]
