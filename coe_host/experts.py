"""Expert registry: what each expert is, how big, and where it lives in DDR.

An :class:`Expert` has a name, an :class:`Architecture` (layers, d_model, ffn size, dtype), a
parameter count and size in bytes, a domain (what the router sends to it) and a *home*: one
:class:`Shard` per socket that holds part of it — the socket and the DDR line range
(``base``, ``lines``, 64-byte lines, as an AGCU segment). An expert sharded over ``n`` sockets
(tensor parallel) has ``n`` shards of ``ceil(lines / n)`` lines each.

Small experts (:func:`small_ffn_registry`) carry real bf16 weights (an FFN: ``w1`` d_model × ffn,
``w2`` ffn × d_model) whose byte image is what the DDR → HBM copy moves; large ones
(:func:`sized_registry`, e.g. 150 × 7B) are sized descriptors only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .golden import to_bf16_words

__all__ = ["LINE_BYTES", "DTYPE_BYTES", "Architecture", "Shard", "Expert", "ExpertRegistry", "llama_like",
           "LLAMA2_7B", "sized_registry", "small_ffn_registry", "lines_of"]

LINE_BYTES = 64
DTYPE_BYTES = {"bf16": 2, "fp32": 4, "int8": 1}


def lines_of(nbytes: int) -> int:
    """64-byte lines needed for ``nbytes``."""
    return -(-int(nbytes) // LINE_BYTES)


@dataclass(frozen=True)
class Architecture:
    """Shape of an expert. ``kind`` is ``"decoder"`` (Llama-like) or ``"ffn"`` (FFN layers only)."""

    layers: int
    d_model: int
    ffn: int
    dtype: str = "bf16"
    vocab: int = 0
    kind: str = "decoder"

    def __post_init__(self):
        for name in ("layers", "d_model", "ffn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")
        if self.kind not in ("decoder", "ffn"):
            raise ValueError(f"kind must be 'decoder' or 'ffn', got {self.kind!r}")

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def params(self) -> int:
        """Parameters of the shape (attention 4·d², SwiGLU FFN 3·d·ffn per layer, embeddings 2·V·d)."""
        if self.kind == "ffn":
            return self.layers * 2 * self.d_model * self.ffn
        d = self.d_model
        return self.layers * (4 * d ** 2 + 3 * d * self.ffn) + 2 * self.vocab * d

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes one token of one sequence adds (K and V of every layer)."""
        return 0 if self.kind == "ffn" else 2 * self.layers * self.d_model * self.dtype_bytes

    def describe(self) -> dict:
        return {"kind": self.kind, "layers": self.layers, "d_model": self.d_model, "ffn": self.ffn,
                "vocab": self.vocab, "dtype": self.dtype, "shape_params": self.params}


#: Llama-2-7B (the paper's experts are Llama2-7B derived): 6.74 B parameters.
LLAMA2_7B = Architecture(layers=32, d_model=4096, ffn=11008, vocab=32000)


def llama_like(params: float) -> Architecture:
    """A Llama-like shape for ``params`` parameters (Llama-2-7B itself within 10 % of 6.74 B).

    Otherwise ``layers`` = 32 (16 under 1 B), ffn = 2.6875 · d_model, d_model a multiple of 128
    chosen so the shape's parameter count is closest to ``params``. The shape only sizes the KV
    cache and the all-reduce messages; weights and FLOPs use ``params`` itself.
    """
    if not params > 0:
        raise ValueError(f"params must be positive, got {params}")
    if abs(params / LLAMA2_7B.params - 1) < 0.1:
        return LLAMA2_7B
    layers = 32 if params >= 1e9 else 16
    best = None
    for d in range(128, 65536 + 1, 128):
        arch = Architecture(layers=layers, d_model=d, ffn=128 * max(1, round(2.6875 * d / 128)), vocab=32000)
        err = abs(arch.params - params)
        if best is None or err < best[0]:
            best = (err, arch)
        if arch.params > params:
            break
    return best[1]


@dataclass(frozen=True)
class Shard:
    """Part of an expert's weights at home in one socket's DDR: lines ``[base, base + lines)``."""

    socket: int
    base: int
    lines: int

    @property
    def nbytes(self) -> int:
        return self.lines * LINE_BYTES


