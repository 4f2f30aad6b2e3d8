"""Loaders returning AnnData with raw integer counts and the auxiliary signal of each task.

Every loader reads its files only through :func:`helpers.data.fetch` (the checksummed manifest)
and returns an :class:`anndata.AnnData` laid out the same way:

* ``X``: raw UMI / transcript counts, cells × genes, a :class:`scipy.sparse.csr_matrix` of
  dtype ``float32`` holding whole numbers (float32 is what scanpy and scvi-tools expect, and it
  represents every integer below 2**24 exactly; :func:`validate_counts` checks this). Cells
  without a single count are removed (their number is in ``uns["dataset"]["n_empty_removed"]``).
* ``var_names``: gene names; ``obs_names``: cell ids from the source files.
* the auxiliary signal, in the place named by :func:`tasks` (column ``location``):

  ==================  ===========================  ========  =================================
  signal              where                        kind      probe target Y
  ==================  ===========================  ========  =================================
  ``protein_counts``  ``obsm["protein_counts"]``   vector    ``log1p`` protein counts
  ``celltype.l3``     ``obs["celltype.l3"]``       labels    integer category codes
  ``clone``           ``obs["clone"]``,            partner   representation of a clonally
                      ``obs["day"]``                         related cell (early ↔ late)
  ``ng_idx``          ``obsm["spatial"]``          partner   representation of one of the 5
                                                             nearest cells in the tissue
  ``day``             ``obs["day"]``               scalar    time point (days)
  ``author_day``      ``obs["author_day"]``        scalar    embryonic day
  ==================  ===========================  ========  =================================

"partner" signals are pairs of cells: the probe measures the MI between the representation of
one cell and the representation of its partner *under the same model*. They are drawn at
random (seeded) by :func:`clonal_pairs` and :func:`spatial_neighbour_pairs`;
:func:`auxiliary_signal` returns every signal in the shape a chapter needs::

    E = model.embed(adata)                       # n_cells × d, one model
    sig = auxiliary_signal(adata, "clone", seed=0, restrict_to=eval_idx)
    X_probe = E[sig.index]
    Y_probe = E[sig.target]                      # partner kind: target holds cell indices
    # vector / scalar / labels kinds: Y_probe = sig.target (values, aligned with sig.index)

The evaluation set must keep each pair together (a partner of an evaluation cell is never a
training cell); :mod:`helpers.splits` does this with groups::

    pairs = auxiliary_signal(adata, "clone", seed=0)           # all pairs of the dataset
    groups = splits.pair_groups(adata.n_obs, pairs.index, pairs.target)
    eligible = np.r_[pairs.index, pairs.target]                # hold out paired cells only
    pool, eval_idx = splits.evaluation_split(adata.n_obs, n_eval=120, seed=0,
                                             groups=groups, eligible=eligible)
    sig = auxiliary_signal(adata, "clone", seed=0, restrict_to=eval_idx)  # 60 pairs

Quick-profile datasets (small, real; in the offline mirror or in a package registry):
:func:`load_pbmc10k`, :func:`load_larry_subset`, :func:`load_osmfish`,
:func:`load_klein2015`. Paper-profile datasets (large, downloaded from
the sources named in ``data_manifest.yml``): :func:`load_hao2021_pbmc`, :func:`load_larry_full`,
:func:`load_merfish_s1r1`, :func:`load_qiu2024_embryo`. :func:`load_dataset` picks one by name
and profile.
"""

from __future__ import annotations

import gzip
import tarfile
import warnings
from collections.abc import Callable, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from helpers._checks import count_matrix
from helpers.data import fetch

__all__ = [
    "counts_from_normalised",
    "dataset_names",
    "load_dataset",
    "load_dlpfc_visium",
    "load_hao2021_pbmc",
    "load_larry_full",
    "load_klein2015",
    "load_larry_subset",
    "load_merfish_s1r1",
    "load_osmfish",
    "load_pbmc10k",
    "load_qiu2024_embryo",
    "validate_counts",
]


# --------------------------------------------------------------------------------------------
# Count validation
# --------------------------------------------------------------------------------------------


