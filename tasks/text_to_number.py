"""Text to number [NALU]: read the words for 1..999 and output the value.

Words come from `num2words` (no word tables here) and are lower-cased; a number's
tokens are its words, split at spaces and hyphens ("seven hundred and twelve",
"soixante-dix-sept" -> soixante | dix | sept).

Compounds. de, nl, sv and da write a number as one word ("siebenhundertzwölf"). Those
words are split into the library's own parts: the number words of num2words' table for
that language (``cards``, the values 1..100, e.g. sieben, hundert, zwölf), matched by
dynamic programming (fewest characters left unmatched, then fewest pieces); a run of
characters that matches no table word becomes one token, the glue the library's merge
adds ("und", "ein" in "einundzwanzig" -> einund | zwanzig). So
"siebenhundertzwölf" -> sieben | hundert | zwölf and the pieces joined give the word
back. Characters were the other choice; table parts keep the sequences as short as the
other languages' (at most 6 tokens) and keep a token a number word.

Split (docs/tasks.md, verified from [NAU]'s code): 169 training, 200 validation
and 630 test numbers, disjoint, covering 1..999. Training holds 1..19 and at least one
number containing every token; it is fixed by ``split_seed`` (the same for every run
seed, like the published split), then filled at random, and validation is drawn from
what is left. The model is selected at the evaluation with the lowest validation MSE.

Extrapolation. The numbers of the held-out hundreds (``extrapolation_hundreds``; "auto"
is 800..999 where the language reads them with tokens seen elsewhere) never enter
training or validation: they are all in the test split, and are larger than any
training value. Their words need no new token (checked; en "eight hundred and five" is
eight | hundred | and | five). es writes each hundred as its own word (ochocientos,
novecientos), so no hundred can be held out without a new token: with "auto" es has no
extrapolation set and its extrapolation metrics are None.

Headline metrics: ``interpolation_mse`` is the MSE on the test numbers outside the
held-out hundreds (never trained on, inside the training magnitudes);
``extrapolation_mse`` the MSE on the held-out hundreds (None where there are none);
``interpolation_normalised`` and ``extrapolation_normalised`` are those MSEs as a
percentage of the untrained network's on the same numbers (`tasks.base.normalised`,
from the engine's evaluation at step 0: 100 = no better than before training, 0 = exact).
Per split (train, validation, test, interpolation, extrapolation): MAE and the
exact-match accuracy of the rounded value. A run is a **success** when every test
number (interpolation and extrapolation) rounds to its value: accuracy 1 on the test
split.

Loss: on the final value by default; with ``prefix_loss`` on every prefix that reads as
a number ("seven" -> 7, "seven hundred" -> 700, "seven hundred and" keeps 700, ...),
prefixes before the first such one carry no loss. The model predicts value / ``scale``
(the LSTM state is bounded, and NAC/NAU weights are in [-1, 1]); errors are reported
in value units.

Readout: ``readout=every`` (the default) applies the output unit to the LSTM state after
every prefix (what ``prefix_loss`` needs; without it only the last is read);
``readout=last`` applies it to the state after the number's last token only, as
[NALU]'s authors describe their network.

Settings: ``setting=suite`` (the default) is this suite's network (embedding 16, LSTM 32);
``setting=nalu-authors`` is the network [NALU]'s authors describe (docs/tasks.md, "the
[NALU] authors' setting"): embedding 256, LSTM 10 with TensorFlow's forget-gate bias of
1, ``readout=last``. It sets those parameters and refuses a conflicting one.
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np

from tasks.base import Task, TaskError, normalised

N_NUMBERS = 999
SPLIT_SIZES = {"train": 169, "validation": 200, "test": 630}
LANGUAGES = ("en", "fr", "es", "de", "pt", "nl", "sv", "da", "id")
COMPOUND_LANGUAGES = ("de", "nl", "sv", "da")  # compounds split into num2words' table words
DEFAULT_LANGUAGES = ("en", "de")
DEFAULT_MODELS = ("linear", "nac", "nalu", "nau")
AUTO_HUNDREDS = (8, 9)
READOUTS = ("every", "last")
# The network [NALU]'s authors describe (stable-nalu paper/appendix/nalu-author-comments.tex
# lines 10-13): embedding "256", LSTM "10 (small)", "default in Tensorflow" (its LSTMCell's
# forget_bias=1.0), the output layer "only used for the final element".
SETTINGS = {
    "suite": {},
    "nalu-authors": {"embedding_size": 256, "hidden_size": 10, "forget_bias": 1.0,
                     "readout": "last"},
}


def words(n: int, language: str) -> str:
    """num2words' cardinal for n, lower-cased."""
    from num2words import num2words

    return num2words(n, lang=language).lower().strip()