@dataclass
class Expert:
    """One expert. ``weights`` is ``None`` for a sized descriptor."""

    name: str
    arch: Architecture
    params: float
    domain: str
    home: tuple[Shard, ...] = ()
    weights: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def size_bytes(self) -> int:
        return int(math.ceil(self.params * self.arch.dtype_bytes))

    @property
    def lines(self) -> int:
        return lines_of(self.size_bytes)

    def shard_lines(self, shards: int) -> int:
        return -(-self.lines // shards)

    @property
    def sockets(self) -> tuple[int, ...]:
        return tuple(s.socket for s in self.home)

    def image(self) -> bytes:
        """The weights' byte image as stored in DDR (``w1`` then ``w2``, bf16 little-endian, padded)."""
        if self.weights is None:
            raise ValueError(f"expert {self.name!r} is a sized descriptor without weights")
        raw = b"".join(np.asarray(self.weights[k], dtype=np.uint32).astype("<u2").tobytes()
                       for k in ("w1", "w2"))
        return raw + bytes(self.lines * LINE_BYTES - len(raw))

    def describe(self) -> dict:
        return {"name": self.name, "domain": self.domain, "params": self.params,
                "size_bytes": self.size_bytes, "architecture": self.arch.describe(),
                "real_weights": self.weights is not None,
                "home": [{"socket": s.socket, "base_line": s.base, "lines": s.lines} for s in self.home]}


class ExpertRegistry:
    """Experts by name, in registration order."""

    def __init__(self, experts: Iterable[Expert] = ()):
        self._experts: dict[str, Expert] = {}
        for e in experts:
            self.add(e)

    def add(self, expert: Expert) -> Expert:
        if expert.name in self._experts:
            raise ValueError(f"expert {expert.name!r} is already registered")
        self._experts[expert.name] = expert
        return expert

    def __getitem__(self, name: str) -> Expert:
        try:
            return self._experts[name]
        except KeyError:
            raise KeyError(f"no expert named {name!r}") from None

    def __contains__(self, name) -> bool:
        return name in self._experts

    def __iter__(self) -> Iterator[Expert]:
        return iter(self._experts.values())

    def __len__(self) -> int:
        return len(self._experts)

    @property
    def names(self) -> list[str]:
        return list(self._experts)

    def by_domain(self, domain: str) -> list[Expert]:
        return [e for e in self if e.domain == domain]

    @property
    def total_bytes(self) -> int:
        return sum(e.size_bytes for e in self)

    def place_homes(self, memories, groups: list[tuple[int, ...]]) -> None:
        """Give every expert a home: expert ``i`` goes to group ``i mod len(groups)``, shard ``k``
        on that group's ``k``-th socket, allocated in the socket's DDR ``experts`` region.
        With real weights, the image is written to DDR."""
        for i, e in enumerate(self):
            group = groups[i % len(groups)]
            per = e.shard_lines(len(group))
            shards = []
            image = e.image() if e.weights is not None else None
            for k, socket in enumerate(group):
                region = memories[socket].ddr.allocate("experts", per, owner=f"home:{e.name}:{k}")
                shards.append(Shard(socket, region.base, region.lines))
                if image is not None:
                    part = image[k * per * LINE_BYTES:(k + 1) * per * LINE_BYTES]
                    memories[socket].ddr.write(region.base * LINE_BYTES, part)
            e.home = tuple(shards)


DOMAIN_NAMES = ("mathematics", "programming", "medicine", "law", "finance", "cooking", "travel", "sports",
                "music", "astronomy")


def sized_registry(experts: int, params_per_expert: float, *, domains: tuple[str, ...] = DOMAIN_NAMES,
                   arch: Architecture | None = None) -> ExpertRegistry:
    """``experts`` sized descriptors of ``params_per_expert`` parameters (bf16), domains round robin."""
    if experts < 1:
        raise ValueError(f"experts must be >= 1, got {experts}")
    arch = arch or llama_like(params_per_expert)
    return ExpertRegistry(Expert(f"expert{i:03d}", arch, float(params_per_expert), domains[i % len(domains)])
                          for i in range(experts))


def small_ffn_registry(experts: int = 3, d_model: int = 32, ffn: int = 64, *, seed: int = 0,
                       domains: tuple[str, ...] = DOMAIN_NAMES) -> ExpertRegistry:
    """``experts`` FFN-sized experts with real bf16 weights (N(0, 1/sqrt(fan-in)), RNE to bf16)."""
    rng = np.random.default_rng(seed)
    arch = Architecture(layers=1, d_model=d_model, ffn=ffn, kind="ffn")
    reg = ExpertRegistry()
    for i in range(experts):
        w1 = to_bf16_words(rng.standard_normal((d_model, ffn)) / np.sqrt(d_model))
        w2 = to_bf16_words(rng.standard_normal((ffn, d_model)) / np.sqrt(ffn))
        reg.add(Expert(f"ffn{i}", arch, float(arch.params), domains[i % len(domains)],
                       weights={"w1": w1, "w2": w2}))
    return reg
