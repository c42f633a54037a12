"""The property jobs: one line each on what a pass guarantees."""

from __future__ import annotations

from sim.formal import FormalJob

from .network import SwitchCreditHarness
from .streams import FifoOrderHarness, fifo_rules_harness, register_harness
from .units import ConfigLoaderHarness, UnitStreamRulesHarness, small_pcu, tiny_pmu


def _pmu_image() -> list[int]:
    """A PMU program for the cover: write four vectors, read them back."""
    from ..counters import Counter
    from ..pmu import AddressProgram, PmuConfig, PmuParams

    program = AddressProgram([Counter(0, 16, 4)])
    return PmuConfig(write=program, read=program).encode(PmuParams("tiny"))

PCU_IN = ("cfg", "vin0", "vin1", "sin0", "sin1")
PMU_IN = ("cfg", "vin", "sin")

__all__ = ["JOBS", "job_names"]

JOBS: list[FormalJob] = [
    FormalJob("fifo_stream_rules", "a StreamFifo's output keeps valid and payload until taken, whatever the "
              "(rule-abiding) producer and consumer do", lambda: fifo_rules_harness(4, 8), "prove", 4),
    FormalJob("register_stream_rules", "a StreamRegister's output keeps valid and payload until taken",
              lambda: register_harness(8), "prove", 4),
    FormalJob("pcu_stream_rules", "a PCU's vector and scalar outputs keep the stream rules for every "
              "program and every rule-abiding environment (2 lanes, 2 stages, MAC array)",
              lambda: UnitStreamRulesHarness(small_pcu, PCU_IN, ("vout", "sout"), ("start", "cfg_clear")),
              "prove", 3),
    FormalJob("pmu_stream_rules", "a PMU's vector and scalar outputs keep the stream rules for every program "
              "and every rule-abiding environment (tiny preset)",
              lambda: UnitStreamRulesHarness(tiny_pmu, PMU_IN, ("vout", "sout"), ("start", "cfg_clear")),
              "prove", 3,
              map_memories=False),
    FormalJob("pcu_covers", "the PCU rules are not vacuous: some program is loaded and a vector output is "
              "taken after a stall", lambda: UnitStreamRulesHarness(small_pcu, PCU_IN, ("vout", "sout"),
                                                                    ("start",)), "cover", 16),
    FormalJob("pmu_covers", "the PMU harness reaches a configured PMU (a program that writes four vectors "
              "and reads them back is loaded); an output-transfer cover needs > 40 cycles and is not run yet",
              lambda: UnitStreamRulesHarness(tiny_pmu, PMU_IN, ("vout", "sout"), ("start",), _pmu_image(),
                                             output_cover=False),
              "cover", 26, map_memories=False),
    FormalJob("config_refused", "a configuration loader that never sees a valid header never configures "
              "its unit and never changes its register", lambda: ConfigLoaderHarness(True), "prove", 4),
    FormalJob("config_covers", "a valid image does configure the loader (the refusal is not vacuous)",
              lambda: ConfigLoaderHarness(False), "cover", 6),
    FormalJob("fifo_order", "a StreamFifo loses, duplicates and reorders nothing: the n-th payload out is "
              "the n-th in, and its level counts what is inside", lambda: FifoOrderHarness(4, 1), "bmc", 12),
    FormalJob("fifo_covers", "the FIFO properties are not vacuous: the FIFO fills, and a tracked payload "
              "comes out", lambda: FifoOrderHarness(4, 1), "cover", 12),
    FormalJob("fifo_order_deep", "as fifo_order, bounded to 16 cycles", lambda: FifoOrderHarness(4, 1), "bmc",
              16, slow=True),
    FormalJob("register_covers", "a StreamRegister transfers, also right after a stall",
              lambda: register_harness(8), "cover", 12),
    FormalJob("switch_credits", "a switch never sends on a link without a credit (a full receiver never "
              "receives), never holds more credits than the receiver's depth, and every unit pin it drives "
              "keeps the stream rules, for every configuration and rule-abiding neighbour (2 x 2 fabric, "
              "switch (0, 0))",
              lambda: SwitchCreditHarness(), "bmc", 10),
    FormalJob("switch_credits_deep", "as switch_credits, bounded to 16 cycles", lambda: SwitchCreditHarness(),
              "bmc", 16, slow=True),
    FormalJob("switch_covers", "the switch properties are not vacuous: a link's receiver fills to its last "
              "free entry, and one input is multicast to a link and a unit pin at once",
              lambda: SwitchCreditHarness(), "cover", 10),
]


def job_names() -> list[str]:
    return [job.name for job in JOBS]
