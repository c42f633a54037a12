"""The CoE router: hashed bag-of-words → one bf16 GEMM → argmax, trained with numpy.

* :func:`make_prompts` generates a labelled prompt set over :data:`DOMAINS` (10 domains): each
  prompt is a question template filled with words of its domain, common filler words and, with
  probability ``confuse``, words of another domain (so that routing is not trivially perfect).
* :func:`featurize` hashes every word (CRC-32, stable across runs) into ``features - 1``
  buckets of counts (capped at 255, exact in bf16) plus a constant 1 for the bias. (Word
  bigrams were tried and dropped: with random filler words they overfit, 80 % held out.)
* :func:`train` fits a softmax classifier in float32 numpy (full-batch gradient descent with
  momentum and L2), then rounds the weights to bf16 (RNE, ml_dtypes).
* :meth:`Router.route` is the golden (fast) mode: ``argmax(x @ W)`` with bf16 operands and
  fp32 accumulation in sequential order (:func:`coe_host.golden.gemm_bf16`) — the numbers the
  RTL-backed mode (:func:`coe_host.rtl.run_router_rtl`) must reproduce bit for bit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .golden import argmax_words, gemm_bf16, to_bf16_words

__all__ = ["DOMAINS", "make_prompts", "featurize", "Router", "train", "accuracy", "oracle_accuracy",
           "train_default",
           "ACCURACY_FLOOR"]

#: Minimum held-out routing accuracy the tests require of :func:`train_default`.
ACCURACY_FLOOR = 0.85

DOMAINS: dict[str, tuple[str, ...]] = {
    "mathematics": ("integral", "derivative", "matrix", "eigenvalue", "theorem", "proof", "polynomial",
                    "prime", "equation", "vector", "calculus", "algebra", "topology", "limit", "series",
                    "lemma", "geometry", "triangle", "probability", "factorial", "logarithm", "inequality"),
    "programming": ("python", "function", "compiler", "bug", "exception", "recursion", "pointer", "array",
                    "class", "git", "api", "thread", "mutex", "javascript", "rust", "debugger", "loop",
                    "variable", "refactor", "unittest", "segfault", "docker"),
    "medicine": ("symptom", "diagnosis", "fever", "antibiotic", "dose", "vaccine", "blood", "pressure",
                 "diabetes", "infection", "surgery", "patient", "allergy", "cardiology", "tumor", "migraine",
                 "insulin", "prescription", "cholesterol", "fracture", "asthma", "therapy"),
    "law": ("contract", "lawsuit", "attorney", "plaintiff", "defendant", "statute", "court", "tenant",
            "liability", "copyright", "patent", "verdict", "appeal", "jurisdiction", "clause", "lease",
            "negligence", "custody", "subpoena", "testimony", "trademark", "arbitration"),
    "finance": ("stock", "bond", "dividend", "portfolio", "inflation", "mortgage", "interest", "tax",
                "budget", "loan", "equity", "etf", "retirement", "pension", "hedge", "credit", "invoice",
                "revenue", "valuation", "bankruptcy", "savings", "currency"),
    "cooking": ("recipe", "oven", "flour", "garlic", "sauce", "bake", "simmer", "onion", "butter", "dough",
                "pasta", "roast", "marinade", "spice", "whisk", "skillet", "braise", "vinegar", "soup",
                "dessert", "yeast", "grill"),
    "travel": ("flight", "hotel", "passport", "visa", "itinerary", "airport", "luggage", "beach", "museum",
               "train", "hostel", "tour", "booking", "destination", "backpacking", "cruise", "layover",
               "sightseeing", "embassy", "jetlag", "resort", "ferry"),
    "sports": ("football", "goal", "tennis", "marathon", "coach", "league", "tournament", "score",
               "basketball", "training", "stadium", "referee", "championship", "sprint", "cycling",
               "swimming", "offside", "penalty", "playoff", "athlete", "dribble", "workout"),
    "music": ("guitar", "chord", "melody", "piano", "rhythm", "scale", "album", "song", "drum", "tempo",
              "harmony", "violin", "lyrics", "concert", "symphony", "octave", "jazz", "synthesizer", "band",
              "composer", "riff", "orchestra"),
    "astronomy": ("galaxy", "telescope", "planet", "orbit", "comet", "nebula", "star", "supernova",
                  "asteroid", "eclipse", "exoplanet", "cosmology", "redshift", "quasar", "constellation",
                  "meteor", "pulsar", "spacecraft", "moon", "solar", "lightyear", "blackhole"),
}

FILLER = ("how", "what", "why", "is", "the", "a", "an", "my", "to", "of", "for", "in", "with", "and", "can",
          "you", "please", "about", "best", "way", "explain", "should", "i", "do", "does", "this", "that",
          "when", "which", "help", "me", "need", "know", "good", "some", "tell", "quick", "question")

TEMPLATES = (
    "{f} {f} {w} {f} {w}",
    "{f} {f} {f} {w} {f} {w} {w}",
    "{w} {f} {f} {w}",
    "{f} {w} {f} {f} {w} {f} {w}",
    "{f} {f} {w} {w} {f} {f} {w} {f}",
    "{f} {w} {f} {f}",
)


def make_prompts(n: int, *, seed: int = 0, confuse: float = 0.35) -> tuple[list[str], np.ndarray]:
    """``n`` prompts and their domain labels (indices into ``list(DOMAINS)``)."""
    rng = np.random.default_rng(seed)
    names = list(DOMAINS)
    prompts, labels = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        label = int(rng.integers(len(names)))
        words = DOMAINS[names[label]]
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        parts = []
        for token in template.split():
            if token == "{w}":
                parts.append(words[int(rng.integers(len(words)))])
            else:
                parts.append(FILLER[int(rng.integers(len(FILLER)))])
        if rng.random() < confuse:
            other = names[(label + 1 + int(rng.integers(len(names) - 1))) % len(names)]
            ow = DOMAINS[other]
            for _ in range(1 + int(rng.random() < 0.3)):
                parts.insert(int(rng.integers(len(parts) + 1)), ow[int(rng.integers(len(ow)))])
        prompts.append(" ".join(parts))
        labels[i] = label
    return prompts, labels


def _bucket(token: str, buckets: int) -> int:
    return zlib.crc32(token.encode()) % buckets


def _coo(prompts: list[str], features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse features: (row, column, count) of every hashed word, plus the bias column."""
    rows, cols = [], []
    for i, p in enumerate(prompts):
        for w in p.lower().split():
            rows.append(i)
            cols.append(_bucket(w, features - 1))
        rows.append(i)
        cols.append(features - 1)
    key = np.asarray(rows, dtype=np.int64) * features + np.asarray(cols, dtype=np.int64)
    uniq, counts = np.unique(key, return_counts=True)
    r, c = np.divmod(uniq, features)
    vals = np.minimum(counts, 255).astype(np.float32)
    vals[c == features - 1] = 1.0
    return r, c, vals