def validate_counts(x, *, name: str = "counts") -> sp.csr_matrix:
    """Check that a matrix holds raw counts and return it as CSR ``float32``.

    Parameters
    ----------
    x
        Dense array, DataFrame or scipy sparse matrix (cells × features).
    name
        What the matrix is, for error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        A new matrix (``x`` is never modified): the same values, dtype ``float32``, duplicate
        entries summed, explicit zeros removed, indices sorted.

    Raises
    ------
    ValueError
        A value is not finite, negative, not a whole number, or too large to be exact in
        float32 (≥ 2**24); checked in the input's own dtype, so dense and sparse input are
        judged alike (:func:`helpers._checks.count_matrix`).

    Examples
    --------
    >>> validate_counts(np.array([[0, 2], [1, 0]])).toarray()
    array([[0., 2.],
           [1., 0.]], dtype=float32)
    >>> validate_counts(np.array([[0.5]]))
    Traceback (most recent call last):
    ...
    ValueError: counts must hold whole numbers (raw counts); found 1 non-integer value(s), e.g. 0.5.
    """
    return count_matrix(x, name=name)


def counts_from_normalised(x, *, atol: float = 1e-2, name: str = "counts") -> sp.csr_matrix:
    """Recover integer counts from per-cell normalised counts.

    Each cell (row) of a library-size normalised matrix is its raw counts times one factor. The
    smallest non-zero value of a cell is that factor times its smallest count, which is 1 in any
    cell with a singleton transcript, so dividing the row by it gives the raw counts. The result
    is rounded, after checking that no value was further than ``atol`` from a whole number (a
    row whose smallest count is not 1, or data that is not linearly normalised, fails this).

    Parameters
    ----------
    x
        Normalised counts, cells × genes (sparse or dense).
    atol
        Largest allowed distance from a whole number before rounding.
    name
        What the matrix is, for error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        Integer-valued ``float32`` counts. Rows without any non-zero value stay empty.

    Raises
    ------
    ValueError
        Negative or non-finite input, or a row that does not scale to whole numbers.

    Examples
    --------
    >>> x = np.array([[2.5, 0.0, 7.5], [0.0, 0.4, 0.8]])
    >>> counts_from_normalised(x).toarray()
    array([[1., 0., 3.],
           [0., 1., 2.]], dtype=float32)
    """
    m = sp.csr_matrix(x, dtype=np.float64, copy=True)
    m.eliminate_zeros()
    if not np.all(np.isfinite(m.data)) or (m.data.size and m.data.min() < 0):
        msg = f"{name}: normalised counts must be finite and non-negative."
        raise ValueError(msg)
    nnz = np.diff(m.indptr)
    has = nnz > 0
    row_min = np.zeros(m.shape[0])
    row_min[has] = np.minimum.reduceat(m.data, m.indptr[:-1][has])
    m.data /= np.repeat(np.where(has, row_min, 1.0), nnz)
    deviation = np.abs(m.data - np.round(m.data))
    if deviation.size and deviation.max() > atol:
        worst = int(np.searchsorted(m.indptr, int(np.argmax(deviation)), side="right") - 1)
        msg = (
            f"{name}: dividing each cell by its smallest non-zero value does not give whole "
            f"numbers (max deviation {deviation.max():.3g} > atol={atol}, e.g. in row {worst}); "
            "the matrix is not per-cell linearly normalised counts."
        )
        raise ValueError(msg)
    m.data = np.round(m.data)
    return validate_counts(m, name=name)


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _finish(
    adata: ad.AnnData,
    *,
    dataset: str,
    keys: Sequence[str],
    notes: str = "",
    **extra,
) -> ad.AnnData:
    """Drop cells without counts and record provenance in ``uns["dataset"]``."""
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    empty = totals == 0
    if empty.any():
        adata = adata[~empty].copy()
    info = {
        "name": dataset,
        "manifest_keys": list(keys),
        "counts": "raw integer counts in X (CSR, float32)",
        "n_empty_removed": int(empty.sum()),
        "notes": notes,
    }
    info.update(extra)
    adata.uns["dataset"] = info
    return adata


