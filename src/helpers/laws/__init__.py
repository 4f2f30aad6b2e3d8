r"""The paper's two scaling laws: evaluate, fit, invert and collapse.

**Noise law** (Eq. 1; Box 1).  With :math:`x` the signal-to-noise power :math:`\eta^2` (mean
UMIs per cell for counts, Supplementary S.V), the auxiliary information in bits is

.. math::

    I(x) = I_\max - \tfrac12 \log_2 \frac{x/\bar u + 1}{x/\bar u + 2^{-2 I_\max}},

so that :math:`I(0) = 0`, :math:`I(\infty) = I_\max`, and at :math:`x = \bar u` the model is
within half a bit of its capacity (exactly so as :math:`I_\max \to \infty`).

**Cell-number law** (Fig. 2a): :math:`I(N) = I_\infty - (N / N_\mathrm{sat})^{-s}`, so that
:math:`N_\mathrm{sat}` cells bring the model within one bit of :math:`I_\infty`.

**Collapse.**  With :math:`A = 2^{-2 I_\max}` and :math:`z = (x/\bar u + A)/(1 - A)`, every noise
curve satisfies :math:`I - I_\max = -\tfrac12 \log_2((1+z)/z)`; every cell-number curve
satisfies :math:`(I_\infty - I)^{-1/s} = N / N_\mathrm{sat}`.

**Fit quality.**  Every fit carries ``reason``, empty when the data constrain it (``ok``) and
otherwise naming why not (failed, flat, never positive, not rising, unconstrained, not
saturated); a flagged fit keeps its parameters, but its derived numbers (UMI90, collapse
coordinates) are ``nan``.  Cell-number fits are bounded as the authors bound them
(:func:`cell_law_bounds`).
"""

from __future__ import annotations

from . import calibration, cell, common, joint, noise, selection, table
from .cell import LINEAR_MODELS, CellLawFit, cell_collapse, cell_law, cell_law_bounds, fit_cell_law
from .joint import (
    JOINT_FORMS,
    JOINT_RULE,
    JointLawFit,
    fit_joint_law,
    joint_law,
    joint_noise_params,
    select_joint_form,
)
from .noise import (
    UMI90_DEFINITIONS,
    NoiseLawFit,
    collapse_r2,
    fit_noise_law,
    invert_noise_law,
    noise_collapse,
    noise_flags,
    noise_law,
    umi90,
    universal_noise_curve,
)
from .selection import cross_validate_joint
from .table import fit_table

__all__ = [
    "CellLawFit",
    "JOINT_FORMS",
    "JOINT_RULE",
    "JointLawFit",
    "LINEAR_MODELS",
    "NoiseLawFit",
    "UMI90_DEFINITIONS",
    "cell_collapse",
    "cell_law",
    "cell_law_bounds",
    "collapse_r2",
    "cross_validate_joint",
    "fit_cell_law",
    "fit_joint_law",
    "fit_noise_law",
    "fit_table",
    "invert_noise_law",
    "joint_law",
    "joint_noise_params",
    "noise_collapse",
    "noise_flags",
    "noise_law",
    "select_joint_form",
    "umi90",
    "universal_noise_curve",
]
