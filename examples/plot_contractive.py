"""
=================================================
Contractive codes: steady under input noise
=================================================

A contractive autoencoder adds to its loss the squared Frobenius norm of the
encoder's Jacobian, ``||dZ/dX||^2``, at every training row
(``contractive=``, computed exactly with :mod:`torch.func`). The code then
changes little when the input changes in directions the data do not vary
in, such as pixel noise, while it still follows the directions that tell
digits apart.

Two autoencoders with a 2-number code, one plain and one contractive, encode
test digits and noisy copies of them. Codes are drawn in units of the
code's own spread: a model cannot look steady merely by shrinking its code.
"""

# %%
# Two autoencoders of the digits
# ------------------------------

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
params = dict(n_components=2, random_state=0)
models = {
    "plain": AutoencoderTransformer(**params).fit(X_train),
    "contractive=0.1": AutoencoderTransformer(contractive=0.1, **params).fit(X_train),
}

# %%
# How far the code moves under noise
# ----------------------------------
# Gaussian noise of 2 pixels (pixel values run from 0 to 16) on every test
# digit; the mean squared move of its code, over the codes' variance. The
# contractive model's code moves less, at a slightly higher test error.
rng = np.random.default_rng(0)
X_noisy = X_test + 2.0 * rng.normal(size=X_test.shape)
for name, model in models.items():
    Z, Z_noisy = model.transform(X_test), model.transform(X_noisy)
    move = np.mean(np.sum((Z_noisy - Z) ** 2, axis=1)) / Z.var(axis=0).sum()
    error = -model.score(X_test)
    print(f"{name:>16}: code move {move:.4f} of its variance, test MSE {error:.2f}")

# %%
# The codes of noisy copies
# -------------------------
# One test digit of each class (large dots) and 30 noisy copies of each
# (small dots, same color), in units of each code's standard deviation.
picks = [np.flatnonzero(y_test == digit)[0] for digit in range(10)]
copies = np.repeat(X_test[picks], 30, axis=0)
copies = copies + 2.0 * rng.normal(size=copies.shape)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), layout="constrained")
for ax, (name, model) in zip(axes, models.items(), strict=True):
    spread = model.transform(X_test).std(axis=0)
    centres = model.transform(X_test[picks]) / spread
    clouds = model.transform(copies) / spread
    for digit in range(10):
        color = plt.cm.tab10(digit)
        cloud = clouds[30 * digit : 30 * (digit + 1)]
        ax.scatter(*cloud.T, s=6, color=color, alpha=0.5, linewidths=0)
        ax.scatter(*centres[digit], s=70, color=color, edgecolors="k")
        ax.annotate(str(digit), centres[digit], fontsize=9, ha="center", va="center")
    ax.set_title(name)
    ax.set_xlabel("code 1 / its std")
    ax.set_ylabel("code 2 / its std")
fig.suptitle("Codes of test digits and of 30 noisy copies of each")
