"""Samples with exactly known mutual information, for validating :mod:`helpers.probe`.

Each function returns the samples together with the exact mutual information (in bits).

Gaussian and the paper's channel (:mod:`.gaussian`):

=========================  ==================================================================
:func:`gaussian_lowrank`   jointly Gaussian ``X`` (10–1000 dims) and ``Y`` (1–50 dims) sharing
                           a low-rank latent; the signal scale is solved so that the MI hits a
                           target exactly (log-det formula, :func:`gaussian_mi`)
:func:`labelled_mixture`   class labels and a high-dimensional Gaussian mixture whose class
                           means lie on a line; MI by one-dimensional quadrature
                           (``≈ H(labels)`` when the classes are well separated)
:func:`box1_channel`       the Box-1 channel ``Y → X = Y + U → counts ~ Poisson(depth·…)`` at
                           several sequencing depths, with the Gaussian channel's analytic MI
                           (:func:`box1_gaussian_mi`)
=========================  ==================================================================

Beyond the Gaussian (:mod:`.beyond`, the families of Czyż et al. 2023): multivariate
Student-t (:func:`student_t`, :func:`student_t_mi`), monotone warps (:func:`warp`), spirals
(:func:`spiral`), Gaussian mixtures (:func:`gaussian_mixture`, :func:`x_mixture`), additive
uniform noise (:func:`additive_uniform`) and the grid of them all (:func:`cases`).

Example
-------
>>> from helpers import groundtruth as gt
>>> x, y, mi = gt.gaussian_lowrank(2000, dim_x=50, dim_y=3, mi_bits=1.0, seed=0)
>>> x.shape, y.shape, round(mi, 6)
((2000, 50), (2000, 3), 1.0)
"""

from __future__ import annotations

from . import beyond, gaussian
from .beyond import (
    FamilyCase,
    additive_uniform,
    additive_uniform_mi,
    cases,
    gaussian_mixture,
    sparse_gaussian,
    spiral,
    student_t,
    student_t_mi,
    warp,
    x_mixture,
)
from .gaussian import (
    Box1Sample,
    box1_channel,
    box1_gaussian_mi,
    gaussian_lowrank,
    gaussian_lowrank_cov,
    gaussian_mi,
    labelled_mixture,
    mixture_mi,
)

__all__ = [
    "Box1Sample",
    "FamilyCase",
    "additive_uniform",
    "additive_uniform_mi",
    "beyond",
    "box1_channel",
    "box1_gaussian_mi",
    "cases",
    "gaussian",
    "gaussian_lowrank",
    "gaussian_lowrank_cov",
    "gaussian_mi",
    "gaussian_mixture",
    "labelled_mixture",
    "mixture_mi",
    "sparse_gaussian",
    "spiral",
    "student_t",
    "student_t_mi",
    "warp",
    "x_mixture",
]
