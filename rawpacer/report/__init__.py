"""Turning a benchmark Report into a rich table, JSON, a PNG chart, or Go benchmark lines."""
