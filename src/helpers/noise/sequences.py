"""Simulated sequencing errors in protein sequences: per-residue random substitution.

The paper corrupts every SARS-CoV-2 spike sequence by *substitution*: each residue is selected
independently with probability ``rate`` (the noise level ``p``) and a selected residue is
replaced by a letter drawn uniformly from the 20 standard amino acids
(:data:`AMINO_ACIDS`, ``ACDEFGHIKLMNPQRSTVWY``), in the training and the evaluation sequences
alike.  As in the authors' code (``mutate`` in ``seq/gisaid_preprocessing.ipynb`` of
g-kl/noise-scaling), the replacement is drawn from the *whole* alphabet, so it can equal the
original letter: a standard residue actually changes with probability ``p · 19/20``, and the
released x-axis is nevertheless ``true/error = (1 − p)/p`` (:func:`substitution_x`).

Letters outside the alphabet
----------------------------
Spike exports hold ``X`` (a codon with an ambiguous base), ``-`` (alignment gaps) and ``*``
(stop) besides the 20 standard letters.  ``positions`` says what may be selected:

``"all"`` (default, as the authors)
    every position, whatever its letter; a selected ``X``, ``-`` or ``*`` becomes a standard
    amino acid, so it always changes (probability ``p``), while a standard residue changes with
    probability ``p · 19/20``.
``"alphabet"``
    only letters of ``alphabet`` are candidates; every other character is left in place.

Letters must be upper-case ASCII (``A``–``Z``) or one of ``-``, ``*``, ``.``; anything else is a
``ValueError`` naming the character and the sequence.

How the random numbers are drawn
--------------------------------
Sequences are cut into fixed blocks of :data:`BLOCK_SEQUENCES` (256); block ``b`` draws from
``Generator(PCG64(SeedSequence(seed, spawn_key=(TAG, b))))`` one uniform per residue (in order)
to select positions and one integer per selected position to pick its replacement.  All
residues of a block are handled as one ``uint8`` array, so the work is vectorised and memory
stays bounded for any number of sequences; a sequence's result depends only on the seed, its
block and its block's sequences.

===========================  ==================================================================
:func:`substitute`           substitute residues of a batch of sequences at one rate
:func:`corrupt`              the corruption of the pipeline: ``SequenceData`` in, ``(noisy, x)``
:func:`substitution_x`       the released x-axis, ``(1 − p)/p``
:func:`rates_for_x`          the inverse: substitution rates for target x values
:func:`substitution_grid`    the paper's ten rates (``(1 − p)/p ∈ logspace(−3, 6, 10)``)
:func:`levels`               the rates of a sweep per profile (the task's ``levels``)
:func:`tolerance`            what a fitted noise law says about tolerable substitution rates
===========================  ==================================================================
"""

from __future__ import annotations

import numpy as np

from .. import profiles

__all__ = [
    "AMINO_ACIDS",
    "BLOCK_SEQUENCES",
    "corrupt",
    "levels",
    "rates_for_x",
    "substitute",
    "substitution_grid",
    "substitution_x",
    "tolerance",
]

