"""Formal harness for the tile's launch controller: an image with a bad CRC configures nothing.

The launch controller (:class:`hdl.launch.LaunchController`) is checked with a few
configuration addresses (some without an endpoint). The solver plays the host — any
command words and any image words, by the stream rules — and, in the controller-only
harness, the endpoints (``ready`` and ``configured`` free).

The harness frames the host stream itself (commands; ``LOAD n`` and its ``n`` words,
split into records ``(address << 16) | count``, ``count`` words, CRC; ``ARGS n`` and its
words) and computes each record's CRC-32 with :func:`hdl.network.crc.crc_update_value`
— the same XOR network as the hardware, but the harness's own register, compared with
``zlib.crc32`` by ``tests/hdl/network/test_network_pysim.py``. A record whose CRC word differs from
the harness's value makes the image *bad*.

Asserted, from the bad CRC word until the host's next ``LOAD`` (ARGS and EXEC in between
included): the controller never reports ``LOADED`` and no endpoint is offered any word — so
the held last word of every record (an endpoint's commit) never leaves. Before that, while
an image arrives, an endpoint is offered only a record's body word that is not its last,
the one the host is sending, at the record's address.

With the ``abort`` check, asserted from the cycle after the host's ``ABORT`` is taken until its
next ``LOAD``: no endpoint is offered a word and no argument or start token is offered; with
``units``, from the cycle after that no unit is configured; and once the controller has reported
``ABORTED`` it reports neither ``LOADED`` nor ``RUNNING`` (nothing runs: ``EXEC`` is refused).

With ``units=True`` the endpoints are :class:`hdl.config_port.ConfigLoader` s (a one-word
register each) and the solver decides, at each ``LOAD``, whether that image is *doomed*:
its first record's CRC word is then assumed wrong. Asserted: while a doomed image is
loading, and until the next ``LOAD``, no unit is configured. With ``record_contract``
the host is assumed to size every record like the endpoint's image (header + one word).
"""

from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Signal
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import data

from ..config_port import ConfigLoader
from ..launch import Command, LaunchController, LaunchError, LaunchState
from ..network.crc import CRC_INIT, crc_result_value, crc_update_value
from ..network.graph import ARGUMENTS
from .streams import free, reset_at_start, stream_rules

__all__ = ["LaunchCrcHarness", "UNIT_MAGIC", "UNIT_VERSION"]

#: Magic number and version of the endpoints' one-word images in the ``units`` harness (small, so
#: that their header fits the bounded image words).
UNIT_MAGIC, UNIT_VERSION = 0x0001, 0

_ADDRESS, _BODY, _CRC = range(3)