def _clone_labels(clone_matrix) -> tuple[np.ndarray, int]:
    """Clone id per cell from a cells × clones matrix: -1 for none (or for several clones)."""
    c = sp.csr_matrix(clone_matrix)
    c.eliminate_zeros()
    n_per_cell = np.diff(c.indptr)
    labels = np.full(c.shape[0], -1, dtype=np.int64)
    single = n_per_cell == 1
    labels[single] = c.indices[c.indptr[:-1][single]]
    return labels, int(np.sum(n_per_cell > 1))


def _to_str(values) -> np.ndarray:
    """Decode the byte strings of loom/HDF5 attributes."""
    values = np.asarray(values)
    if values.dtype.kind == "S" or (
        values.dtype == object and values.size and isinstance(values.flat[0], bytes)
    ):
        return np.array([v.decode() for v in values.tolist()], dtype=object).astype(str)
    return values.astype(str)


# --------------------------------------------------------------------------------------------
# Quick-profile loaders
# --------------------------------------------------------------------------------------------


def load_pbmc10k() -> ad.AnnData:
    """10x Genomics PBMC 10k CITE-seq: RNA counts and 14 surface-protein counts.

    Reads the features × cells CSVs ``pbmc10k/rna`` and ``pbmc10k/protein`` (totalVI
    reproducibility release), checks that both list the same cell barcodes in the same order,
    and returns cells × genes.

    Returns
    -------
    anndata.AnnData
        6,855 cells × 4,000 genes. ``obsm["protein_counts"]``: raw protein counts (cells × 14,
        float32, whole numbers), protein names in ``uns["protein_names"]``.

    Raises
    ------
    ValueError
        The two files disagree on the cell barcodes, or a count is not a whole number.

    Examples
    --------
    >>> adata = load_pbmc10k()  # doctest: +SKIP
    >>> adata.shape, adata.obsm["protein_counts"].shape  # doctest: +SKIP
    ((6855, 4000), (6855, 14))
    """
    keys = ("pbmc10k/rna", "pbmc10k/protein")
    rna = pd.read_csv(fetch(keys[0]), index_col=0)
    protein = pd.read_csv(fetch(keys[1]), index_col=0)
    if not rna.columns.equals(protein.columns):
        only_rna = rna.columns.difference(protein.columns)
        only_protein = protein.columns.difference(rna.columns)
        msg = (
            "PBMC 10k: RNA and protein files do not list the same cell barcodes in the same "
            f"order ({rna.shape[1]} vs {protein.shape[1]} cells; {len(only_rna)} only in RNA, "
            f"{len(only_protein)} only in protein)."
        )
        raise ValueError(msg)
    x = validate_counts(rna.to_numpy().T, name="PBMC 10k RNA counts")
    prot = validate_counts(protein.to_numpy().T, name="PBMC 10k protein counts")
    adata = ad.AnnData(
        X=x,
        obs=pd.DataFrame(index=pd.Index(rna.columns.astype(str), name="barcode")),
        var=pd.DataFrame(index=pd.Index(rna.index.astype(str), name="gene")),
    )
    adata.obsm["protein_counts"] = prot.toarray()
    adata.uns["protein_names"] = np.asarray(protein.index.astype(str))
    return _finish(
        adata,
        dataset="pbmc10k",
        keys=keys,
        notes="4,000-gene subset of the 10x pbmc_10k_protein_v3 release",
    )


