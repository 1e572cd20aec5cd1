"""
==============================================
Diagnosing training: loss curves and gradients
==============================================

Every fit records, per epoch, the training loss, the learning rate and the
gradient norm of each layer (``history_``). :func:`skae.plotting.plot_history`
and :func:`skae.plotting.plot_gradient_flow` draw them. This example trains a
deliberately hard network, ten sigmoid layers of 32 units in the encoder (and
ten in the decoder), twice: as it is, and with skip connections and batch
normalization (``residual=True, normalization="batch"``).
"""

# %%
# A deep sigmoid network: vanishing gradients
# -------------------------------------------
# The sigmoid's slope is at most 1/4, so each layer shrinks the gradient that
# flows back through it. After about twenty layers almost nothing reaches the
# first ones. ``fit`` notices, from the recorded gradient norms, and warns
# with :class:`~skae.VanishingGradientWarning`, naming the remedies.
#
# The network starts from random weights (``init="random"``). From the default
# ``init="pca"`` it would start at PCA's solution, which early stopping keeps
# when training cannot improve on it: the model would be PCA, however hard the
# network.
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer, VanishingGradientWarning
from skae.plotting import plot_gradient_flow, plot_history

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

deep = {
    "n_components": 8,
    "hidden_layer_sizes": (32,) * 10,
    "activation": "sigmoid",
    "init": "random",
    "max_iter": 60,
    "random_state": 0,
}
plain = AutoencoderTransformer(**deep)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    plain.fit(X_train)

for w in caught:
    print(f"{w.category.__name__}: {w.message}\n")
print(
    "VanishingGradientWarning raised:",
    any(issubclass(w.category, VanishingGradientWarning) for w in caught),
)
print(f"epochs run: {plain.n_iter_}, test MSE: {-plain.score(X_test):.2f}")

# %%
# The same network with skip connections and batch normalization
# ---------------------------------------------------------------
# A skip connection adds each block's input to its output, so the gradient
# has a path around every sigmoid; batch normalization keeps the sigmoid's
# input where its slope is largest. The VanishingGradientWarning is gone, and
# no other warning comes: the validation loss still improves a little at the
# 60th epoch, by less than the 1 % over 10 epochs that would make more epochs
# worth a ConvergenceWarning.
fixed = AutoencoderTransformer(**deep, residual=True, normalization="batch")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fixed.fit(X_train)
print("warnings:", [w.category.__name__ for w in caught])
print(f"epochs run: {fixed.n_iter_}, test MSE: {-fixed.score(X_test):.2f}")

# %%
# Loss curves and learning rate
# -----------------------------
# The plain network's loss flattens almost at once near 1.0, the variance of
# the standardized data: it reconstructs every digit as little more than the
# mean digit; early stopping ends its training after 21 epochs. The other
# network's loss keeps falling. The dashed line is the learning rate, on the
# right-hand axis: the default ``lr_schedule="plateau"`` halves it whenever the
# validation loss stalls for 5 epochs.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
plot_history(plain, ax=axes[0])
axes[0].set_title("10 sigmoid layers")
plot_history(fixed, ax=axes[1])
axes[1].set_title("... with residual=True, normalization='batch'")
fig.tight_layout()
plt.show()

# %%
# Gradient flow
# -------------
# One line per layer, from the encoder's first layer (dark) to the decoder's
# output layer (light). Without help, each layer's gradient is orders of
# magnitude below the next one's, and the first layers' gradients shrink
# epoch after epoch until they underflow to exactly zero in float32 (their
# lines leave the plot at the bottom): those layers stop training. With skip
# connections and normalization all layers get gradients of a similar size.
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
plot_gradient_flow(plain, ax=axes[0])
axes[0].set_title("10 sigmoid layers")
plot_gradient_flow(fixed, ax=axes[1])
axes[1].set_title("... with residual=True, normalization='batch'")
plt.show()

# %%
# Reading the last epoch's norms directly
# ---------------------------------------
# ``history_`` is a :class:`skorch.history.History`; ``grad_norms`` maps each
# layer's name to its mean gradient norm over the epoch's batches.
for name, model in [("plain", plain), ("residual + batch norm", fixed)]:
    norms = model.history_[-1]["grad_norms"]
    ratio = norms["encoder.0"] / norms["decoder.output"]
    print(f"{name:>22}: |grad encoder.0| / |grad decoder.output| = {ratio:.1e}")
