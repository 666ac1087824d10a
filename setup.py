"""Declares rawpacer's one optional C extension; all other metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rawpacer._checksum",
            sources=["rawpacer/_checksum.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
