"""Traffic beyond the fan-out: captures read as a stream, UDP flows rewritten onto the sandbox, size mixes
and per-packet field variation. Pure code: the send paths that use it live above."""
