"""Readers on other hosts: ``rawpacer agent --stdio`` started over SSH, driven as a ``ReaderSet``.

``spec`` parses ``--remote``; ``wire`` is the message table both sides check; ``channel`` runs
OpenSSH's client; ``agent`` is the receiving side; ``readerset`` the controller's
``RemoteReaderSet``; ``clock`` the NTP-style offset and one-way latency; ``fan`` the writer that
sends each host its share. See docs/two-hosts.md.
"""

from rawpacer.remote.clock import Latency, Offset
from rawpacer.remote.readerset import RemoteReaderSet
from rawpacer.remote.spec import Host, parse_hosts, shares

__all__ = ["Host", "Latency", "Offset", "RemoteReaderSet", "parse_hosts", "shares"]
