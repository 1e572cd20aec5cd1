"""
===========================================
Which pixels move each code unit: Jacobians
===========================================

PCA's components say how each code unit reads the input: unit ``c`` is the
dot product of the centred image with component ``c``, the same for every
image. An autoencoder's encoder is nonlinear, so how a unit reads the input
depends on the image: its *Jacobian*,
:meth:`~skae.AutoencoderTransformer.encoder_jacobian`, gives, at each image,
the change of every code unit per unit change of every pixel, computed
exactly by PyTorch's automatic differentiation.

:func:`skae.plotting.plot_jacobian` draws the Jacobian averaged over a set
of images, one map per code unit: red pixels raise the unit, blue ones lower
it. Averaged over all digits it plays the part of PCA's components; averaged
over the images of one digit it shows what the code looks at for that digit.
"""

# %%
# An autoencoder with a 4-number code
# -----------------------------------

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae.plotting import plot_jacobian

X, y = load_digits(return_X_y=True)
ae = AutoencoderTransformer(n_components=4, random_state=0).fit(X)
J = ae.encoder_jacobian(X)
print(f"Jacobians: {J.shape} (images, code units, pixels)")

# %%
# The mean Jacobian over all digits, next to PCA's components
# -----------------------------------------------------------
# The autoencoder's code is not PCA's (any rotation of it reconstructs as
# well), so the maps need not match one by one; both read strokes in the
# middle of the image and ignore the empty border.
fig = plot_jacobian(ae, X)
fig.suptitle("Autoencoder: mean d code / d pixel over all digits")

pca = PCA(n_components=4, random_state=0).fit(X)
fig, axes = plt.subplots(1, 4, figsize=(6.4, 1.9), layout="constrained")
limit = np.abs(pca.components_).max()
for unit, ax in enumerate(axes):
    ax.imshow(
        pca.components_[unit].reshape(8, 8), cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    ax.set_title(f"component {unit}", fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("PCA: the components (its Jacobian, the same at every image)")

# %%
# What the code looks at, digit by digit
# --------------------------------------
# Averaged over the images of a single digit, the Jacobian differs from the
# overall mean: the encoder is nonlinear, and each unit weighs the pixels
# that tell apart the shapes near that digit. One row per digit (each with
# its own color scale), one column per code unit.
digits = [0, 1, 4, 7]
fig, axes = plt.subplots(len(digits), 4, figsize=(6.4, 6.6), layout="constrained")
for row, digit in zip(axes, digits, strict=True):
    plot_jacobian(ae, X[y == digit], axes=row)
    row[0].set_ylabel(f"digit {digit}")
fig.suptitle("Mean Jacobian over the images of one digit")

# %%
# How much each digit's code moves with its pixels: the Frobenius norm of
# the Jacobian, the code's sensitivity to small changes of the image.
norms = np.sqrt((J**2).sum(axis=(1, 2)))
for digit in range(10):
    print(f"digit {digit}: mean ||dZ/dX|| = {norms[y == digit].mean():.3f}")
