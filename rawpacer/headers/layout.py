"""Declarative header tables: a protocol is a ``Layout`` of ``Field`` rows (name, offset, width, default).

In the spirit of dpkt's ``__hdr__`` and trafgen's ``proto_field[]``: each row names one field, the
byte offset and byte width of the big-endian word that holds it and its default; a field narrower
than its word (IPv4's version nibble, its DF bit) also gives its ``bits`` and ``shift`` inside that
word, as trafgen's ``.shift``/``.mask`` do. Everything else (the struct format, the header length,
each field's largest value and mask) is derived from the rows, and ``Layout`` checks at import that
the words tile the header exactly and that the bits of every word are each claimed by one field.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rawpacer.headers.checksum import BytesLike

_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class Field(NamedTuple):
    """One row of a header table. ``bits`` 0 means the field is its whole word."""

    name: str
    offset: int
    width: int
    default: int = 0
    bits: int = 0
    shift: int = 0

    @property
    def size(self) -> int:
        """The field's width in bits."""
        return self.bits or self.width * 8

    @property
    def max(self) -> int:
        """The largest value the field holds."""
        return (1 << self.size) - 1

    @property
    def mask(self) -> int:
        """The field's bits within its word (e.g. 0x4000 for IPv4's DF)."""
        return self.max << self.shift

    def place(self, value: int) -> int:
        """``value`` moved to its bits within the word (no range check: callers pass checked values)."""
        return value << self.shift

    def raw(self, data: BytesLike, base: int = 0) -> bytes:
        """The bytes of the field's word (for address fields: the packed address)."""
        return bytes(data[base + self.offset : base + self.offset + self.width])


class Layout:
    """One protocol header: its field table and what derives from it (size, struct, pack, unpack)."""

    def __init__(self, name: str, *fields: Field) -> None:
        self.name = name
        self.fields = {f.name: f for f in fields}
        if len(self.fields) != len(fields):
            raise ValueError(f"{name}: duplicate field names")
        words: dict[int, list[Field]] = {}
        for f in fields:
            words.setdefault(f.offset, []).append(f)
        self._words = [words[offset] for offset in sorted(words)]
        self.size = self._check_tiling(name)
        self.struct = struct.Struct("!" + "".join(self._format(w[0].width) for w in self._words))
        """One struct format for the whole header, one item per word, derived from the table."""

    def _check_tiling(self, name: str) -> int:
        end = 0
        for word in self._words:
            first = word[0]
            if first.offset != end or any(f.width != first.width for f in word):
                raise ValueError(f"{name}: word at offset {first.offset} does not follow byte {end} cleanly")
            claimed = 0
            for f in word:
                if f.shift + f.size > first.width * 8 or claimed & f.mask:
                    raise ValueError(f"{name}: field {f.name} overlaps its word or another field")
                claimed |= f.mask
            if claimed != (1 << first.width * 8) - 1:
                raise ValueError(
                    f"{name}: bits 0x{~claimed & ((1 << first.width * 8) - 1):x} of word {first.offset} unnamed"
                )
            end += first.width
        return end

    @staticmethod
    def _format(width: int) -> str:
        return _INT_FORMATS.get(width, f"{width}s")

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def offset(self, name: str) -> int:
        """Byte offset of the word holding field ``name``."""
        return self.fields[name].offset

    def _word_args(self, values: dict[str, int]) -> list[int | bytes]:
        unknown = set(values) - set(self.fields)
        if unknown:
            raise ValueError(f"{self.name} has no field {min(unknown)!r}")
        args: list[int | bytes] = []
        for word in self._words:
            total = 0
            for f in word:
                value = values.get(f.name, f.default)
                if not 0 <= value <= f.max:
                    raise ValueError(f"{self.name} {f.name} {value} is out of range 0-{f.max}")
                total |= value << f.shift
            width = word[0].width
            args.append(total if width in _INT_FORMATS else total.to_bytes(width, "big"))
        return args

    def pack(self, **values: int) -> bytes:
        """The header with these field values and every other field at its default."""
        return self.struct.pack(*self._word_args(values))

    def packer(self, varying: Sequence[str], **fixed: int) -> Callable[..., bytes]:
        """A fast ``pack`` for headers that differ only in the words holding the ``varying`` fields.

        Each call passes one value per varying word, in that order, as the whole word (compose a
        word of several fields with ``Field.place``), unchecked, as it is for hot paths. The varying
        words come in table order and no field of theirs is in ``fixed``; every other field is
        packed once, here.
        """
        words = [self._word_of(name) for name in varying]
        shared = [name for name in fixed if self._word_of(name) in words]
        if shared or words != sorted(set(words)):
            raise ValueError(f"{self.name}: varying words {list(varying)} out of order, repeated or sharing {shared}")
        header = self.pack(**fixed, **{f.name: 0 for i in words for f in self._words[i]})
        fmt, args, at = ["!"], [], 0
        for i in words:
            first = self._words[i][0]
            fmt += [f"{first.offset - at}s", _INT_FORMATS[first.width]]
            args += [header[at : first.offset], 0]
            at = first.offset + first.width
        fmt.append(f"{self.size - at}s")
        args.append(header[at:])
        pack = struct.Struct("".join(fmt)).pack

        def packed(*values: int) -> bytes:
            filled = args.copy()
            filled[1::2] = values
            return pack(*filled)

        return packed

    def _word_of(self, name: str) -> int:
        field = self.fields[name]
        return next(i for i, word in enumerate(self._words) if word[0].offset == field.offset)

    def unpack_from(self, data: BytesLike, base: int = 0) -> dict[str, int]:
        """Every field's value in the header at ``base`` of ``data`` (byte strings as big-endian ints).

        ``struct.error`` when fewer than ``size`` bytes are there: callers check the length first.
        """
        out: dict[str, int] = {}
        for word, raw in zip(self._words, self.struct.unpack_from(data, base)):
            value = raw if isinstance(raw, int) else int.from_bytes(raw, "big")
            for f in word:
                out[f.name] = (value >> f.shift) & f.max
        return out
