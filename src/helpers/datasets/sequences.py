"""Protein-sequence datasets: SARS-CoV-2 spike sequences with their collection month.

Every loader returns a :class:`SequenceData`: ``sequences`` (a 1-D object array of upper-case
amino-acid strings) and ``obs`` (a :class:`pandas.DataFrame`, one row per sequence, holding the
signals, e.g. ``obs["month"]``, and ``obs["split"]`` = ``"train"``/``"test"`` where the
dataset defines its split).

===========================  =========  ==========================================================
loader                       profile    what it is
===========================  =========  ==========================================================
:func:`load_gisaid`          ``paper``  the paper's data: a user's GISAID spike export, at most
                                        1,000 sequences per collection month, split 75/25
:func:`load_ncov_spike_s1`   ``quick``  the S1 subunit of the spikes translated from the 418
                                        public GenBank genomes of the nextstrain ``ncov`` example
                                        (2019-12 to 2020-05); :func:`load_ncov_spike` for the
                                        whole protein
===========================  =========  ==========================================================

Signals at the two scales
-------------------------
The paper probes the collection month (``month`` = months since January 2020) over 71 months
of the pandemic.  The nextstrain example spans six months, 297 of its sequences from March
2020, and its spike proteins differ almost only at residue 614 (D614G), whose frequency barely
changes between March and April: the month carries next to no information there.  The quick
profile therefore probes the *lineage* that D614G defines (``obs["lineage"]``: ``"D614"``,
the ancestral spike of Nextstrain clades 19A/19B, or ``"G614"``, clade 20A and its
descendants), read from the clean translated sequence; ``month`` is kept in ``obs``.
"""

from __future__ import annotations

import gzip
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.data import fetch

__all__ = [
    "GISAID_KEY",
    "S1",
    "S_GENE",
    "SequenceData",
    "load_gisaid",
    "load_ncov_spike",
    "load_ncov_spike_s1",
    "months_since_2020",
    "read_fasta",
    "split_train_test",
    "translate",
]

#: The S1 subunit of the spike (residues 1-685 with the signal peptide), which holds residue 614.
S1 = (1, 685)
#: Manifest key of the user-supplied GISAID spike export (the paper's data).
GISAID_KEY = "gisaid/spike_sequences"
#: The S gene on the Wuhan-Hu-1 reference (MN908947), 1-based inclusive with its stop codon,
#: from nextstrain/ncov ``defaults/annotation.gff`` (gene_name "S": 21563-25384).
S_GENE = (21563, 25384)
_REFERENCE_STRAIN = "Wuhan/Hu-1/2019"
_ANCHOR = 30  # nucleotides before / at the start of S used to locate it in each genome

_CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"  # TCAG order
_NT = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"TCAG"):
    _NT[_b] = _i
    _NT[ord(chr(_b).lower())] = _i
_NT[ord("U")] = _NT[ord("u")] = 0


class SequenceData:
    """Sequences and their per-sequence annotations (the pipeline's sequence container).

    Parameters
    ----------
    sequences
        Strings (amino acids, upper case); stored as a 1-D object array (copied).
    obs
        One row per sequence (signals such as ``month``); default: an empty frame.
    uns
        Free-form provenance (dataset name, source, filters applied).

    Examples
    --------
    >>> data = SequenceData(["MFV", "MFL", "MYV"], obs=pd.DataFrame({"month": [0, 1, 2]}))
    >>> len(data), data[np.array([2, 0])].obs["month"].tolist()
    (3, [2, 0])
    """

    def __init__(self, sequences, obs: pd.DataFrame | None = None, uns: dict | None = None):
        if isinstance(sequences, str):
            msg = "sequences must be a list or array of strings, not one string"
            raise TypeError(msg)
        seqs = np.empty(len(sequences), dtype=object)
        for i, s in enumerate(sequences):
            if not isinstance(s, str):
                msg = f"sequence {i} is a {type(s).__name__}, not a str"
                raise TypeError(msg)
            seqs[i] = s
        if obs is None:
            obs = pd.DataFrame(index=pd.RangeIndex(len(seqs)))
        if not isinstance(obs, pd.DataFrame):
            msg = f"obs must be a pandas DataFrame, got {type(obs).__name__}"
            raise TypeError(msg)
        if len(obs) != len(seqs):
            msg = f"obs has {len(obs)} rows for {len(seqs)} sequences"
            raise ValueError(msg)
        self.sequences = seqs
        self.obs = obs.copy()
        self.uns = dict(uns or {})

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, idx) -> SequenceData:
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                msg = f"boolean index of shape {idx.shape} for {len(self)} sequences"
                raise IndexError(msg)
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            msg = "SequenceData is subset by a 1-D integer (or boolean) index array"
            raise IndexError(msg)
        return SequenceData(self.sequences[idx], self.obs.iloc[idx], self.uns)

    def copy(self) -> SequenceData:
        return SequenceData(self.sequences.copy(), self.obs, self.uns)

    def with_sequences(self, sequences) -> SequenceData:
        """A copy holding ``sequences`` (same number) in place of these, same ``obs``."""
        if len(sequences) != len(self):
            msg = f"{len(sequences)} sequences given for {len(self)} rows"
            raise ValueError(msg)
        return SequenceData(sequences, self.obs, self.uns)

    @property
    def n_obs(self) -> int:
        """Number of sequences (the AnnData name, so that signal helpers take either)."""
        return len(self.sequences)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.sequences), dtype=int, count=len(self))

    def __repr__(self) -> str:
        cols = ", ".join(map(str, self.obs.columns)) or "-"
        return f"SequenceData({len(self)} sequences; obs: {cols})"