@cache
def table_words(language: str) -> frozenset[str]:
    """The library's own number words for 1..100 (num2words' ``cards`` table)."""
    import num2words

    cards = getattr(num2words.CONVERTER_CLASSES[language], "cards", None) or {}
    return frozenset(w.lower() for v, w in cards.items() if 1 <= v <= 100)


def segment(word: str, lexicon: frozenset[str]) -> list[str]:
    """Split one word into lexicon words: fewest unmatched characters, then fewest
    pieces; a run of unmatched characters is one piece. ''.join(result) == word."""
    n = len(word)
    best: list[tuple[int, int, tuple[str, ...]]] = [(0, 0, ())] * (n + 1)
    for i in range(n - 1, -1, -1):
        options = []
        for j in range(i + 1, n + 1):
            if word[i:j] in lexicon:
                u, p, rest = best[j]
                options.append((u, p + 1, (word[i:j], *rest)))
        u, p, rest = best[i + 1]
        if rest and rest[0] not in lexicon:  # extend the unmatched run that follows
            options.append((u + 1, p, (word[i] + rest[0], *rest[1:])))
        else:
            options.append((u + 1, p + 1, (word[i], *rest)))
        best[i] = min(options)
    return list(best[0][2])


def tokens(n: int, language: str) -> tuple[str, ...]:
    """The tokens of n's words: split at spaces and hyphens, compounds into table words."""
    parts = [p for p in re.split(r"[\s\-]+", words(n, language)) if p]
    if language in COMPOUND_LANGUAGES:
        lexicon = table_words(language)
        parts = [piece for p in parts for piece in segment(p, lexicon)]
    return tuple(parts)


@cache
def corpus(language: str) -> tuple[tuple[str, ...], ...]:
    """Tokens of 1..999 (index n - 1)."""
    return tuple(tokens(n, language) for n in range(1, N_NUMBERS + 1))


