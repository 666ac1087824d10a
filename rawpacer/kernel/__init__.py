"""Kernel interfaces Python's socket module lacks, through ctypes and mmap: the PACKET_MMAP TX ring's
and AF_XDP's set-up, bpf(2), socket buffer sizes, timestamps, counters. Each module mirrors one
kernel header or document; moving frames through the rings is the transmit engine's (rawpacer.engine)."""