def load_larry_subset() -> ad.AnnData:
    """781-cell subset of LARRY in-vitro haematopoiesis (CoSpar test data), integer counts.

    The file's ``X`` is normalised per cell; :func:`counts_from_normalised` recovers the raw
    counts (the largest deviation from whole numbers in this file is about 6e-5).

    Returns
    -------
    anndata.AnnData
        781 cells × 2,481 genes, with ``obs["day"]`` (2, 4 or 6, float), ``obs["time_info"]``
        (the original categorical), ``obs["state_info"]`` (cell type), ``obs["clone"]`` (clone
        id, the column of ``obsm["X_clone"]``; -1 for none), ``obsm["X_clone"]`` (cells ×
        clones, CSR) and ``obsm["X_emb"]`` (the SPRING layout of the source).

    Examples
    --------
    >>> adata = load_larry_subset()  # doctest: +SKIP
    >>> adata.shape, sorted(adata.obs["day"].unique())  # doctest: +SKIP
    ((781, 2481), [2.0, 4.0, 6.0])
    """
    key = "larry/cospar_subset"
    with warnings.catch_warnings():  # the file predates anndata's encoding metadata
        warnings.simplefilter("ignore", ad.OldFormatWarning)
        src = ad.read_h5ad(fetch(key))
    x = counts_from_normalised(src.X, name="LARRY subset")
    obs = pd.DataFrame(index=src.obs_names.astype(str))
    obs["time_info"] = src.obs["time_info"].values
    obs["day"] = pd.to_numeric(src.obs["time_info"].astype(str)).astype(np.float64).values
    obs["state_info"] = src.obs["state_info"].values
    clones = sp.csr_matrix(src.obsm["X_clone"]).astype(np.float32)
    obs["clone"], n_multi = _clone_labels(clones)
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=src.var_names.astype(str)))
    adata.obsm["X_clone"] = clones
    if "X_emb" in src.obsm:
        adata.obsm["X_emb"] = np.asarray(src.obsm["X_emb"])
    return _finish(
        adata,
        dataset="larry_subset",
        keys=(key,),
        n_cells_in_several_clones=n_multi,
        notes="counts recovered from per-cell normalised X (counts_from_normalised)",
    )


#: Members of the tmscc 0.3.0 source distribution that hold the Klein et al. 2015 subset.
_KLEIN_MEMBERS = (
    "tmscc-0.3.0/tmscc/data/klein/profile.txt",
    "tmscc-0.3.0/tmscc/data/klein/labels.txt",
)


def load_klein2015() -> ad.AnnData:
    """Klein et al. 2015 mouse embryonic stem cells after LIF withdrawal: a time course.

    inDrop UMI counts of 1,000 cells sampled 0, 2, 4 and 7 days after LIF withdrawal
    (GSE65525), restricted to 900 highly expressed genes, as redistributed inside the MIT
    licensed ``tmscc`` 0.3.0 source distribution on PyPI (the only public copy reachable from
    a package registry).  The archive is fetched through the manifest (entry
    ``klein2015/tmscc_sdist``) and the two data files are read from it without unpacking.

    Returns
    -------
    anndata.AnnData
        1,000 cells × 900 genes, raw integer counts in ``X``; ``obs["day"]`` (0, 2, 4 or 7,
        float), the auxiliary signal of the temporal task at the quick profile.

    Raises
    ------
    ValueError
        The archive lacks the data files, the labels do not match the cells, or a count is not
        a whole number.

    Examples
    --------
    >>> adata = load_klein2015()  # doctest: +SKIP
    >>> adata.shape, sorted(adata.obs["day"].unique())  # doctest: +SKIP
    ((1000, 900), [0.0, 2.0, 4.0, 7.0])
    """
    key = "klein2015/tmscc_sdist"
    path = fetch(key)
    with tarfile.open(path, "r:gz") as archive:
        try:
            profile_file, labels_file = (archive.extractfile(m) for m in _KLEIN_MEMBERS)
        except KeyError as err:
            msg = f"{path.name}: no {err} in the archive; is it tmscc 0.3.0?"
            raise ValueError(msg) from err
        profile = pd.read_csv(profile_file, index_col=0)  # genes x cells
        labels = labels_file.read().decode().split()
    if len(labels) != profile.shape[1]:
        msg = f"Klein 2015: {len(labels)} day labels for {profile.shape[1]} cells."
        raise ValueError(msg)
    x = validate_counts(profile.to_numpy().T, name="Klein 2015 counts")
    obs = pd.DataFrame(index=pd.Index(profile.columns.astype(str), name="cell"))
    obs["day"] = np.asarray(labels, dtype=np.float64)
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=profile.index.astype(str)))
    return _finish(
        adata,
        dataset="klein2015",
        keys=(key,),
        notes="900-gene, 1,000-cell subset of GSE65525 from the tmscc 0.3.0 sdist",
    )


_DLPFC_SECTIONS = ("151673", "151674", "151675", "151676")


