"""
=============================================
New digits from a variational autoencoder
=============================================

A plain autoencoder's codes can land anywhere, so decoding a random code
gives no particular image. A variational autoencoder,
:class:`~skae.VariationalAutoencoderTransformer`, gives each image a small
Gaussian cloud of codes instead of a point and pulls these clouds towards a
standard normal distribution, the *prior*: decoding draws from the prior
then gives images like the training ones.
:meth:`~skae.VariationalAutoencoderTransformer.sample` does exactly that, and
:func:`skae.plotting.plot_samples` draws a grid of them.

As a baseline, images are also drawn from a Gaussian fitted to the digits
(the distribution PCA describes): it knows which pixels vary together but
not what a stroke is.
"""

# %%
# A variational autoencoder of the digits
# ---------------------------------------
# ``beta`` weighs the pull towards the prior against the reconstruction:
# with the default ``beta=1`` the training objective is the negative evidence
# lower bound (ELBO) of the data, up to a constant.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

from skae import VariationalAutoencoderTransformer
from skae.plotting import plot_samples

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
vae = VariationalAutoencoderTransformer(n_components=8, random_state=0)
vae.fit(X_train)

# %%
# Samples from the prior, decoded
# -------------------------------
fig = plot_samples(vae, n_samples=32, random_state=0)
fig.suptitle("VariationalAutoencoderTransformer.sample")
low, high = fig.axes[0].get_images()[0].get_clim()

# %%
# The Gaussian baseline
# ---------------------
# Drawn on the same gray scale as the samples above.
rng = np.random.default_rng(0)
mean, cov = X_train.mean(axis=0), np.cov(X_train, rowvar=False)
gaussian = rng.multivariate_normal(mean, cov, size=32)
fig, axes = plt.subplots(4, 8, figsize=(7.2, 4.0), layout="constrained")
for ax, image in zip(axes.flat, gaussian, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=low, vmax=high)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Draws from a Gaussian fitted to the digits")

# %%
# Do the samples look like digits?
# --------------------------------
# Two rough measures on 500 draws of each kind. The distance from each draw
# to its nearest training digit, over the same distance for real test
# digits: 1 means the draws lie as close to the data as unseen real digits.
# And the mean confidence of a classifier trained on real digits. The
# Gaussian's draws are far from every real digit; the VAE's are nearly as
# close as real ones. The classifier is as confident on both: a linear model
# reads a Gaussian draw's pixel correlations as well as a VAE sample's
# strokes, which is why confidence alone is a weak test of samples.
classifier = LogisticRegression(max_iter=2000).fit(X_train, y_train)
nearest = NearestNeighbors(n_neighbors=1).fit(X_train)
reference = nearest.kneighbors(X_test)[0].mean()
draws = {
    "real test digits": X_test,
    "VAE samples": vae.sample(500, random_state=1),
    "Gaussian draws": rng.multivariate_normal(mean, cov, size=500),
}
for name, images in draws.items():
    distance = nearest.kneighbors(images)[0].mean() / reference
    confidence = classifier.predict_proba(images).max(axis=1).mean()
    print(f"{name:>16}: distance ratio {distance:.2f}, confidence {confidence:.2f}")

# %%
# ``transform`` gives each image's posterior mean, as a code to use
# downstream; ``score_samples`` is minus the reconstruction error of that
# mean (comparable with PCA's and the plain autoencoder's), and ``elbo``
# each image's evidence lower bound, which also counts how unusual its code
# is under the prior.
print(f"codes: {vae.transform(X_test).shape}")
print(f"mean squared reconstruction error: {-vae.score(X_test):.2f}")
print(f"mean ELBO of the test digits: {vae.elbo(X_test, random_state=0).mean():.1f}")