def featurize(prompts: list[str], features: int = 512) -> np.ndarray:
    """Hashed bag of words: (len(prompts), features) float32 counts of each word's CRC-32 bucket
    among ``features - 1`` (capped at 255, exact in bf16); column ``features - 1`` is the bias
    input (always 1)."""
    if features < 2:
        raise ValueError(f"features must be >= 2, got {features}")
    x = np.zeros((len(prompts), features), dtype=np.float32)
    r, c, v = _coo(prompts, features)
    x[r, c] = v
    return x


@dataclass
class Router:
    """Trained router: bf16 weight words (features, classes) and the class names."""

    weights: np.ndarray     # uint32 bf16 words
    classes: tuple[str, ...]

    @property
    def features(self) -> int:
        return self.weights.shape[0]

    def logits(self, prompts: list[str]) -> np.ndarray:
        """fp32 logit words of the golden GEMM (bf16 inputs, sequential fp32 MACs)."""
        x = to_bf16_words(featurize(prompts, self.features))
        return gemm_bf16(x, self.weights)

    def route(self, prompts: list[str]) -> np.ndarray:
        """Class index of every prompt (golden mode)."""
        return argmax_words(self.logits(prompts))

    def route_names(self, prompts: list[str]) -> list[str]:
        return [self.classes[i] for i in self.route(prompts)]

    @property
    def nbytes(self) -> int:
        return self.weights.size * 2


def train(prompts: list[str], labels: np.ndarray, *, features: int = 512,
          classes: tuple[str, ...] | None = None, epochs: int = 150, lr: float = 0.5, l2: float = 1e-3,
          seed: int = 0) -> Router:
    """Softmax regression (float32 numpy, momentum gradient descent, L2), weights then rounded to bf16.

    The features are sparse (a dozen words of ``features`` buckets), so the products run on the
    nonzeros (gathers and segment sums) rather than dense BLAS calls.
    """
    if isinstance(features, bool) or not isinstance(features, int) or features < 2:
        raise ValueError(f"features must be an integer >= 2 (one hashed bucket and the bias), "
                         f"got {features!r}")
    classes = tuple(classes or DOMAINS)
    labels = np.asarray(labels, dtype=np.int64)
    r, c, v = _coo(prompts, features)
    n, k = len(prompts), len(classes)
    y = np.zeros((n, k), dtype=np.float32)
    y[np.arange(n), labels] = 1
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((features, k)) * 0.01).astype(np.float32)
    mom = np.zeros_like(w)
    row_starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])    # every row has its bias entry
    by_col = np.argsort(c, kind="stable")
    cs = c[by_col]
    col_starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    present = cs[col_starts]
    for _ in range(epochs):
        z = np.add.reduceat(v[:, None] * w[c], row_starts, axis=0)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = l2 * w
        contrib = (v[:, None] * (p - y)[r])[by_col]
        grad[present] += np.add.reduceat(contrib, col_starts, axis=0) / n
        mom = 0.9 * mom - lr * grad
        w += mom
    return Router(to_bf16_words(w), classes)


def oracle_accuracy(prompts: list[str], labels: np.ndarray) -> float:
    """Accuracy of counting each domain's keywords (ties split evenly): the ceiling of this set,
    which its confusing words make imperfect."""
    names = list(DOMAINS)
    index = {w: i for i, name in enumerate(names) for w in DOMAINS[name]}
    score = 0.0
    for p, label in zip(prompts, labels, strict=True):
        counts = np.zeros(len(names))
        for w in p.split():
            if w in index:
                counts[index[w]] += 1
        best = np.flatnonzero(counts == counts.max())
        score += (label in best) / len(best)
    return score / len(prompts)


def accuracy(router: Router, prompts: list[str], labels: np.ndarray) -> float:
    return float(np.mean(router.route(prompts) == labels))


def train_default(*, train_n: int = 3000, test_n: int = 1000, seed: int = 0, features: int = 512) -> dict:
    """Train on ``train_n`` prompts, evaluate on ``test_n`` held-out ones (another seed)."""
    tp, tl = make_prompts(train_n, seed=seed)
    hp, hl = make_prompts(test_n, seed=seed + 10_000)
    router = train(tp, tl, features=features, seed=seed)
    return {"router": router, "train_accuracy": accuracy(router, tp, tl),
            "heldout_accuracy": accuracy(router, hp, hl), "oracle_accuracy": oracle_accuracy(hp, hl),
            "train_n": train_n, "test_n": test_n,
            "features": features, "classes": len(router.classes), "weight_bytes": router.nbytes}
