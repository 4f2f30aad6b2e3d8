"""Auxiliary mutual information between a representation and a held-out signal (latent MI).

The paper's performance metric is ``I(X; Y)`` between a learned representation ``X``
(cells × d) and an auxiliary signal ``Y`` the model never saw, estimated by *latent mutual
information* (LMI; Gowri et al., NeurIPS 2024): compress ``X`` and ``Y`` separately to a few
latent dimensions with paired autoencoders regularised by cross-prediction, then estimate the
MI of the latents with the Kraskov–Stögbauer–Grassberger (KSG) k-nearest-neighbour estimator.
This module is a fast re-implementation on torch + scipy that fixes the biases of the
reference package ``latentmi`` 0.1.3 (see ``benchmarks/probe.py`` for the comparison):

* the networks are fit on a training part (with its own early-stopping validation part, the
  validation loss computed in eval mode) and the best epoch's weights are really restored;
  the MI is estimated on the held-out evaluation part only;
* encoders have a linear skip path and the cross-predictors are linear, so the information
  the latents share is (close to) linearly aligned;
* before KSG, the latents are put in canonical (CCA) coordinates fitted on the fitting part
  — an invertible linear map per side, which leaves their MI unchanged — and KSG is run on
  each canonical pair alone; the leading pairs up to the last clearly informative one are
  summed (``select="sum"``), chosen by cross-fitting on held-out samples (the validation
  part and the other half of the evaluation part), and pairs that depend on each other are
  grouped and estimated jointly.  The sum is exact when the pairs are independent of each
  other, as for jointly Gaussian latents, whose canonical pairs are; KSG on several pairs
  jointly is biased low, the more so the more dimensions and bits (the true 4 leading pairs
  of a rank-4, 4-bit Gaussian read 3.2 bits jointly at N = 5,000, 3.9 summed; 8 pairs of a
  rank-8 case 1.9 and 3.7).  Choosing the pairs on samples they are not scored on keeps the
  estimate unbiased on independent data, where the earlier maximum over the ``m`` leading
  pairs read +0.03 to +0.05 bit.  Class labels, a single discrete variable, get the mixed
  KSG on the ``m`` leading canonical coordinates of ``X``, ``m`` chosen on the validation
  part;
* beside the networks, a linear path: ridge-regularised canonical directions of the inputs
  themselves, cross-fitted: for each half of the evaluation part they are fitted on every
  other sample (the training part and the other half), the ridge (from CCA to the singular
  directions of the cross-covariance) chosen by 3-fold cross-validation there, and their
  pairs kept where the held-out correlation of those folds is clearly non-zero (z > 3).  For
  each half the path whose kept pairs read more on the samples that chose them is reported,
  so the choice never sees the samples it is scored on.  Information spread thinly over many
  shared directions is where networks trained on a few thousand samples lose most (rank 8 at
  1 bit, dim X 100, dim Y 50, N = 5,000: 0.68 bit from the networks alone);
* each kept pair on its own is read by its Gaussian copula (:func:`copula_mi`, a lower bound
  on the MI of continuous variables), or by 1-D KSG where KSG reads clearly more (by 4 sd of
  its spread on independent data) on the samples that chose the pairs.  On a weak pair KSG
  scatters 5–6 times as much as the copula and reads a little low (ρ = 0.15 on 1,250 samples,
  40 seeds: sd 0.031 against 0.0055 bit, means 0.011 and 0.016 for a truth of 0.016;
  ``benchmarks/probe_grid.py --pairs``), which matters when a quarter of a bit is spread over
  eight pairs; the copula is exact for Gaussian pairs, and KSG keeps what is not Gaussian;
* where the squared radii of ``X`` and ``Y`` depend on each other more than their canonical
  correlations imply for a Gaussian (:func:`.critic.scale_test`, z > 3: a shared scale as in
  a Student-t or over-dispersed counts, a mixture of opposite dependences, a bent signal),
  two learned critics join the choice (:mod:`.critic`): separable MLP critics trained by
  InfoNCE on the fitting part, one on the inputs' radii and one on their Gaussianised
  columns (or leading canonical variates), each read by its InfoNCE bound on held-out
  samples (a lower bound for any critic) and taken on a half only where it reads more than
  the canonical pairs on the other half.  Gaussian-like inputs never train them, so their
  estimates are those of the estimator without critics, bit for bit;
* ``Y`` that is already low-dimensional (a scalar such as time, or up to ``latent_dims // 2``
  columns) is used as its own latent (lossless) and class labels are handled as a discrete
  variable (cross-entropy head, KSG in the mixed discrete–continuous form of Ross 2014).

What it is known to read, on the ground-truth grids of ``benchmarks/probe_grid.py`` (N = 5,000,
within max(0.1 bit, 10 %) of the truth, see ``benchmarks/README.md``): jointly Gaussian
signals of rank 1–8 in up to 1000 × 50 dimensions (57/57), monotone warps of them
(``half_cube``, ``normal_cdf``, ``asinh``), uncorrelated Student-t pairs in 1–10
dimensions, ``X``-shaped mixtures, additive uniform noise in one dimension; independent
data read 0 ± 0.02 bit.  Where it is known to read low (never high): a Student-t whose
halves are also correlated (1.7 of 1.9 bits at 5 × 5, 2.1 of 2.4 at 25 × 25), spiralled
signals (1.1–1.2 of 1.47 bits in 3–25 dimensions), several equally strong non-Gaussian
pairs (additive uniform noise in three coordinates: 2.8 of 3.5 bits).  Every estimate's
:attr:`ProbeResult.se` is the sampling error of its held-out mean.

Inputs are standardised per column on the training part (constant ``X`` columns are dropped,
values clipped at ±10 sd as in ``latentmi``), and ``X`` wider than ``pca_dims`` (128) columns
is reduced to its leading principal components before the networks; transforms such as
``log1p`` of counts are the caller's business.

``method="paper"`` is the estimator the paper used, ``latentmi`` 0.1.3 re-implemented here
(its numpy < 2 pin keeps the package itself out of this environment): paired autoencoders of
its width (1024/512/256 hidden units, 8 + 8 latents with a final LeakyReLU, cross decoders
with dropout 0.5), its scaling (z-scores over all samples, clipped at ±10), its training (Adam
lr 1e-4, batch 512, ≤ 300 epochs, early stopping on the evaluation half with patience 30 and
the weights of the stopping epoch kept, as latentmi's stopper effectively does), KSG on all
8 + 8 latents of the evaluation half, class labels one-hot encoded.  Nothing is transformed:
protein counts go in raw, as in the paper.  ``benchmarks/probe.py --paper`` runs it beside
``latentmi`` itself.

The package, one module per step:

=============  ==============================================================================
``estimator``  :func:`estimate_mi` / :func:`latent_mi`: inputs checked, the split, both paths
``networks``   the paired encoders and their training
``linear``     the cross-fitted linear path: ridge-canonical directions, PCA
``copula``     each canonical pair read by its Gaussian copula or, where clearly more, 1-D KSG
``critic``     learned critics (InfoNCE) where the radii depend more than a Gaussian's would
``ksg``        the KSG estimator (continuous and mixed discrete–continuous)
``labels``     discrete MI and balanced one-vs-all subsets
``paper``      ``method="paper"``: ``latentmi`` 0.1.3 re-implemented
``result``     :class:`ProbeResult` and the estimator's :data:`VERSION`
``signals``    the tasks' probes: a model's output and a task's signal into MI rows
=============  ==============================================================================

Example
-------
>>> from helpers import groundtruth as gt, probe
>>> x, y, truth = gt.gaussian_lowrank(3000, dim_x=40, dim_y=2, mi_bits=1.0, seed=0)
>>> est = probe.latent_mi(x, y, seed=0)
>>> abs(est - truth) < 0.2
True
"""

from __future__ import annotations

from . import copula, critic, estimator, ksg, labels, linear, networks, paper, result, signals
from .copula import copula_mi
from .estimator import ProbeOptions, estimate_mi, latent_mi, make_split
from .ksg import ksg_mi
from .labels import balanced_one_vs_all, discrete_mi
from .result import MIN_EVAL, MIN_TRAIN, VERSION, ProbeResult
from .signals import (
    ESTIMATORS,
    estimator_probe,
    label_probe,
    label_rows,
    latent_probe,
    latent_row,
    paper_signal,
    predicted_label_probe,
    probe_inputs,
    sequence_probe,
    y_kind,
)

__all__ = [
    "ESTIMATORS",
    "MIN_EVAL",
    "MIN_TRAIN",
    "VERSION",
    "ProbeOptions",
    "ProbeResult",
    "balanced_one_vs_all",
    "copula_mi",
    "discrete_mi",
    "estimate_mi",
    "estimator_probe",
    "ksg_mi",
    "label_probe",
    "label_rows",
    "latent_probe",
    "latent_row",
    "latent_mi",
    "make_split",
    "paper_signal",
    "predicted_label_probe",
    "probe_inputs",
    "sequence_probe",
    "y_kind",
]