#: The 20 standard amino acids, the alphabet the paper's substitutions draw from.
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
#: Sequences per random-number block.
BLOCK_SEQUENCES = 256
_TAG = 0x5EB5  # spawn-key tag of this noise (distinct from the count-thinning streams)
_VALID = np.zeros(256, dtype=bool)
_VALID[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ-*.", dtype=np.uint8)] = True


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        msg = f"rate must be a number in [0, 1], got {type(rate).__name__}"
        raise TypeError(msg)
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        msg = f"rate must be in [0, 1], got {rate}"
        raise ValueError(msg)
    return rate


def _check_alphabet(alphabet: str) -> np.ndarray:
    if not isinstance(alphabet, str) or not alphabet:
        msg = f"alphabet must be a non-empty string, got {alphabet!r}"
        raise ValueError(msg)
    codes = np.frombuffer(alphabet.encode("ascii", errors="replace"), dtype=np.uint8)
    if len(set(alphabet)) != len(alphabet) or not _VALID[codes].all():
        msg = f"alphabet must hold distinct upper-case letters, got {alphabet!r}"
        raise ValueError(msg)
    return codes.copy()


def _as_list(sequences) -> list[str]:
    if isinstance(sequences, str):
        msg = "sequences must be a list or array of strings, not one string; wrap it in a list"
        raise TypeError(msg)
    seqs = list(sequences)
    for i, s in enumerate(seqs):
        if not isinstance(s, str):
            msg = f"sequence {i} is a {type(s).__name__}, not a str"
            raise TypeError(msg)
    return seqs


def _encode(block: list[str], first: int) -> np.ndarray:
    """The residues of ``block`` as one uint8 array, checked letter by letter."""
    try:
        codes = np.frombuffer("".join(block).encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        codes = None
    if codes is None or not _VALID[codes].all():
        for i, s in enumerate(block):
            bad = [c for c in s if not (c.isascii() and _VALID[ord(c)])]
            if bad:
                msg = (
                    f"sequence {first + i} holds {bad[0]!r}; letters must be upper-case A-Z or "
                    "one of '-', '*', '.' (upper-case the sequences first)"
                )
                raise ValueError(msg)
    return codes


def _block_rng(seed: int, block: int) -> np.random.Generator:
    seq = np.random.SeedSequence(seed, spawn_key=(_TAG, block))
    return np.random.Generator(np.random.PCG64(seq))


def substitute(
    sequences,
    rate: float,
    *,
    seed: int = 0,
    alphabet: str = AMINO_ACIDS,
    positions: str = "all",
) -> np.ndarray:
    """Replace each residue, with probability ``rate``, by a uniform draw from ``alphabet``.

    Parameters
    ----------
    sequences
        A list or 1-D array of strings (upper-case letters, ``-``, ``*``, ``.``). Not modified.
    rate
        Substitution rate ``p`` in ``[0, 1]`` (the paper's noise level).
    seed
        Seed of the random numbers (see the module docstring for how they are drawn).
    alphabet
        Letters a selected residue is replaced by (uniformly, possibly itself).
    positions
        ``"all"`` (every position may be selected, as the authors did) or ``"alphabet"``
        (only letters of ``alphabet``; gaps, ``X``, ``*`` and other letters are kept).

    Returns
    -------
    numpy.ndarray
        A 1-D object array of the substituted sequences, same lengths and order.

    Examples
    --------
    >>> substitute(["MFVFLVLLPLVSSQCVNLT"], 0.0, seed=0)[0]
    'MFVFLVLLPLVSSQCVNLT'
    >>> noisy = substitute(["MFVFLVLLPLVSSQCVNLT"] * 100, 0.5, seed=1)
    >>> changed = np.mean([a != b for s in noisy for a, b in zip(s, "MFVFLVLLPLVSSQCVNLT")])
    >>> bool(0.4 < changed < 0.55)  # expected 0.5 * 19/20
    True
    """
    rate = _check_rate(rate)
    codes_alpha = _check_alphabet(alphabet)
    if positions not in ("all", "alphabet"):
        msg = f"positions must be 'all' or 'alphabet', got {positions!r}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise TypeError(msg)
    seqs = _as_list(sequences)
    in_alpha = np.zeros(256, dtype=bool)
    in_alpha[codes_alpha] = True
    out = np.empty(len(seqs), dtype=object)
    k = codes_alpha.size
    for b, start in enumerate(range(0, len(seqs), BLOCK_SEQUENCES)):
        block = seqs[start : start + BLOCK_SEQUENCES]
        codes = _encode(block, start)
        if rate > 0 and codes.size:
            rng = _block_rng(int(seed), b)
            hit = rng.random(codes.size) < rate
            if positions == "alphabet":
                hit &= in_alpha[codes]
            codes = codes.copy()
            codes[hit] = codes_alpha[rng.integers(0, k, size=int(hit.sum()))]
        text = codes.tobytes().decode("ascii")
        ends = np.cumsum([len(s) for s in block])
        begins = ends - np.array([len(s) for s in block], dtype=int)
        for j, (lo, hi) in enumerate(zip(begins, ends, strict=True)):
            out[start + j] = text[lo:hi]
    return out


def substitution_x(rate):
    """The released x-axis of a substitution rate: ``true/error = (1 − p)/p`` (``inf`` at 0).

    Examples
    --------
    >>> substitution_x(0.5)
    1.0
    >>> round(substitution_x(1 / 1001), 6)
    1000.0
    """
    p = np.asarray(rate, dtype=float)
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        msg = f"substitution rates must lie in [0, 1], got {rate!r}"
        raise ValueError(msg)
    with np.errstate(divide="ignore"):
        x = np.where(p > 0, (1.0 - p) / np.where(p > 0, p, 1.0), np.inf)
    return x if x.ndim else float(x)


def rates_for_x(x):
    """Substitution rates ``p = 1/(1 + x)`` whose x-axis value is ``x`` (the inverse of
    :func:`substitution_x`).

    Examples
    --------
    >>> rates_for_x([1.0, 1000.0]).round(6).tolist()
    [0.5, 0.000999]
    """
    x = np.asarray(x, dtype=float)
    if np.any(x < 0):
        msg = "x = (1 - p)/p must be non-negative"
        raise ValueError(msg)
    return 1.0 / (1.0 + x)


def substitution_grid(*, lo: float = -3.0, hi: float = 6.0, n: int = 10) -> np.ndarray:
    """Substitution rates with ``(1 − p)/p`` log-spaced from ``10**lo`` to ``10**hi`` (highest
    rate first).  The defaults are the paper's ten levels (``p`` from 0.999 down to 1e-6).

    Examples
    --------
    >>> substitution_grid().round(6)[[0, 3, -1]].tolist()
    [0.999001, 0.5, 1e-06]
    """
    return rates_for_x(np.logspace(lo, hi, n))


def corrupt(data, level: float, *, seed: int = 0):
    """The pipeline's corruption for sequences: substitute at rate ``level``.

    Parameters
    ----------
    data
        A :class:`~helpers.datasets.sequences.SequenceData` (not modified).
    level
        Substitution rate ``p``.
    seed
        Seed of the substitutions.

    Returns
    -------
    (SequenceData, float)
        The substituted copy and its x-axis value ``(1 − p)/p``.

    Examples
    --------
    >>> from helpers.datasets.sequences import SequenceData
    >>> noisy, x = corrupt(SequenceData(["MFVFLV", "MFVFLL"]), 0.5, seed=0)
    >>> len(noisy), x
    (2, 1.0)
    """
    if not hasattr(data, "sequences") or not hasattr(data, "with_sequences"):
        msg = f"data must be a SequenceData, got {type(data).__name__}"
        raise TypeError(msg)
    noisy = substitute(data.sequences, level, seed=seed)
    return data.with_sequences(noisy), substitution_x(level)


#: Substitution rates of a sweep per base profile, cleanest first (the task's ``levels``):
#: ``paper`` the authors' ten, ``(1 − p)/p ∈ logspace(−3, 6, 10)``; ``quick`` seven, with
#: ``(1 − p)/p`` at 10⁶, 10⁴ and every half decade from 10³ down to 10, where the curve of the
#: quick data turns; ``smoke`` three.  ``[round(substitution_x(r)) for r in levels(None,
#: "quick")]`` is ``[1000000, 10000, 1000, 316, 100, 32, 10]``.
levels = profiles.PerProfile({
    "paper": tuple(substitution_grid()[::-1]),
    "quick": tuple(rates_for_x(10.0 ** np.array([6.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0]))),
    "smoke": tuple(rates_for_x([1e5, 300.0, 10.0])),
})


def tolerance(fits, *, rate: float = 1e-3, fraction: float = 0.9, by: str = "model"):
    """What fitted noise laws (on ``x = (1 − p)/p``) say about tolerable substitution rates.

    Parameters
    ----------
    fits
        A ``helpers.laws.fit_table`` of noise-law fits, one row per curve.
    rate
        The substitution rate to read the curves at (the paper: "stable up to about 1 in
        1,000").
    fraction
        The share of ``I_max`` that defines "still stable".
    by
        The column naming each curve.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``u_bar``, ``i_max``, ``r_squared``, ``mi_at_rate`` (the fitted MI at
        ``rate``), ``fraction_at_rate`` (its share of ``I_max``) and ``rate_at_fraction``
        (the substitution rate at which the fit falls to ``fraction`` of ``I_max``; larger is
        more robust). Failed fits give ``nan``.

    Examples
    --------
    >>> import pandas as pd
    >>> from helpers import laws
    >>> x = np.geomspace(1e-2, 1e6, 12)
    >>> fits = laws.fit_table(pd.DataFrame({"model": "m", "x": x, "mi": laws.noise_law(x, 30, 3)}),
    ...                       "model", law="noise", x="x", y="mi")
    >>> row = tolerance(fits).iloc[0]
    >>> round(row["u_bar"]), round(float(row["fraction_at_rate"]), 3)
    (30, 0.993)
    """
    import pandas as pd

    from .. import laws

    rows = []
    x_rate = substitution_x(rate)
    for _, f in fits.iterrows():
        ok = bool(f.get("success", False)) and np.isfinite(f.get("u_bar", np.nan))
        u, i = (float(f["u_bar"]), float(f["i_max"])) if ok else (np.nan, np.nan)
        mi = float(laws.noise_law(x_rate, u, i)) if ok else np.nan
        x_frac = float(laws.invert_noise_law(fraction * i, u, i)) if ok else np.nan
        rows.append({
            by: f[by], "u_bar": u, "i_max": i, "r_squared": f.get("r_squared", np.nan),
            "mi_at_rate": mi, "fraction_at_rate": mi / i if ok and i > 0 else np.nan,
            "rate_at_fraction": float(rates_for_x(x_frac)) if ok else np.nan,
        })
    return pd.DataFrame(rows)