class LaunchCrcHarness(Elaboratable):
    """A bad CRC configures nothing (see the module docstring).

    Parameters
    ----------
    present : sequence of bool
        Configuration addresses and whether an endpoint is built there.
    units : bool
        Attach a configuration loader to every endpoint and check that none is configured
        while a doomed image arrives.
    record_contract : bool
        (``units`` only) Assume every record's count is the endpoints' image length.
    max_words : int or None
        Bound the ``LOAD`` operand (image length) the host sends, to keep the solver fast.
    factory : callable
        Builds the controller from ``present`` (a mutant in the tests).
    """

    def __init__(self, present=(True, False, True), *, units: bool = False, record_contract: bool = False,
                 max_words: int | None = None, word_mask: int | None = None, factory=None,
                 checks=("crc", "pass")):
        self.word_mask = word_mask
        self.checks = checks
        self.present = list(present)
        self.units = units
        self.record_contract = record_contract
        self.max_words = max_words
        self.factory = factory or LaunchController

    def elaborate(self, platform):
        m = Module()
        n = len(self.present)
        dut = m.submodules.dut = self.factory(self.present)
        started = reset_at_start(m)
        host = dut.host
        free(m, host.valid, host.payload, dut.done.valid, dut.done.payload)
        stream_rules(m, host, started, check=Assume, label="host")
        for k in range(ARGUMENTS):
            free(m, dut.arg[k].ready)
        free(m, dut.start.ready)
        if hasattr(dut, "busy"):
            # no unit is busy: ``busy`` only holds a run in RUN after its last done token, which
            # delays the next command but changes no configuration (a smaller problem)
            m.d.comb += dut.busy.eq(0)

        loaders = []
        if self.units:
            layout = data.StructLayout({"value": 32})
            for k in range(n):
                ld = ConfigLoader(layout, UNIT_MAGIC, UNIT_VERSION)
                m.submodules[f"unit{k}"] = ld
                ep = dut.ep_cfg[k]
                m.d.comb += [ld.words.valid.eq(ep.valid), ld.words.payload.eq(ep.payload),
                             ep.ready.eq(ld.words.ready), ld.accept.eq(1), ld.clear.eq(dut.ep_clear)]
                loaders.append(ld)
            m.d.comb += dut.ep_configured.eq(Cat(ld.configured for ld in loaders))
        else:
            free(m, dut.ep_configured, *[ep.ready for ep in dut.ep_cfg])

        # ---- the harness's framing of the host stream
        word = host.payload
        take = host.valid & host.ready
        remaining = Signal(24)          # words of the current image still to come
        args_left = Signal(range(ARGUMENTS + 1))
        pos = Signal(range(3))
        rec_addr = Signal(16)
        rec_left = Signal(16)
        crc = Signal(32)
        bad = Signal()                  # a CRC word of this image was wrong
        aborted = Signal()              # an ABORT was taken and no LOAD since
        aborted_for = Signal(2)         # cycles since that ABORT (saturating)
        abort_done = Signal()           # ... and the controller has reported ABORTED since
        abort_ran = Signal()            # ... and it was taken while RUNNING (for the cover)
        doomed = Signal()               # (units) the solver chose this image to carry a bad CRC
        first_record = Signal()
        op, operand = word[24:32], word[0:24]
        command = Signal()
        m.d.comb += command.eq((args_left == 0) & (remaining == 0))
        correct = Signal(32)
        m.d.comb += correct.eq(crc_result_value(crc))
        if self.max_words is not None:
            m.d.comb += Assume(~(host.valid & command & (op == Command.LOAD)) | (operand <= self.max_words),
                               "image_size_bounded")
        with m.If(take):
            with m.If(args_left != 0):
                m.d.sync += args_left.eq(args_left - 1)
            with m.Elif(remaining == 0):
                with m.If(op == Command.ABORT):
                    m.d.sync += [aborted.eq(1), aborted_for.eq(0), abort_done.eq(0),
                                 abort_ran.eq(dut.state == LaunchState.RUNNING)]
                with m.If(op == Command.LOAD):
                    choice = AnySeq(1)
                    m.d.sync += [remaining.eq(operand), pos.eq(_ADDRESS), bad.eq(0), first_record.eq(1),
                                 doomed.eq(choice if self.units else 0), aborted.eq(0), abort_done.eq(0)]
                with m.Else():
                    # a bad image stays bad until the next LOAD: ARGS and EXEC configure nothing either
                    with m.If((op == Command.ARGS) & (operand >= 1) & (operand <= ARGUMENTS)):
                        m.d.sync += args_left.eq(operand)
            with m.Else():
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(pos == _ADDRESS):
                    m.d.sync += [rec_addr.eq(word[16:32]), rec_left.eq(word[0:16]),
                                 crc.eq(crc_update_value(Const(CRC_INIT, 32), word)),
                                 pos.eq(_BODY)]
                    with m.If(word[0:16] == 0):
                        m.d.sync += pos.eq(_CRC)
                with m.Elif(pos == _BODY):
                    m.d.sync += [crc.eq(crc_update_value(crc, word)), rec_left.eq(rec_left - 1)]
                    with m.If(rec_left == 1):
                        m.d.sync += pos.eq(_CRC)
                with m.Else():
                    m.d.sync += [pos.eq(_ADDRESS), first_record.eq(0)]
                    with m.If(word != correct):
                        m.d.sync += bad.eq(1)

        with m.If(aborted & (aborted_for != 3)):
            m.d.sync += aborted_for.eq(aborted_for + 1)
        with m.If(aborted & (dut.state == LaunchState.ABORTED) & ~(take & command & (op == Command.LOAD))):
            m.d.sync += abort_done.eq(1)
        in_image = Signal()
        m.d.comb += in_image.eq((remaining != 0) & (args_left == 0))
        if self.word_mask is not None:
            # image words (not the CRC words) vary only in the bits of word_mask
            m.d.comb += Assume(~(host.valid & in_image & (pos != _CRC)) | ((word & ~self.word_mask) == 0),
                               "image_words_within_mask")
        if self.units:
            # a doomed image's first record carries a wrong CRC
            crc_word_of_doomed = host.valid & in_image & doomed & first_record & (pos == _CRC)
            m.d.comb += Assume(~crc_word_of_doomed | (word != correct),
                               "doomed_image_has_a_bad_crc")
            if self.record_contract:
                m.d.comb += Assume(~(host.valid & in_image & (pos == _ADDRESS)) | (word[0:16] == 2),
                                   "record_sized_like_the_endpoint_image")

        # ---- properties
        offered = Signal(n)
        m.d.comb += offered.eq(Cat(ep.valid for ep in dut.ep_cfg))
        with m.If(started):
            with m.If(bad & ("crc" in self.checks)):
                m.d.comb += [Assert(dut.state != LaunchState.LOADED, "bad_crc_never_loaded"),
                             Assert(offered == 0, "bad_crc_nothing_committed")]
            with m.If(in_image & ("pass" in self.checks)):
                pass_through = host.valid & (pos == _BODY) & (rec_left > 1)
                for k in range(n):
                    ep = dut.ep_cfg[k]
                    with m.If(ep.valid):
                        m.d.comb += [Assert(pass_through & (rec_addr == k),
                                            f"ep{k}_only_non_final_body_words"),
                                     Assert(ep.payload == word, f"ep{k}_gets_the_host_word")]
            if self.units:
                with m.If(doomed):
                    m.d.comb += Assert(Cat(ld.configured for ld in loaders) == 0,
                                       "doomed_image_configures_no_unit")
            with m.If(aborted & ("abort" in self.checks)):
                offers = Cat(dut.start.valid, *[dut.arg[k].valid for k in range(ARGUMENTS)])
                m.d.comb += [Assert(offered == 0, "aborted_nothing_offered_to_endpoints"),
                             Assert(offers == 0, "aborted_no_argument_or_start_offered")]
                with m.If(abort_done):
                    m.d.comb += Assert((dut.state != LaunchState.LOADED) & (dut.state != LaunchState.RUNNING),
                                       "aborted_neither_loaded_nor_running")
                if self.units:
                    with m.If(aborted_for >= 1):
                        m.d.comb += Assert(Cat(ld.configured for ld in loaders) == 0,
                                           "aborted_configures_no_unit")

        # covers: a bad CRC is refused; a good image loads (and, with units, configures a unit)
        m.d.comb += [
            Cover(started & bad & (dut.error == LaunchError.CRC), "bad_crc_refused"),
            Cover(started & (dut.state == LaunchState.LOADED), "good_image_loaded"),
        ]
        if "abort" in self.checks:
            m.d.comb += Cover(started & aborted & abort_ran & (dut.state == LaunchState.ABORTED),
                              "abort_of_a_running_kernel_reaches_aborted")
        if self.units:
            m.d.comb += [Cover(started & (dut.state == LaunchState.LOADED) & loaders[0].configured,
                               "unit_configured_by_a_good_image"),
                         Cover(started & doomed & (dut.error == LaunchError.CRC), "doomed_image_refused")]
        return m