# --------------------------------------------------------------------------------------------
# FASTA, translation, dates
# --------------------------------------------------------------------------------------------
def read_fasta(path) -> OrderedDict:
    """Records of a FASTA file (plain or ``.gz``) as ``{header: sequence}``, in file order.

    The header is the text after ``>`` (whole line, stripped); sequence lines are joined and
    upper-cased.  A file without a header line is a ``ValueError``.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    records: OrderedDict[str, list[str]] = OrderedDict()
    current = None
    with opener(path, "rt", encoding="ascii", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                current = line[1:].strip()
                records.setdefault(current, [])
            elif current is None:
                msg = f"{path} is not FASTA: sequence data before the first '>' header"
                raise ValueError(msg)
            else:
                records[current].append(line)
    return OrderedDict((k, "".join(v).upper()) for k, v in records.items())


def translate(nucleotides: str) -> str:
    """Translate a coding sequence with the standard genetic code.

    Codons are read from the first base; a trailing partial codon is dropped; a codon with any
    base other than A, C, G, T/U (e.g. ``N``, ``R``, ``-``) becomes ``X``; stop codons are ``*``.

    Examples
    --------
    >>> translate("ATGTTTGTTTTTCTTNTAtaa")
    'MFVFLX*'
    """
    codes = _NT[np.frombuffer(nucleotides.encode("ascii", errors="replace"), dtype=np.uint8)]
    n = codes.size // 3
    c = codes[: 3 * n].reshape(n, 3).astype(np.int64)
    bad = (c > 3).any(axis=1)
    idx = np.where(bad, 0, 16 * c[:, 0] + 4 * c[:, 1] + c[:, 2])
    aa = np.frombuffer(_CODE.encode("ascii"), dtype=np.uint8)[idx]
    aa = np.where(bad, ord("X"), aa).astype(np.uint8)
    return aa.tobytes().decode("ascii")


def months_since_2020(dates) -> np.ndarray:
    """Months since January 2020 (0 = 2020-01, -1 = 2019-12) of ``YYYY-MM-DD`` dates, as the
    authors computed them; a date without a valid month or day (``2020-03-00``, ``2020``,
    ``?``) gives ``-9999``.

    Examples
    --------
    >>> months_since_2020(["2019-12-30", "2020-03-05", "2025-04-01", "2020-03"]).tolist()
    [-1, 2, 63, -9999]
    """
    out = []
    for d in dates:
        d = str(d)
        ok = (
            len(d) == 10 and d[4] == "-" and d[7] == "-" and d[:4].isdigit()
            and d[5:7].isdigit() and d[8:].isdigit() and d[5:7] != "00" and d[8:] != "00"
        )
        out.append((int(d[:4]) - 2020) * 12 + int(d[5:7]) - 1 if ok else -9999)
    return np.asarray(out, dtype=int)


def split_train_test(n: int, *, test_fraction: float = 0.25, seed: int = 42) -> np.ndarray:
    """``"train"``/``"test"`` labels of ``n`` samples, as scikit-learn's ``train_test_split``
    (``test_size=test_fraction, random_state=seed``) splits them: the authors' 75/25 split."""
    from sklearn.model_selection import train_test_split

    _, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)
    labels = np.full(n, "train", dtype=object)
    labels[test] = "test"
    return labels