class TextToNumber(Task):
    name = "text_to_number"
    loop = "models.text"
    parameters = {
        "language": "en",
        "embedding_size": 16,
        "hidden_size": 32,
        "prefix_loss": False,
        "scale": 100.0,
        "extrapolation_hundreds": "auto",
        "split_seed": 0,
        "readout": "every",  # every or last (the output unit on the final state only)
        "forget_bias": 0.0,  # added to the LSTM's forget-gate bias at initialisation
        "setting": "suite",  # suite or nalu-authors (SETTINGS)
    }
    default_models = DEFAULT_MODELS
    # left out of specs while at their defaults, so records without them keep their ids
    omitted_when_off = ("readout", "forget_bias", "setting")
    # Steps are cheap (169 numbers, <= 6 tokens) but an LSTM step is many ops: the
    # budgets are sized in wall time (README, "Text to number"), not in static steps.
    budgets = {
        "smoke": {"steps": 400, "eval_interval": 100, "batch_size": 64, "lr": 1e-2,
                  "seeds": 2},
        "quick": {"steps": 600, "eval_interval": 150, "batch_size": 64, "lr": 1e-2,
                  "seeds": 4},
        "paper": {"steps": 100_000, "eval_interval": 1000, "batch_size": 64, "lr": 1e-3,
                  "seeds": 10},
    }

    @classmethod
    def defaults(cls, grid, budget):
        """Each language of the grid (default en and de) with the default models."""
        languages = grid.get("language", DEFAULT_LANGUAGES)
        return [({"language": lang}, cls.default_models) for lang in languages]

    def validate(self) -> None:
        p = self.params
        self._apply_setting()
        if p["language"] not in LANGUAGES:
            raise TaskError(f"unknown language {p['language']!r}; known: {', '.join(LANGUAGES)}")
        for key in ("embedding_size", "hidden_size", "split_seed"):
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (
                    0 if key == "split_seed" else 1):
                raise TaskError(f"bad {key} {v!r}; expected a "
                                f"{'non-negative' if key == 'split_seed' else 'positive'} "
                                f"integer")
        flags = {"true": True, "false": False, "1": True, "0": False}
        value = p["prefix_loss"]
        if isinstance(value, str) and value.lower() in flags:  # --param prefix_loss=true
            value = flags[value.lower()]
        if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
            raise TaskError(f"bad prefix_loss {p['prefix_loss']!r}; expected true or false "
                            f"(1 or 0)")
        p["prefix_loss"] = bool(value)
        s = p["scale"]
        if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) \
                or not np.isfinite(s) or s <= 0:
            raise TaskError(f"bad scale {s!r}; expected a finite number > 0")
        p["extrapolation_hundreds"] = self._hundreds(p["extrapolation_hundreds"])
        if p["readout"] not in READOUTS:
            raise TaskError(f"bad readout {p['readout']!r}; expected one of {', '.join(READOUTS)}")
        if p["readout"] == "last" and p["prefix_loss"]:
            raise TaskError("prefix_loss needs the value after every prefix: readout=every "
                            "(got readout=last)")
        fb = p["forget_bias"]
        if isinstance(fb, bool) or not isinstance(fb, (int, float, np.number)) \
                or not np.isfinite(fb):
            raise TaskError(f"bad forget_bias {fb!r}; expected a finite number")
        p["forget_bias"] = float(fb)
        for key in self.omitted_when_off:  # at the default: left out of the spec
            if key in p and p[key] == self.parameters[key]:
                del p[key]

    def _apply_setting(self) -> None:
        """Fill the parameters a named setting fixes; refuse one set otherwise."""
        p = self.params
        if not isinstance(p["setting"], str) or p["setting"] not in SETTINGS:
            raise TaskError(f"unknown setting {p['setting']!r}; known: {', '.join(SETTINGS)}")
        for key, value in SETTINGS[p["setting"]].items():
            if p[key] != self.parameters[key] and p[key] != value:
                raise TaskError(f"setting {p['setting']} sets {key}={value}; got {key}="
                                f"{p[key]!r} (drop it, or use setting=suite)")
            p[key] = value

    def param(self, key: str):
        """A parameter's value, its default where the spec leaves it out."""
        return self.params.get(key, self.parameters[key])
    def _hundreds(self, value) -> tuple[int, ...] | str:
        if value == "auto":
            return value
        if value in ((), [], "none", ""):
            return ()
        values = [value] if isinstance(value, (int, np.integer)) else value
        try:
            out = tuple(sorted({int(v) for v in values}))
            if any(isinstance(v, bool) or int(v) != v for v in values):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise TaskError(f"bad extrapolation_hundreds {value!r}; expected 'auto', 'none' "
                            f"or hundreds digits 1..9 (e.g. 8,9)") from None
        if not out or any(h < 1 or h > 9 for h in out) or len(out) > 3:
            raise TaskError(f"bad extrapolation_hundreds {value!r}; expected 'auto', 'none' "
                            f"or one to three hundreds digits in 1..9 (e.g. 8,9)")
        missing = self._new_tokens(out)
        if missing:
            raise TaskError(f"extrapolation_hundreds {value!r} in {self.params['language']!r} "
                            f"need tokens no other number has: {', '.join(missing)}")
        return out

    def _new_tokens(self, hundreds) -> list[str]:
        """Tokens of the held-out hundreds that no other number of 1..999 contains."""
        toks = corpus(self.params["language"])
        held = [toks[n - 1] for n in range(1, N_NUMBERS + 1) if n // 100 in hundreds]
        rest = {t for n in range(1, N_NUMBERS + 1) if n // 100 not in hundreds
                for t in toks[n - 1]}
        return sorted({t for seq in held for t in seq} - rest)

    # the data
    @property
    def held_hundreds(self) -> tuple[int, ...]:
        h = self.params["extrapolation_hundreds"]
        if h == "auto":
            return AUTO_HUNDREDS if not self._new_tokens(AUTO_HUNDREDS) else ()
        return h

    @property
    def vocabulary(self) -> list[str]:
        """Tokens in order of first use (1, 2, ...); id 0 is padding, token k has id k + 1."""
        return list(dict.fromkeys(t for seq in corpus(self.params["language"]) for t in seq))

    def encoded(self) -> tuple[np.ndarray, np.ndarray]:
        """(999, L) token ids (0 pads on the right) and (999,) lengths, index n - 1."""
        ids = {t: i + 1 for i, t in enumerate(self.vocabulary)}
        toks = corpus(self.params["language"])
        length = np.array([len(s) for s in toks])
        out = np.zeros((N_NUMBERS, length.max()), dtype=np.int32)
        for i, seq in enumerate(toks):
            out[i, :len(seq)] = [ids[t] for t in seq]
        return out, length

    def prefix_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """(999, L) value of each prefix that reads as a number, carried forward over the
        prefixes that do not, and the mask of positions that have one."""
        toks = corpus(self.params["language"])
        value_of = {seq: n for n, seq in enumerate(toks, start=1)}
        length = max(len(s) for s in toks)
        y = np.zeros((N_NUMBERS, length))
        mask = np.zeros((N_NUMBERS, length), dtype=bool)
        for i, seq in enumerate(toks):
            current = None
            for t in range(len(seq)):
                current = value_of.get(seq[:t + 1], current)
                if current is not None:
                    y[i, t], mask[i, t] = current, True
            assert current == i + 1
        return y, mask

    def split(self) -> dict[str, np.ndarray]:
        """Sorted numbers of each split, plus interpolation / extrapolation (test parts)."""
        return _split(self.params["language"], self.held_hundreds, self.params["split_seed"])

    def instance(self, seed: int) -> Any:
        return None

    def layers(self, model):
        """The output layer: hidden_size -> 1 (the embedding and LSTM come first)."""
        return [(model[1], self.params["hidden_size"], 1)]

    def footprint(self, batch_size, replicas):
        """The LSTM's weights with gradients and Adam's moments, and its activations over
        all 999 numbers (evaluation) for every seed of the group."""
        e, h = self.params["embedding_size"], self.params["hidden_size"]
        return {
            f"weights ({replicas} seed(s), embedding_size={e}, hidden_size={h})":
                64.0 * replicas * h * (e + h + 1),
            f"activations ({replicas} seed(s) x 999 numbers x hidden_size={h})":
                replicas * 999 * 8 * 4 * h * 4.0,
        }

    def check_model(self, model: str) -> None:
        from models import reference

        if model not in reference.UNITS:
            raise TaskError(f"unknown model {model!r} for {self.name}: the model is the output "
                            f"layer on the LSTM; known: {', '.join(reference.UNITS)}")

    def metrics(self, seed) -> dict[str, Any]:
        """Metrics of one replica from its predicted values for 1..999 at the selected step
        (``seed.best["pred"]``) and its untrained errors (``seed.errors[name][0]``)."""
        pred, diverged, selected_step = seed.best["pred"], seed.diverged, seed.selected_step
        values = np.arange(1, N_NUMBERS + 1, dtype=np.float64)
        out: dict[str, Any] = {}
        for name, numbers in self.split().items():
            if len(numbers) == 0:
                out[f"mae_{name}"] = out[f"mse_{name}"] = out[f"accuracy_{name}"] = None
                continue
            p, y = pred[numbers - 1], values[numbers - 1]
            with np.errstate(all="ignore"):
                err = p - y
                mae, mse = float(np.mean(np.abs(err))), float(np.mean(err ** 2))
                acc = float(np.mean(np.round(p) == y))
            out[f"mae_{name}"] = mae if np.isfinite(mae) else None
            out[f"mse_{name}"] = mse if np.isfinite(mse) else None
            out[f"accuracy_{name}"] = acc
        out["interpolation_mse"] = out["mse_interpolation"]
        out["extrapolation_mse"] = out["mse_extrapolation"]
        for name in ("interpolation", "extrapolation"):  # against step 0's network
            out[f"{name}_normalised"] = normalised(out[f"mse_{name}"], seed.errors[name][0])
        out["success"] = bool(not diverged and out["accuracy_test"] == 1.0)
        out["selected_step"] = int(selected_step)
        out["extrapolation_numbers"] = [int(self.split()["extrapolation"].min()),
                                        int(self.split()["extrapolation"].max())] \
            if len(self.split()["extrapolation"]) else None
        return out


@cache
def _split(language: str, held: tuple[int, ...], split_seed: int) -> dict[str, np.ndarray]:
    toks = corpus(language)
    rng = np.random.default_rng([split_seed, 3])  # the split's own stream
    numbers = np.arange(1, N_NUMBERS + 1)
    held_mask = np.isin(numbers // 100, held)
    pool = numbers[~held_mask]
    train = set(range(1, 20))
    for token in dict.fromkeys(t for seq in toks for t in seq):
        if not any(token in toks[n - 1] for n in train):
            having = [n for n in pool if token in toks[n - 1]]
            if not having:
                raise TaskError(f"token {token!r} appears only in the held-out hundreds")
            train.add(int(rng.choice(having)))
    rest = rng.permutation(np.setdiff1d(pool, sorted(train)))
    need = SPLIT_SIZES["train"] - len(train)
    if need < 0:
        raise TaskError(f"covering every token takes {len(train)} training numbers, more than "
                        f"{SPLIT_SIZES['train']}")
    train_arr = np.sort(np.r_[sorted(train), rest[:need]]).astype(int)
    validation = np.sort(rest[need:need + SPLIT_SIZES["validation"]])
    test = np.setdiff1d(numbers, np.r_[train_arr, validation])
    return {"train": train_arr, "validation": validation, "test": test,
            "interpolation": test[~np.isin(test // 100, held)],
            "extrapolation": test[np.isin(test // 100, held)]}
