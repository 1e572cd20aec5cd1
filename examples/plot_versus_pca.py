"""
===========================================
Starting at PCA: held-out error per epoch
===========================================

With the default ``init="auto"`` a model with a linear output starts at
PCA's solution (``init="pca"``): before its first step it reconstructs
exactly as :class:`~sklearn.decomposition.PCA` does, and training goes on
from there. This example follows the held-out reconstruction error epoch by
epoch, from random weights (``init="random"``) and from PCA, with PCA's own
error drawn as a line; then shows what ``fit`` returns on data where
training cannot improve on PCA.
"""

# %%
# One epoch at a time
# -------------------
# :meth:`~skae.AutoencoderTransformer.partial_fit` trains one epoch per call
# (on every row: early stopping applies to ``fit`` only), so the held-out
# error can be read after each epoch.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer


def pca_error(X_train, X_test, k):
    """PCA's mean squared reconstruction error on the held-out rows."""
    pca = PCA(n_components=k, random_state=0).fit(X_train)
    return np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)


def per_epoch(X_train, X_test, k, init, epochs):
    """Held-out error after each of ``epochs`` one-epoch ``partial_fit`` calls.

    From ``init="pca"``, epoch 0 comes first: a fit whose learning rate is too
    small to move the weights, i.e. the model before its first step.
    """
    ae = AutoencoderTransformer(n_components=k, init=init, random_state=0)
    errors = [-ae.partial_fit(X_train).score(X_test) for _ in range(epochs)]
    if init == "pca":
        start = AutoencoderTransformer(
            n_components=k,
            learning_rate_init=1e-12,
            max_iter=1,
            early_stopping=False,
            random_state=0,
        ).fit(X_train)
        errors.insert(0, -start.score(X_test))
    return errors


X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
epochs = np.arange(0, 41)  # 0 only for init="pca"
digits_pca = pca_error(X_train, X_test, 8)
digits = {init: per_epoch(X_train, X_test, 8, init, 40) for init in ("random", "pca")}
for init, errors in digits.items():
    numbers = epochs[-len(errors) :]
    first = next((e for e, v in zip(numbers, errors) if v < 0.99 * digits_pca), None)
    print(
        f"init={init!r}: epoch {numbers[0]} at {errors[0] / digits_pca:.3f} x PCA's "
        f"error, below 0.99 x from epoch {first}, {errors[-1] / digits_pca:.2f} x "
        f"after {epochs[-1]}"
    )

# %%
# Data where PCA leaves almost nothing to learn
# ---------------------------------------------
# The raw wine measurements: the proline column, in the hundreds, dominates
# the others, and PCA's two components leave 0.01 % of the variance. The
# first steps of training from PCA add far more error than that, and no
# epoch gets back below PCA. ``fit`` with its defaults (early stopping, which
# counts the starting weights as a candidate) then keeps PCA's solution.
W, _ = load_wine(return_X_y=True)
W_train, W_test = train_test_split(W, test_size=0.25, random_state=0)
wine_pca = pca_error(W_train, W_test, 2)
wine = {init: per_epoch(W_train, W_test, 2, init, 40) for init in ("random", "pca")}
fitted = AutoencoderTransformer(n_components=2, random_state=0).fit(W_train)
wine_fit = -fitted.score(W_test)
print(
    f"wine: fit() held-out error {wine_fit / wine_pca:.6f} x PCA's "
    f"({fitted.n_iter_} epochs run)"
)

# %%
# The figure
# ----------
# Left: on the digits, the autoencoder from random weights starts several
# times above PCA's error and needs many epochs to get below it; from PCA it
# is at PCA's level before the first step and below it after one epoch.
# Right: on raw wine, training makes both worse than PCA, and ``fit`` (the
# star) stops after 10 epochs without improvement and returns PCA's
# solution: never worse than what it replaces.
fit_point = (fitted.n_iter_, wine_fit)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
panels = [
    (axes[0], "load_digits, 8 components", digits, digits_pca, None),
    (axes[1], "raw load_wine, 2 components", wine, wine_pca, fit_point),
]
for ax, title, curves, level, fit_error in panels:
    ax.plot(epochs[1:], curves["random"], marker=".", label='init="random"')
    ax.plot(epochs, curves["pca"], marker=".", label='init="pca" (by default)')
    ax.axhline(level, color="black", linestyle="--", label="PCA")
    if fit_error is not None:
        ran, error = fit_error
        ax.plot(
            ran,
            error,
            marker="*",
            markersize=14,
            color="C2",
            linestyle="none",
            label=f"fit() with the defaults: {ran} epochs run, PCA kept",
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0: before the first step)")
    ax.set_ylabel("held-out mean squared error")
    ax.set_title(title)
    ax.legend()
plt.show()
