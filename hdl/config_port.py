"""Configuration images: one word format and one loader for every configurable unit.

An image is a header word followed by body words. The header holds a unit's magic
number (bits 31..16), the format version (15..8) and the number of body words
(7..0). The body is the unit's configuration register, an Amaranth layout, least
significant word first. :func:`encode_image` and :func:`decode_image` are the
Python side; :class:`ConfigLoader` is the hardware side, so both read the same
layout and cannot disagree on a bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amaranth import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["body_words", "header_word", "encode_image", "decode_image", "ConfigLoader"]


def body_words(layout: data.Layout) -> int:
    """Body words of an image for ``layout``."""
    return (data.Layout.cast(layout).size + 31) // 32


def header_word(magic: int, version: int, words: int) -> int:
    if not 0 <= words < 256:
        raise ValueError(f"a configuration body has at most 255 words, this one has {words}")
    return (magic << 16) | (version << 8) | words


def encode_image(layout: data.Layout, fields: Mapping, magic: int, version: int) -> list[int]:
    """Header plus body words of the register value ``layout.const(fields)``."""
    value = data.Layout.cast(layout).const(fields).as_value().value
    count = body_words(layout)
    return [header_word(magic, version, count), *[(value >> (32 * k)) & 0xFFFFFFFF for k in range(count)]]


def decode_image(words: Sequence[int], layout: data.Layout, magic: int, version: int, unit: str,
                 error: type[Exception] = ValueError) -> data.Const:
    """The register value of an image as a ``data.Const`` view; ``error`` for a foreign image."""
    layout = data.Layout.cast(layout)
    count = body_words(layout)
    if not words:
        raise error(f"empty {unit} configuration image")
    header = int(words[0])
    if header >> 16 != magic:
        raise error(f"not a {unit} configuration (header {header:#010x}, magic {magic:#06x})")
    if (header >> 8) & 0xFF != version:
        raise error(f"configuration version {(header >> 8) & 0xFF}, this {unit} reads {version}")
    if header & 0xFF != count or len(words) - 1 != count:
        raise error(f"configuration has {len(words) - 1} body words (header says {header & 0xFF}); "
                    f"this {unit} takes {count}")
    value = sum(int(w) << (32 * k) for k, w in enumerate(words[1:]))
    return data.Const(layout, value & ((1 << layout.size) - 1))


class ConfigLoader(wiring.Component):
    """Loads a configuration register from a stream of image words.

    A header with the wrong magic, version or length is refused: ``error`` rises,
    ``configured`` stays low, and the following words are checked as headers again
    (so a corrupted image never configures the unit). A good header starts a load;
    the register changes only when the last body word arrives. With ``check``, a
    complete body is refused the same way when ``check`` rejects it: ``error`` rises,
    ``configured`` stays low and the register keeps its old value.

    Parameters
    ----------
    layout : data.Layout
        The configuration register.
    magic, version : int
        What a header must carry.
    check : callable, optional
        ``check(view) -> Value``: high when the register value ``view`` (a ``data.View`` of
        ``layout``: the image's body) is one the unit can run. ``None`` (the default) takes
        every body.

    Attributes
    ----------
    words : In(stream.Signature(32))
        Image words; taken only while ``accept`` is high.
    accept : In(1)
        The unit may be reconfigured now (it is idle).
    clear : In(1)
        Abandon a partly loaded image and deconfigure (``configured``, ``loading`` and
        ``error`` fall); honoured only while ``accept`` is high. The launch controller
        uses it so that a kernel image refused by its CRC leaves no unit configured.
    config : Out(layout)
        The loaded configuration.
    loaded : Out(1)
        High for one cycle after an image completed.
    configured : Out(1)
        A complete, valid image is loaded (low from a header until its last word).
    error : Out(1)
        The last header was refused, or the last body (``check``).
    loading : Out(1)
        A good header was taken and its body words are arriving.
    """

    def __init__(self, layout: data.Layout, magic: int, version: int, check=None):
        if check is not None and not callable(check):
            raise TypeError(f"check must be a callable (view -> Value) or None, got {check!r}")
        self._layout = data.Layout.cast(layout)
        self._magic, self._version = magic, version
        self._check = check
        self._words = body_words(self._layout)
        header_word(magic, version, self._words)  # checks the body fits the header's length field
        super().__init__({
            "words": In(stream.Signature(32)),
            "accept": In(1),
            "clear": In(1),
            "config": Out(self._layout),
            "loaded": Out(1),
            "configured": Out(1),
            "error": Out(1),
            "loading": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        count = self._words
        shadow = Signal(32 * count)
        index = Signal(range(count + 1))
        loading = self.loading
        word = self.words.payload
        shifted = Cat(shadow[32:], word)  # words arrive least significant first
        m.d.comb += self.words.ready.eq(self.accept)
        m.d.sync += self.loaded.eq(0)
        with m.If(self.words.valid & self.words.ready):
            with m.If(~loading):
                ok = (word[16:32] == self._magic) & (word[8:16] == self._version) & (word[0:8] == count)
                m.d.sync += [self.configured.eq(0), loading.eq(ok), index.eq(0), self.error.eq(~ok)]
            with m.Else():
                m.d.sync += [shadow.eq(shifted), index.eq(index + 1)]
                with m.If(index == count - 1):
                    body = shifted[:self._layout.size]
                    if self._check is None:
                        m.d.sync += [self.config.eq(body), loading.eq(0), self.configured.eq(1),
                                     self.loaded.eq(1)]
                    else:
                        runnable = Signal()
                        m.d.comb += runnable.eq(self._check(self._layout(body)))
                        with m.If(runnable):
                            m.d.sync += [self.config.eq(body), loading.eq(0), self.configured.eq(1),
                                         self.loaded.eq(1)]
                        with m.Else():  # refused like a bad header: the register keeps its value
                            m.d.sync += [loading.eq(0), self.error.eq(1)]
        with m.If(self.clear & self.accept):
            m.d.sync += [loading.eq(0), self.configured.eq(0), self.error.eq(0), self.loaded.eq(0)]
        return m