def load_dlpfc_visium(section: str = "151673") -> ad.AnnData:
    """One 10x Visium section of human dorsolateral prefrontal cortex (Maynard et al. 2021).

    Raw UMI counts of the spots of one section with their positions and the manual annotation
    of the cortical layer each spot lies in (layers 1-6 and white matter), as redistributed in
    the BSD-3 licensed ``paste2`` 1.0.1 source distribution on PyPI (manifest entry
    ``dlpfc/paste2_sdist``), read from the archive without unpacking it. The book uses it as
    "your own data" (a dataset no other chapter uses); a Visium spot holds a few cells.

    Parameters
    ----------
    section
        ``"151673"``, ``"151674"``, ``"151675"`` or ``"151676"``.

    Returns
    -------
    anndata.AnnData
        Spots × 11,381 genes, raw counts in ``X``; ``obs["layer"]`` (categorical),
        ``obsm["spatial"]`` (pixel coordinates of the spot centres).

    Examples
    --------
    >>> adata = load_dlpfc_visium()  # doctest: +SKIP
    >>> adata.obs["layer"].nunique(), adata.obsm["spatial"].shape[1]  # doctest: +SKIP
    (7, 2)
    """
    import io

    if section not in _DLPFC_SECTIONS:
        msg = f"Unknown DLPFC section {section!r}; choose one of {_DLPFC_SECTIONS}."
        raise ValueError(msg)
    key = "dlpfc/paste2_sdist"
    path = fetch(key)
    member = f"paste2-1.0.1/sample_data/{section}.h5ad"
    with tarfile.open(path, "r:gz") as archive:
        try:
            raw = archive.extractfile(member).read()
        except KeyError as err:
            msg = f"{path.name}: no {member} in the archive; is it paste2 1.0.1?"
            raise ValueError(msg) from err
    source = ad.read_h5ad(io.BytesIO(raw))
    x = validate_counts(source.X, name=f"DLPFC {section} counts")
    obs = pd.DataFrame(index=source.obs_names.copy())
    obs["layer"] = pd.Categorical(source.obs["layer_guess"].astype(str))
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=source.var_names.copy()))
    adata.obsm["spatial"] = np.asarray(source.obsm["spatial"], dtype=np.float64)
    return _finish(adata, dataset=f"dlpfc_{section}", keys=(key,),
                   notes=f"Visium section {section} from the paste2 1.0.1 sdist")


def load_osmfish(*, drop_duplicates: bool = True) -> ad.AnnData:
    """osmFISH mouse somatosensory cortex (Codeluppi et al. 2018) with cell positions.

    Reads the loom file ``osmfish/cortex`` with h5py. Cells without counts are removed (41 in
    this file). The file also repeats 527 cells under a second ``CellID``, with identical
    position and identical counts (overlapping imaging tiles, apparently); with
    ``drop_duplicates`` only the first copy is kept, since a duplicate would be its own copy's
    nearest neighbour and inflate spatial-neighbour MI.

    Parameters
    ----------
    drop_duplicates
        Keep one copy of cells sharing both position and counts.

    Returns
    -------
    anndata.AnnData
        Cells × 33 genes (5,903 cells with the defaults); ``obsm["spatial"]`` (x, y
        coordinates, pixels of the source); ``obs`` keeps ``ClusterName``, ``ClusterID``,
        ``Region``, ``Valid`` (0 for cells the authors excluded from their analysis, kept here)
        and ``size_um2``.

    Examples
    --------
    >>> adata = load_osmfish()  # doctest: +SKIP
    >>> adata.n_vars, adata.obsm["spatial"].shape[1]  # doctest: +SKIP
    (33, 2)
    """
    import h5py

    key = "osmfish/cortex"
    with h5py.File(fetch(key), "r") as f:
        matrix = f["matrix"][:]
        genes = _to_str(f["row_attrs/Gene"][:])
        cols = {k: f["col_attrs"][k][:] for k in f["col_attrs"]}
    x = validate_counts(matrix.T, name="osmFISH counts")
    obs = pd.DataFrame(index=pd.Index(_to_str(cols["CellID"]), name="CellID"))
    for name in ("ClusterName", "Region"):
        obs[name] = pd.Categorical(_to_str(cols[name]))
    for name in ("ClusterID", "Valid", "size_um2"):
        if name in cols:
            obs[name] = cols[name]
    spatial = np.column_stack([cols["X"], cols["Y"]]).astype(np.float64)
    n_dup = 0
    if drop_duplicates:
        dense = x.toarray()
        table = pd.DataFrame(np.column_stack([spatial, dense]))
        dup = table.duplicated(keep="first").to_numpy()
        n_dup = int(dup.sum())
        keep = ~dup
        x, obs, spatial = x[keep], obs.iloc[keep], spatial[keep]
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(genes, name="gene")))
    adata.obsm["spatial"] = spatial
    return _finish(
        adata,
        dataset="osmfish",
        keys=(key,),
        n_duplicates_removed=n_dup,
        notes="duplicate cells (same position and counts) removed" if drop_duplicates else "",
    )


