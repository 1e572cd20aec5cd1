"""
============================
Denoising handwritten digits
============================

A denoising autoencoder is trained to rebuild clean rows from corrupted
copies: with ``noise="gaussian"``, every training batch gets Gaussian noise
at the encoder's input while the loss still compares the reconstruction with
the clean batch. ``transform`` and ``inverse_transform`` see the data as it
is, so a noisy test digit goes in and, ideally, a clean one comes out.

Here the test digits carry Gaussian noise of standard deviation 4 (pixel
values run from 0 to 16). PCA, a plain autoencoder and a denoising one, all
with an 8-number code and trained on clean digits only, reconstruct the
noisy digits; each is scored by its mean squared error to the clean ones.
"""

# %%
# Clean training digits, noisy test digits
# ----------------------------------------

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import plot_reconstructions

# 100 epochs (half the default) are enough to show the difference; the loss
# is still creeping down at the end, which fit reports with a
# ConvergenceWarning.

X, _ = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)
noise = 4.0
X_noisy = X_test + noise * np.random.default_rng(0).normal(size=X_test.shape)

# %%
# The training noise's level is a standard deviation in the network's scaled
# units: with the default ``scaling="global"``, rows are centred and divided
# by one global scale, the root mean feature variance. Matching the test
# noise means dividing it by that scale.
scale = np.sqrt(X_train.var(axis=0).mean())
print(f"global scale: {scale:.2f} pixels; noise_level={noise / scale:.2f}")

pca = PCA(n_components=8, random_state=0).fit(X_train)
params = dict(n_components=8, random_state=0)
plain = AutoencoderTransformer(**params).fit(X_train)
denoising = AutoencoderTransformer(
    noise="gaussian", noise_level=noise / scale, **params
).fit(X_train)

# %%
# Mean squared error to the clean digits
# --------------------------------------
# Every model removes much of the noise (the noisy digits themselves are far
# from the clean ones): a short code cannot hold it. The denoising
# autoencoder, which learned what noise looks like, comes closest.
models = {"PCA": pca, "autoencoder": plain, "denoising AE": denoising}
denoised = {
    name: model.inverse_transform(model.transform(X_noisy))
    for name, model in models.items()
}
errors = {"noisy": np.mean((X_noisy - X_test) ** 2)}
errors.update({name: np.mean((D - X_test) ** 2) for name, D in denoised.items()})
for name, error in errors.items():
    print(f"{name:>13}: MSE to the clean digits {error:6.2f}")

# %%
# The digits, row by row
# ----------------------
# Top row, clean test digits; then their noisy copies, and what each model
# makes of the noisy copies. All rows share the clean digits' gray scale.
rows = {"noisy": X_noisy, **denoised}
fig = plot_reconstructions(
    X_test,
    *rows.values(),
    labels=[f"{name}\nMSE {errors[name]:.1f}" for name in rows],
    n_samples=8,
)
fig.axes[0].set_ylabel("clean")
fig.suptitle("Noisy test digits and their reconstructions (MSE to the clean ones)")
fig.tight_layout()
