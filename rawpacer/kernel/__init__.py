"""Kernel interfaces Python's socket module lacks, through ctypes and mmap: sendmmsg(2), the
PACKET_MMAP TX ring, socket buffer sizes. Each module mirrors one kernel header or document."""