# --------------------------------------------------------------------------------------------
# Quick profile: the nextstrain example genomes
# --------------------------------------------------------------------------------------------
def _locate_s(genome: str, anchors: tuple[str, str]) -> int:
    """0-based start of the S gene in ``genome``: after the reference flank, else at the
    reference's first S bases; -1 when neither is found."""
    before, start = anchors
    i = genome.find(before)
    if i >= 0:
        return i + len(before)
    return genome.find(start)


def load_ncov_spike(*, residues: tuple[int, int] | None = None, max_ambiguous: float = 0.01,
                    test_fraction: float = 0.25, seed: int = 42) -> SequenceData:
    """Spike proteins of the nextstrain ``ncov`` example genomes (418 GenBank genomes).

    The S gene is located in every genome by the 30 reference bases before it (else its first
    30 bases) taken from the Wuhan-Hu-1 genome of the same file (:data:`S_GENE`), and its 1,273
    codons are translated (:func:`translate`; no stop codon kept).  Genomes where S cannot be
    found, whose protein has an internal stop, or more than ``max_ambiguous`` of ``X`` residues
    (sequencing dropouts, which otherwise dominate the variation between these near-identical
    proteins) are left out; their numbers are in ``uns["filtered"]``.

    ``obs``: ``strain``, ``date``, ``month`` (months since 2020-01), ``region``, ``country``,
    ``lineage`` (``"D614"``/``"G614"``, or ``""`` when residue 614 is another letter) and
    ``split`` (75/25, :func:`split_train_test`).

    ``residues`` = ``(first, last)`` (1-based, inclusive) keeps that stretch of each protein,
    e.g. ``(1, 685)`` for the S1 subunit (with its signal peptide), which holds residue 614.

    Examples
    --------
    >>> data = load_ncov_spike()  # doctest: +SKIP
    >>> len(data), data.obs["lineage"].value_counts().to_dict()  # doctest: +SKIP
    """
    genomes = read_fasta(fetch("ncov/example_sequences"))
    meta = pd.read_csv(fetch("ncov/example_metadata"), sep="\t", dtype=str)
    if residues is not None and not (1 <= residues[0] <= 614 <= residues[1] <= 1273):
        msg = f"residues must be (first, last) within 1..1273 and include 614, got {residues}"
        raise ValueError(msg)
    if _REFERENCE_STRAIN not in genomes:
        msg = f"the nextstrain example lacks the reference genome {_REFERENCE_STRAIN!r}"
        raise ValueError(msg)
    ref = genomes[_REFERENCE_STRAIN]
    lo, hi = S_GENE
    anchors = (ref[lo - 1 - _ANCHOR : lo - 1], ref[lo - 1 : lo - 1 + _ANCHOR])
    n_codons = (hi - lo + 1) // 3 - 1
    meta = meta.drop_duplicates("strain").set_index("strain")
    rows, seqs = [], []
    filtered = {"S not found": 0, "internal stop": 0, "ambiguous": 0, "no metadata": 0}
    for strain, genome in genomes.items():
        if strain not in meta.index:
            filtered["no metadata"] += 1
            continue
        start = _locate_s(genome, anchors)
        if start < 0:
            filtered["S not found"] += 1
            continue
        protein = translate(genome[start : start + 3 * n_codons])
        if len(protein) < n_codons or "*" in protein:
            filtered["internal stop"] += 1
            continue
        if protein.count("X") > max_ambiguous * len(protein):
            filtered["ambiguous"] += 1
            continue
        m = meta.loc[strain]
        res = protein[613]
        rows.append({
            "strain": strain, "date": m["date"], "region": m["region"], "country": m["country"],
            "lineage": {"D": "D614", "G": "G614"}.get(res, ""),
        })
        seqs.append(protein if residues is None else protein[residues[0] - 1 : residues[1]])
    obs = pd.DataFrame(rows)
    obs["month"] = months_since_2020(obs["date"])
    obs["split"] = split_train_test(len(obs), test_fraction=test_fraction, seed=seed)
    return SequenceData(seqs, obs, {
        "dataset": "ncov_example", "source": "nextstrain/ncov example (GenBank)",
        "filtered": filtered, "gene": "S", "n_genomes": len(genomes), "residues": residues,
    })


def load_ncov_spike_s1() -> SequenceData:
    """The quick profile's data: the S1 subunit (residues 1-685, signal peptide included,
    residue 614 inside) of the nextstrain example spikes whose residue 614 is D or G.

    Half the length of the whole spike halves the cost of every model, and S1 holds the
    lineage-defining residue; ``lineage`` is the signal (see the module docstring).
    """
    data = load_ncov_spike(residues=S1)
    data = data[np.flatnonzero(data.obs["lineage"].to_numpy() != "")]
    data.uns["dataset"] = "ncov_spike_s1"
    return data