# --------------------------------------------------------------------------------------------
# Paper-profile loaders (large; fetched from their public sources)
# --------------------------------------------------------------------------------------------


def load_hao2021_pbmc(*, aggregate_proteins: bool = True, apply_filters: bool = True) -> ad.AnnData:
    """Hao et al. 2021 CITE-seq PBMCs (161,764 cells) as distributed by scvi-tools.

    Reads ``hao2021/pbmc_cite_seq`` (``pbmc_seurat_v4.h5ad``) and applies the two steps of
    ``scvi.data.pbmc_seurat_v4_cite_seq`` (defaults as there): summing the two clones of
    antibodies named ``<root>-1`` / ``<root>-2`` (except Notch and TCR), and the cell filters
    (protein log library size in (7.6, 10.3), more than 150 proteins detected, no doublets,
    mitochondrial fraction below 12%).

    Returns
    -------
    anndata.AnnData
        Cells × genes; ``obsm["protein_counts"]`` (cells × proteins, float32, names in
        ``uns["protein_names"]``); ``obs["celltype.l3"]`` and the other source columns.
    """
    key = "hao2021/pbmc_cite_seq"
    adata = ad.read_h5ad(fetch(key))
    protein = adata.obsm["protein_counts"]
    if not isinstance(protein, pd.DataFrame):
        msg = "Hao 2021: obsm['protein_counts'] should be a DataFrame with protein names."
        raise ValueError(msg)
    if aggregate_proteins:
        merged = {}
        for name in protein.columns:
            root, _, suffix = str(name).rpartition("-")
            pair = (f"{root}-1" in protein.columns) and (f"{root}-2" in protein.columns)
            if suffix in ("1", "2") and root not in ("Notch", "TCR") and pair:
                merged[root] = protein[f"{root}-1"].to_numpy() + protein[f"{root}-2"].to_numpy()
            else:
                merged[name] = protein[name].to_numpy()
        protein = pd.DataFrame(merged, index=protein.index)
    if "celltype.l3" not in adata.obs:
        msg = "Hao 2021: obs['celltype.l3'] is missing from the file."
        raise ValueError(msg)
    x = validate_counts(adata.X, name="Hao 2021 RNA counts")
    prot = validate_counts(protein.to_numpy(), name="Hao 2021 protein counts").toarray()
    if apply_filters:
        totals = np.asarray(x.sum(axis=1)).ravel()
        mt = adata.var_names.str.startswith("MT-")
        pct_mt = np.asarray(x[:, mt].sum(axis=1)).ravel() / np.maximum(totals, 1) * 100
        with np.errstate(divide="ignore"):
            log_lib = np.log(prot.sum(axis=1))
        keep = (
            (log_lib > 7.6)
            & (log_lib < 10.3)
            & ((prot > 0).sum(axis=1) > 150)
            & (
                adata.obs.get("celltype.l2", pd.Series("", index=adata.obs_names)) != "Doublet"
            ).to_numpy()
            & (pct_mt < 12)
        )
    else:
        keep = np.ones(adata.n_obs, dtype=bool)
    out = ad.AnnData(X=x[keep], obs=adata.obs.iloc[keep].copy(), var=adata.var.copy())
    out.obsm["protein_counts"] = prot[keep]
    out.uns["protein_names"] = np.asarray(protein.columns.astype(str))
    return _finish(
        out,
        dataset="hao2021_pbmc",
        keys=(key,),
        n_filtered=int((~keep).sum()),
        notes="scvi-tools pbmc_seurat_v4_cite_seq preprocessing "
        f"(aggregate_proteins={aggregate_proteins}, apply_filters={apply_filters})",
    )


