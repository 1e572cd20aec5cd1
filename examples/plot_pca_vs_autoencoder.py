"""
===============================
PCA versus an autoencoder
===============================

:class:`~skae.AutoencoderTransformer` is a drop-in for
:class:`~sklearn.decomposition.PCA`: both compress each 8x8 digit into
``n_components`` numbers and map them back to an image. PCA's map is linear;
the autoencoder's is a neural network. Here both are fitted on the same
training split of :func:`~sklearn.datasets.load_digits` and compared on held-out
digits, by eye and by the mean squared reconstruction error, the quantity PCA
minimizes.
"""

# %%
# Data: 1347 training and 450 test digits
# ---------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import plot_reconstructions

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)


def test_error(model):
    """Mean squared reconstruction error on the test digits (pixel units)."""
    X_rec = model.inverse_transform(model.transform(X_test))
    return np.mean((X_test - X_rec) ** 2)


# %%
# Eight components
# ----------------
# The same call for both models: ``fit`` on the training digits, then
# ``inverse_transform(transform(X))`` reconstructs. ``score`` of the
# autoencoder is minus this error, so higher is better.
pca = PCA(n_components=8, random_state=0).fit(X_train)
ae = AutoencoderTransformer(n_components=8, random_state=0)
ae.fit(X_train)

print(f"PCA         test MSE: {test_error(pca):.2f}")
print(f"autoencoder test MSE: {test_error(ae):.2f}")
print(f"-ae.score(X_test):    {-ae.score(X_test):.2f}")

# %%
# The first row shows test digits, the next rows their reconstructions from
# eight numbers. PCA's images are blurred mixtures of its eight components;
# the autoencoder's are sharper because its decoder is not restricted to a
# linear combination of eight fixed images.
fig = plot_reconstructions(
    X_test,
    pca,
    ae,
    labels=[f"PCA\nMSE {test_error(pca):.1f}", f"AE\nMSE {test_error(ae):.1f}"],
    n_samples=10,
)
fig.suptitle("Test digits reconstructed from 8 components")
plt.show()

# %%
# Reconstruction error against the number of components
# ------------------------------------------------------
# The autoencoder's advantage is largest for short codes, where a nonlinear
# map has the most to gain. With a long code there is little left to win: at
# 32 components PCA's reconstruction is nearly exact, and the autoencoder,
# with about 100,000 weights for 1347 training digits, no longer beats it on
# test digits. Its training error (dotted) stays below its test error: the
# gap is overfitting.
n_components_range = [2, 4, 8, 16, 32]
errors = {"PCA (test)": [], "AE (test)": [], "AE (train)": []}
for n_components in n_components_range:
    if n_components == 8:
        pca_k, ae_k = pca, ae  # already fitted above
    else:
        pca_k = PCA(n_components=n_components, random_state=0).fit(X_train)
        ae_k = AutoencoderTransformer(n_components=n_components, random_state=0).fit(
            X_train
        )
    errors["PCA (test)"].append(test_error(pca_k))
    errors["AE (test)"].append(test_error(ae_k))
    errors["AE (train)"].append(-ae_k.score(X_train))

fig, ax = plt.subplots(figsize=(6, 4))
styles = {"PCA (test)": "o-", "AE (test)": "s-", "AE (train)": "s:"}
for name, values in errors.items():
    color = "C0" if name.startswith("PCA") else "C1"
    ax.plot(n_components_range, values, styles[name], color=color, label=name)
ax.set_xscale("log", base=2)
ax.set_xticks(n_components_range, [str(k) for k in n_components_range])
ax.set_yscale("log")
ax.set_xlabel("n_components")
ax.set_ylabel("mean squared reconstruction error")
ax.set_title("Reconstruction error on load_digits")
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()

for k, p, a in zip(
    n_components_range, errors["PCA (test)"], errors["AE (test)"], strict=True
):
    print(f"n_components={k:2d}: PCA {p:6.2f}   AE {a:6.2f}")

# %%
# What to take away
# -----------------
# * For a short code (a few components) the autoencoder reconstructs held-out
#   data markedly better than PCA.
# * For a long code, PCA is as good and much cheaper; or regularize the
#   autoencoder (``alpha``, ``dropout``, ``early_stopping=True``) and give it
#   more data. The example
#   :ref:`sphx_glr_auto_examples_plot_grid_search.py` chooses the
#   architecture and ``alpha`` by cross-validation.