# --------------------------------------------------------------------------------------------
# Paper profile: a user's GISAID export
# --------------------------------------------------------------------------------------------
_GISAID_HELP = (
    "GISAID does not allow redistribution, so the paper's spike sequences must come from your "
    "own GISAID account: download the spike-protein FASTA (EpiCoV 'Downloads' > 'spikeprot' "
    "archive; headers 'Spike|hCoV-19/...|YYYY-MM-DD|EPI_ISL_...|...', the paper used the "
    "2025-04-30 release) and save it as <mirror>/full/gisaid/spike_sequences.fasta (mirror: "
    "NOISESCALING_DATA_MIRROR) or in the cache folder, then call load_gisaid(); or pass "
    "fasta=... (and metadata=... with the collection dates when the headers lack them)."
)


def load_gisaid(
    fasta=None,
    metadata=None,
    *,
    max_per_month: int = 1000,
    test_fraction: float = 0.25,
    seed: int = 42,
    date_field: int = 2,
    id_column: str = "Virus name",
    date_column: str = "Collection date",
) -> SequenceData:
    """The paper's GISAID spike data: at most ``max_per_month`` sequences per month, split 75/25.

    As the authors did: records are read in file order; a record's date is the ``date_field``-th
    ``|``-separated field of its header (0-based; field 2 of GISAID's ``spikeprot`` headers)
    or, with ``metadata``, the ``date_column`` of the metadata row whose ``id_column`` equals
    the header's first ``|`` field after any ``Spike|`` prefix; records without a full
    ``YYYY-MM-DD`` date (month or day ``00``) are skipped; the first ``max_per_month`` records
    of each month (months since 2020-01) are kept, grouped by month in order of first
    appearance; and ``split`` is scikit-learn's ``train_test_split`` with ``test_size=0.25,
    random_state=42`` (the paper: 63,374 sequences over 71 months).

    Parameters
    ----------
    fasta
        The spike FASTA; default: the manifest entry ``gisaid/spike_sequences`` (the mirror or
        cache copy; GISAID data are never downloaded).
    metadata
        Optional GISAID metadata TSV with ``id_column`` and ``date_column``.

    Raises
    ------
    FileNotFoundError
        No export supplied; the message says what to download and where to put it.
    """
    if fasta is None:
        from helpers.data import DataUnavailableError

        try:
            fasta = fetch(GISAID_KEY)
        except (DataUnavailableError, FileNotFoundError) as err:
            raise FileNotFoundError(_GISAID_HELP) from err
    fasta = Path(fasta)
    if not fasta.exists():
        msg = f"No GISAID export at {fasta}. {_GISAID_HELP}"
        raise FileNotFoundError(msg)
    dates_by_id = None
    if metadata is not None:
        meta = pd.read_csv(metadata, sep="\t", dtype=str, usecols=[id_column, date_column])
        dates_by_id = dict(zip(meta[id_column], meta[date_column], strict=True))
    by_month: OrderedDict[int, list[tuple[str, str, str]]] = OrderedDict()
    for header, seq in read_fasta(fasta).items():
        fields = header.split("|")
        if dates_by_id is not None:
            ident = fields[1] if fields[0] == "Spike" and len(fields) > 1 else fields[0]
            date = str(dates_by_id.get(ident, "?"))
        else:
            date = (fields + ["?"] * (date_field + 1))[date_field]
        month = int(months_since_2020([date])[0])
        if month == -9999:
            continue
        kept = by_month.setdefault(month, [])
        if len(kept) < max_per_month:
            kept.append((header, date, seq))
    if not by_month:
        msg = (
            f"No record of {fasta} has a full YYYY-MM-DD collection date (header field "
            f"{date_field} or the metadata); check the export format. {_GISAID_HELP}"
        )
        raise ValueError(msg)
    rows = [(h, d, m, s) for m, recs in by_month.items() for h, d, s in recs]
    obs = pd.DataFrame({"header": [r[0] for r in rows], "date": [r[1] for r in rows],
                        "month": [r[2] for r in rows]})
    obs["split"] = split_train_test(len(obs), test_fraction=test_fraction, seed=seed)
    return SequenceData([r[3] for r in rows], obs, {
        "dataset": "gisaid", "source": os.fspath(fasta), "max_per_month": max_per_month,
        "n_months": len(by_month),
    })