def load_larry_full() -> ad.AnnData:
    """LARRY in-vitro haematopoiesis (Weinreb et al. 2020), all cells, integer counts.

    Reads the four ``larry/state_fate_invitro_*`` files: normalised counts (cells × genes
    Matrix Market; integers recovered with :func:`counts_from_normalised`), gene names, cell
    metadata (tab-separated; ``Time point`` → ``obs["day"]``) and the cells × clones matrix.

    Returns
    -------
    anndata.AnnData
        Cells × genes with ``obs["day"]``, ``obs["clone"]`` (-1: no clone, or several),
        ``obsm["X_clone"]`` and the metadata columns.
    """
    keys = (
        "larry/state_fate_invitro_counts",
        "larry/state_fate_invitro_genes",
        "larry/state_fate_invitro_metadata",
        "larry/state_fate_invitro_clones",
    )
    counts = sp.csr_matrix(scipy.io.mmread(fetch(keys[0])))
    with gzip.open(fetch(keys[1]), "rt") as fh:
        genes = [line.strip() for line in fh if line.strip()]
    meta = pd.read_csv(fetch(keys[2]), sep="\t")
    clones = sp.csr_matrix(scipy.io.mmread(fetch(keys[3]))).astype(np.float32)
    n = counts.shape[0]
    if len(genes) != counts.shape[1] or len(meta) != n or clones.shape[0] != n:
        msg = (
            f"LARRY: inconsistent files: counts {counts.shape}, {len(genes)} gene names, "
            f"{len(meta)} metadata rows, clone matrix {clones.shape}."
        )
        raise ValueError(msg)
    if "Time point" not in meta:
        msg = f"LARRY: metadata has no 'Time point' column (columns: {list(meta.columns)})."
        raise ValueError(msg)
    x = counts_from_normalised(counts, name="LARRY counts")
    if {"Library", "Cell barcode"} <= set(meta.columns):
        names = (meta["Library"].astype(str) + ":" + meta["Cell barcode"].astype(str)).to_numpy()
    else:
        names = np.arange(n).astype(str)
    obs = meta.copy()
    obs.index = pd.Index(names)
    obs["day"] = pd.to_numeric(meta["Time point"]).astype(np.float64).to_numpy()
    obs["clone"], n_multi = _clone_labels(clones)
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=pd.Index(genes, name="gene")))
    adata.obs_names_make_unique()
    adata.obsm["X_clone"] = clones
    return _finish(
        adata,
        dataset="larry_full",
        keys=keys,
        n_cells_in_several_clones=n_multi,
        notes="counts recovered from per-cell normalised counts",
    )


def load_merfish_s1r1() -> ad.AnnData:
    """Vizgen MERFISH mouse brain, slice 1 replicate 1 (67,821 cells), with cell centres.

    Reads the cell-by-gene CSV (``vizgen/merfish_s1r1_counts``), drops the ``Blank-*`` control
    columns (leaving 649 genes), and takes ``center_x``/``center_y`` from the cell metadata
    (``vizgen/merfish_s1r1_metadata``) into ``obsm["spatial"]``. Cells without counts are
    removed.

    Raises
    ------
    ValueError
        The two files do not list the same cells.
    """
    keys = ("vizgen/merfish_s1r1_counts", "vizgen/merfish_s1r1_metadata")
    counts = pd.read_csv(fetch(keys[0]), index_col=0)
    meta = pd.read_csv(fetch(keys[1]), index_col=0)
    counts.index = counts.index.astype(str)
    meta.index = meta.index.astype(str)
    if len(counts.index) != len(meta.index) or not counts.index.isin(meta.index).all():
        msg = (
            f"MERFISH: the count file ({len(counts)} cells) and the metadata ({len(meta)} cells) "
            "do not list the same cell ids."
        )
        raise ValueError(msg)
    meta = meta.loc[counts.index]
    genes = [c for c in counts.columns if not str(c).startswith("Blank-")]
    x = validate_counts(counts[genes].to_numpy(), name="MERFISH counts")
    adata = ad.AnnData(X=x, obs=meta.copy(), var=pd.DataFrame(index=pd.Index(genes, name="gene")))
    adata.obsm["spatial"] = meta[["center_x", "center_y"]].to_numpy(dtype=np.float64)
    return _finish(
        adata,
        dataset="merfish_s1r1",
        keys=keys,
        n_blank_removed=len(counts.columns) - len(genes),
        notes="Blank-* barcodes removed",
    )


def _parse_embryo_day(values, *, birth_day: float) -> np.ndarray:
    s = pd.Series(np.asarray(values).astype(str)).str.strip()
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    e = s.str.extract(r"^E(\d+(?:\.\d+)?)$")[0]
    p = s.str.extract(r"^P(\d+(?:\.\d+)?)$")[0]
    out = np.where(e.notna(), pd.to_numeric(e), out)
    out = np.where(p.notna(), birth_day + pd.to_numeric(p), out)
    if np.isnan(out).any():
        bad = s[np.isnan(out)].unique()[:5].tolist()
        msg = f"Embryo atlas: cannot read the day of {bad} as E<day>, P<day> or a number."
        raise ValueError(msg)
    return out.astype(np.float64)


def load_qiu2024_embryo(
    *, day_key: str = "day", birth_day: float = 19.0, n_check: int = 10_000
) -> ad.AnnData:
    """Qiu et al. 2024 mouse embryo atlas (~11.4 million cells), opened backed (read-only).

    The whole matrix does not fit in memory, so the file is opened with ``backed="r"``: ``obs``
    is in memory, ``X`` stays on disk; take a training subset with
    ``adata[idx].to_memory()``. Only the first ``n_check`` cells are checked for integer counts.
    The embryonic day (``obs[day_key]``, e.g. ``"E10.5"``; ``"P0"`` counts as ``birth_day``) is
    parsed into the float ``obs["author_day"]``.

    Returns
    -------
    anndata.AnnData
        Backed AnnData with ``obs["author_day"]``.
    """
    key = "qiu2024/mouse_embryo_atlas"
    adata = ad.read_h5ad(fetch(key), backed="r")
    if day_key not in adata.obs:
        msg = f"Embryo atlas: no obs[{day_key!r}]; columns are {list(adata.obs.columns)}."
        raise ValueError(msg)
    validate_counts(adata.X[: min(n_check, adata.n_obs)], name="embryo atlas counts (first cells)")
    adata.obs["author_day"] = _parse_embryo_day(adata.obs[day_key], birth_day=birth_day)
    adata.uns["dataset"] = {
        "name": "qiu2024_embryo",
        "manifest_keys": [key],
        "backed": True,
        "counts": f"raw integer counts in X on disk (first {n_check} cells checked)",
        "n_empty_removed": 0,
        "notes": f"P<d> read as {birth_day} + d days",
    }
    return adata


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[[], ad.AnnData]] = {
    "pbmc10k": load_pbmc10k,
    "larry_subset": load_larry_subset,
    "osmfish": load_osmfish,
    "klein2015": load_klein2015,
    "dlpfc_visium": load_dlpfc_visium,
    "hao2021_pbmc": load_hao2021_pbmc,
    "larry_full": load_larry_full,
    "merfish_s1r1": load_merfish_s1r1,
    "qiu2024_embryo": load_qiu2024_embryo,
}

def dataset_names() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(_LOADERS)


def load_dataset(name: str) -> ad.AnnData:
    """Load a single-cell dataset by its loader's name.

    Which dataset a task reads at which profile is a task fact: see :mod:`helpers.tasks`
    (``hp.tasks.get("sc_spatial").load("quick")``).

    Parameters
    ----------
    name
        ``"pbmc10k"``, ``"larry_subset"``, ``"osmfish"``, ``"klein2015"``, ``"hao2021_pbmc"``,
        ``"larry_full"``, ``"merfish_s1r1"`` or ``"qiu2024_embryo"``.

    Examples
    --------
    >>> load_dataset("osmfish").uns["dataset"]["name"]  # doctest: +SKIP
    'osmfish'
    """
    if name not in _LOADERS:
        msg = f"Unknown dataset {name!r}; known: {dataset_names()}."
        raise ValueError(msg)
    return _LOADERS[name]()


# --------------------------------------------------------------------------------------------
# Partner signals and probe targets
# --------------------------------------------------------------------------------------------


